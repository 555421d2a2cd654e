"""Which pins of a lock have known vulnerabilities: pure logic, no network.

The index's JSON API is the advisory source (what pip-audit's default
service reads): a release's own record lists the vulnerabilities known for
that release; a project's record lists them for its latest release only. So
a pin is audited when its release record answered, or when it is the latest
release and the project record answered; otherwise it is not, and says why.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

# `name[extras]==version` at the start of a lock line; hashes and markers follow.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> list[Pin]:
    """The `name==version` pins of a requirements lock; anything else is a ValueError."""
    pins = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "--hash")):
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"line {number}: not a `name==version` pin: {raw!r}")
        pins.append(Pin(canonical(match.group(1)), match.group(2)))
    if not pins:
        raise ValueError("no `name==version` pins")
    return pins


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    summary: str


class Outcome(enum.Enum):
    CLEAN = "no known vulnerabilities"
    VULNERABLE = "vulnerable"
    UNAUDITED = "not audited"
    ERROR = "no answer"


@dataclass(frozen=True)
class Finding:
    pin: Pin
    outcome: Outcome
    source: str  # which record answered, or why none could
    advisories: tuple[Advisory, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What the index said for one URL: the HTTP status and the JSON, or an error."""

    status: int | None  # None: no HTTP answer at all (DNS, TLS, timeout)
    document: Mapping[str, Any] | None = None
    error: str = ""


def advisories(entries: Sequence[Mapping[str, Any]]) -> tuple[Advisory, ...]:
    """The record's vulnerabilities, withdrawn ones dropped, one per alias group.

    The index lists one vulnerability under each database's id (PYSEC-…,
    GHSA-…), each naming the others as aliases: count it once.
    """
    kept: list[Advisory] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.get("withdrawn"):
            continue
        ident = str(entry["id"])
        aliases = tuple(str(a) for a in entry.get("aliases") or ())
        if ident in seen or seen.intersection(aliases):
            seen.update(aliases, (ident,))
            continue
        seen.update(aliases, (ident,))
        summary = str(entry.get("summary") or entry.get("details") or "").strip()
        kept.append(
            Advisory(
                ident,
                aliases,
                tuple(str(v) for v in entry.get("fixed_in") or ()),
                summary.splitlines()[0][:120] if summary else "",
            )
        )
    return tuple(kept)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def judge(pin: Pin, release: Answer, project: Answer | None) -> Finding:
    """The finding for one pin from its release record and, when needed, its project record."""
    if release.status == 200 and release.document is not None:
        found = advisories(release.document.get("vulnerabilities") or [])
        outcome = Outcome.VULNERABLE if found else Outcome.CLEAN
        return Finding(pin, outcome, "the release's record", found)
    if project is None or project.status != 200 or project.document is None:
        why = (project or release).error or f"HTTP {(project or release).status}"
        return Finding(pin, Outcome.ERROR, f"the index did not answer for {pin.name}: {why}")
    releases = project.document.get("releases") or {}
    if not any(_same_version(pin.version, v) for v in releases):
        return Finding(pin, Outcome.ERROR, f"the index has no release {pin.version}")
    latest = str(project.document.get("info", {}).get("version", ""))
    if not _same_version(pin.version, latest):
        return Finding(
            pin,
            Outcome.UNAUDITED,
            f"the release's record is not served (HTTP {release.status}) and the project's "
            f"lists advisories only for its latest release, {latest}",
        )
    found = advisories(project.document.get("vulnerabilities") or [])
    outcome = Outcome.VULNERABLE if found else Outcome.CLEAN
    return Finding(pin, outcome, "the project's record (the latest release)", found)
