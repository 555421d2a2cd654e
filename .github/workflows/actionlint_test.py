"""actionlint (pinned, with shellcheck) over the workflows; a broken one proves it bites.

Every outside action is a commit from .github/actions.lock (tools/lint/action_pins).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.lint import action_pins

HERE = Path(__file__).resolve().parent
SHELLCHECK = Path("/usr/bin/shellcheck")  # Debian's, installed by tools/setup
PINS = action_pins.parse_lock((HERE.parent / "actions.lock").read_text())


def actionlint(*files: Path, major_tags: bool = True) -> subprocess.CompletedProcess[str]:
    """actionlint over copies of `files` in a .github/workflows of their own.

    With `major_tags`, each locked commit is written as its major tag first:
    actionlint checks a popular action's inputs only when it is named `@vN`.
    """
    root = Path(os.environ["TEST_TMPDIR"]) / ("major" if major_tags else "as-is")
    workflows = root / ".github" / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    copies = []
    for source in files:
        text = source.read_text()
        copy = workflows / source.name
        copy.write_text(action_pins.with_major_tags(text, PINS) if major_tags else text)
        copies.append(copy)
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
            *map(str, copies),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


WORKFLOWS = sorted(HERE.glob("*.yml"))


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "deploy.yml", "release.yml"}


def test_the_workflows_are_clean() -> None:
    # All together: release.yml calls deploy.yml by its local path.
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_a_locked_commit(workflow: Path) -> None:
    text = workflow.read_text()
    assert action_pins.problems(workflow.name, text, yaml.safe_load(text), PINS) == []


def test_the_lock_has_no_stale_pins() -> None:
    assert action_pins.unused(PINS, [w.read_text() for w in WORKFLOWS]) == []


def test_an_unpinned_workflow_is_caught() -> None:
    path = HERE / "testdata" / "unpinned.yaml"
    text = path.read_text()
    found = action_pins.problems(path.name, text, yaml.safe_load(text), PINS)
    assert found == [
        "unpinned.yaml: `uses: actions/setup-python@v5` is not on a line of its own",
        "unpinned.yaml:9: actions/checkout@v4 is not pinned to a 40-hex commit",
        "unpinned.yaml:10: actions/cache@v4.3.0 is not pinned to a 40-hex commit",
        "unpinned.yaml:11: actions/upload-artifact needs the comment `# v4.6.2`",
        "unpinned.yaml:15: github/codeql-action/init@8aad20d150bbac5944a9f9d289da16a4b0d87c1e"
        " is not the locked dd903d2e4f5405488e5ef1422510ee31c8b32357 (v3.36.2)",
        "unpinned.yaml:16: someone/unknown-action is not in .github/actions.lock",
        "unpinned.yaml:17: docker://alpine:3 is an image by tag; no docker:// actions",
        "unpinned.yaml:21: octo/workflows/.github/workflows/x.yml@main"
        " is not pinned to a 40-hex commit",
    ], found


def test_shellcheck_is_there_so_run_scripts_are_checked() -> None:
    assert SHELLCHECK.is_file(), "run `sudo tools/setup` (it installs shellcheck)"


@pytest.mark.parametrize(
    "finding",
    [
        'unexpected key "branchs" for "push" section',  # a typo in a trigger
        'input "fetch-dept" is not defined in action "actions/checkout@v4"',  # pinned, still known
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


def test_a_commit_alone_hides_an_actions_inputs_from_actionlint() -> None:
    """Why actionlint() rewrites pins to major tags: without it the typo passes."""
    result = actionlint(HERE / "testdata" / "broken.yaml", major_tags=False)
    assert result.returncode == 1  # the other mistakes are still found
    assert "fetch-dept" not in result.stdout, result.stdout
