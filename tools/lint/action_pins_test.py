"""The pin rules on small texts; actionlint_test runs them on the real workflows."""

from __future__ import annotations

import pytest
import yaml

from tools.lint import action_pins

COMMIT = "11d5960a326750d5838078e36cf38b85af677262"
LOCK = f"# comment\nactions/checkout   v4.4.0  {COMMIT}  # why\n\n"
PINS = action_pins.parse_lock(LOCK)


def check(workflow: str) -> list[str]:
    return action_pins.problems("w.yml", workflow, yaml.safe_load(workflow), PINS)


def steps(*lines: str) -> str:
    return "jobs:\n  j:\n    steps:\n" + "".join(f"      {line}\n" for line in lines)


def test_the_lock_parses() -> None:
    want = action_pins.Pin("actions/checkout", "v4.4.0", COMMIT)
    assert action_pins.parse_lock(LOCK) == {"actions/checkout": want}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("actions/checkout v4.4.0\n", "want `action tag commit`"),
        (f"actions/checkout v4 {COMMIT}\n", "vX.Y.Z tag"),
        ("actions/checkout v4.4.0 11d5960\n", "40-hex commit"),
        (f"a/b v1.0.0 {COMMIT}\na/b v1.0.1 {COMMIT}\n", "a/b is pinned twice"),
    ],
)
def test_a_bad_lock_is_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        action_pins.parse_lock(text)


def test_a_pinned_step_with_its_tag_passes() -> None:
    assert check(steps(f"- uses: actions/checkout@{COMMIT} # v4.4.0")) == []
    assert check(steps(f"- uses: 'actions/checkout@{COMMIT}'  #  v4.4.0")) == []


def test_local_actions_and_reusable_workflows_are_ours() -> None:
    assert check("jobs:\n  j:\n    uses: ./.github/workflows/deploy.yml\n") == []
    assert check(steps("- uses: ./.github/actions/x")) == []


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("- uses: actions/checkout@v4", "actions/checkout@v4 is not pinned to a 40-hex commit"),
        (
            "- uses: actions/checkout@" + "0" * 40 + " # v4.4.0",
            f"is not the locked {COMMIT} (v4.4.0)",
        ),
        (f"- uses: actions/checkout@{COMMIT}", "needs the comment `# v4.4.0`"),
        (f"- uses: actions/checkout@{COMMIT} # v4.3.0", "needs the comment `# v4.4.0`"),
        (f"- uses: other/action@{COMMIT} # v1.0.0", "other/action is not in .github/actions.lock"),
        ("- uses: docker://alpine:3", "no docker:// actions"),
        ("- {name: x, uses: actions/checkout@v4}", "is not on a line of its own"),
    ],
)
def test_each_unpinned_form_is_named(line: str, error: str) -> None:
    found = check(steps(line))
    assert len(found) == 1 and error in found[0], found


def test_a_job_level_reusable_workflow_is_checked() -> None:
    found = check("jobs:\n  j:\n    uses: octo/wf/.github/workflows/x.yml@main\n")
    assert found == [
        "w.yml:3: octo/wf/.github/workflows/x.yml@main is not pinned to a 40-hex commit"
    ]


def test_unused_pins_are_found() -> None:
    assert action_pins.unused(PINS, [steps("- uses: ./x")]) == ["actions/checkout"]
    assert action_pins.unused(PINS, [steps(f"- uses: actions/checkout@{COMMIT} # v4.4.0")]) == []


def test_major_tags_replace_only_locked_commits() -> None:
    text = steps(f"- uses: actions/checkout@{COMMIT} # v4.4.0", "- uses: a/b@" + "1" * 40)
    assert action_pins.with_major_tags(text, PINS) == steps(
        "- uses: actions/checkout@v4 # v4.4.0", "- uses: a/b@" + "1" * 40
    )
