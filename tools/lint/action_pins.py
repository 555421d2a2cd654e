"""Every `uses:` of an outside action names a commit, as .github/actions.lock records.

A tag (`@v4`) is a pointer the action's owner, or whoever takes over the
repository, can move to other code at any time; a 40-hex commit cannot be
moved. So each workflow line must read `uses: <action>@<commit> # <tag>`, the
comment saying which release that commit was, and the lock is the one place
that says it. Local actions and reusable workflows (`./...`) are our own code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# `uses: value` as a mapping entry or a list item; the value may be quoted.
_USES_LINE = re.compile(
    r"""^\s*(?:-\s+)?uses:\s*(?P<q>["']?)(?P<value>[^\s"'#]+)(?P=q)\s*(?:#\s*(?P<comment>.*))?$"""
)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_RELEASE_TAG = re.compile(r"^v\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class Pin:
    """One line of the lock: an action, its release tag and that tag's commit."""

    action: str  # owner/repo or owner/repo/path
    tag: str  # vX.Y.Z
    commit: str  # 40 hex


@dataclass(frozen=True)
class Uses:
    """One `uses:` line of a workflow."""

    line: int
    value: str
    comment: str | None


def parse_lock(text: str) -> dict[str, Pin]:
    """The lock's pins by action; a malformed or repeated line is a ValueError."""
    pins: dict[str, Pin] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"actions.lock:{number}: want `action tag commit`, got {raw!r}")
        action, tag, commit = fields
        if not _RELEASE_TAG.match(tag) or not _COMMIT.match(commit):
            raise ValueError(f"actions.lock:{number}: want a vX.Y.Z tag and a 40-hex commit")
        if action in pins:
            raise ValueError(f"actions.lock:{number}: {action} is pinned twice")
        pins[action] = Pin(action, tag, commit)
    return pins


def uses_lines(text: str) -> list[Uses]:
    """Every `uses:` line of a workflow, with its trailing comment."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _USES_LINE.match(raw)
        if match:
            comment = match.group("comment")
            found.append(Uses(number, match.group("value"), comment.strip() if comment else None))
    return found


def uses_values(document: Any) -> Iterator[str]:
    """Every `uses` value of a parsed workflow (jobs and steps), however it is written."""
    jobs = document.get("jobs", {}) if isinstance(document, Mapping) else {}
    for job in jobs.values():
        if not isinstance(job, Mapping):
            continue
        if isinstance(job.get("uses"), str):
            yield job["uses"]
        for step in job.get("steps") or []:
            if isinstance(step, Mapping) and isinstance(step.get("uses"), str):
                yield step["uses"]


def problems(name: str, text: str, parsed: Any, pins: Mapping[str, Pin]) -> list[str]:
    """What is unpinned or differs from the lock in one workflow; empty when all is well."""
    lines = uses_lines(text)
    found = []
    # A `uses:` written in a form the line scanner misses (flow style, a
    # multi-line scalar) would slip through unchecked: refuse it instead.
    unseen = sorted(set(uses_values(parsed)) - {u.value for u in lines})
    found += [f"{name}: `uses: {value}` is not on a line of its own" for value in unseen]
    for item in lines:
        where = f"{name}:{item.line}"
        if item.value.startswith("./"):
            continue  # our own action or reusable workflow
        if item.value.startswith("docker://"):
            found.append(f"{where}: {item.value} is an image by tag; no docker:// actions")
            continue
        action, _, ref = item.value.partition("@")
        pin = pins.get(action)
        if not _COMMIT.match(ref):
            found.append(f"{where}: {item.value} is not pinned to a 40-hex commit")
        elif pin is None:
            found.append(f"{where}: {action} is not in .github/actions.lock")
        elif ref != pin.commit:
            found.append(f"{where}: {action}@{ref} is not the locked {pin.commit} ({pin.tag})")
        elif item.comment != pin.tag:
            found.append(f"{where}: {action} needs the comment `# {pin.tag}`")
    return found


def unused(pins: Mapping[str, Pin], texts: Iterable[str]) -> list[str]:
    """Lock entries no workflow uses (a stale pin is a pin nobody reviews)."""
    used = {u.value.partition("@")[0] for text in texts for u in uses_lines(text)}
    return sorted(set(pins) - used)


def with_major_tags(text: str, pins: Mapping[str, Pin]) -> str:
    """The workflow with each locked commit written as its major tag (`@v4`).

    actionlint knows the inputs of popular actions by `owner/repo@vN` only; a
    commit hides them from it. Linting this copy keeps that check.
    """

    def major(match: re.Match[str]) -> str:
        action, commit = match.group(1), match.group(2)
        pin = pins.get(action)
        if pin is None or pin.commit != commit:
            return match.group(0)
        return f"{action}@{pin.tag.split('.', 1)[0]}"

    return re.sub(r"([\w.-]+/[\w./-]+)@([0-9a-f]{40})", major, text)
