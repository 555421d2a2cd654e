"""actionlint (pinned, with shellcheck) over the workflows; a broken one proves it bites."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHELLCHECK = Path("/usr/bin/shellcheck")  # Debian's, installed by tools/setup


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(os.environ["TEST_SRCDIR"]) / "go_tools" / "actionlint"
    return subprocess.run(
        [
            str(binary),
            "-no-color",
            "-config-file",
            str(HERE.parent / "actionlint.yaml"),
            "-shellcheck",
            str(SHELLCHECK),
            "-pyflakes=",  # no Python inside our run: steps
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


WORKFLOWS = sorted(HERE.glob("*.yml"))


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "deploy.yml", "release.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_clean(workflow: Path) -> None:
    result = actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_is_there_so_run_scripts_are_checked() -> None:
    assert SHELLCHECK.is_file(), "run `sudo tools/setup` (it installs shellcheck)"


@pytest.mark.parametrize(
    "finding",
    [
        'unexpected key "branchs" for "push" section',  # a typo in a trigger
        'input "fetch-dept" is not defined in action "actions/checkout@v4"',
        '"github.event.head_commit.message" is potentially untrusted',  # script injection
        "SC2086",  # shellcheck: unquoted expansion
        'property "nope" is not defined in object type',  # a step that does not exist
        'property "env" is not defined in object type',  # no matrix here
    ],
)
def test_a_broken_workflow_is_caught(finding: str) -> None:
    result = actionlint(HERE / "testdata" / "broken.yaml")
    assert result.returncode == 1
    assert finding in result.stdout, result.stdout
