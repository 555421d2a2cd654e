"""Reading Debian packages without dpkg: ar members, control stanzas, Depends.

Shared by the lock resolver, the repository rule and the layer tool, so all
three agree on what a package is and what it needs.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# By path, not the caller's PATH (tools/externals lists every such program).
DPKG = "/usr/bin/dpkg"


AR_MAGIC = b"!<arch>\n"


@dataclass(frozen=True)
class Dependency:
    """One alternative of a Depends field: `name (op version)`."""

    name: str
    op: str = ""
    version: str = ""

    def __str__(self) -> str:
        return f"{self.name} ({self.op} {self.version})" if self.op else self.name


def ar_members(deb: Path) -> Iterator[tuple[str, bytes]]:
    """Yields (name, content) of each member of a .deb (a common-format ar archive)."""
    data = deb.read_bytes()
    if not data.startswith(AR_MAGIC):
        raise ValueError(f"{deb}: not a Debian package (no ar header)")
    offset = len(AR_MAGIC)
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        start = offset + 60
        yield name, data[start : start + size]
        offset = start + size + (size % 2)


def member_tar(deb: Path, prefix: str) -> tarfile.TarFile:
    """Opens the `control.tar.*` or `data.tar.*` member (any compression tarfile knows)."""
    for name, content in ar_members(deb):
        if name.startswith(prefix + ".tar"):
            if name.endswith(".zst"):
                raise ValueError(f"{deb}: {name} is zstd-compressed, which tarfile cannot read")
            return tarfile.open(fileobj=io.BytesIO(content), mode="r:*")
    raise ValueError(f"{deb}: no {prefix}.tar member")


def control_file(deb: Path) -> str:
    """The text of a package's DEBIAN/control."""
    with member_tar(deb, "control") as archive:
        for member in archive.getmembers():
            if member.name in ("./control", "control"):
                extracted = archive.extractfile(member)
                assert extracted is not None
                return extracted.read().decode()
    raise ValueError(f"{deb}: no control file")


def parse_stanza(text: str) -> dict[str, str]:
    """Parses one deb822 stanza; continuation lines are joined with newlines."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


_ALTERNATIVE = re.compile(
    r"^([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9]+)?\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?"
)


def parse_depends(field: str) -> list[list[Dependency]]:
    """`a (>= 1) | b, c` → [[a (>= 1), b], [c]]; architecture qualifiers are dropped."""
    groups = []
    for group in field.split(","):
        alternatives = []
        for alternative in group.split("|"):
            match = _ALTERNATIVE.match(alternative.strip())
            if match is None:
                raise ValueError(f"cannot parse dependency {alternative!r}")
            name, op, version = match.groups()
            alternatives.append(Dependency(name, op or "", version or ""))
        if alternatives:
            groups.append(alternatives)
    return groups


def depends(fields: dict[str, str]) -> list[list[Dependency]]:
    """Pre-Depends and Depends of a stanza: what must be present at run time."""
    return [
        group
        for key in ("Pre-Depends", "Depends")
        if fields.get(key)
        for group in parse_depends(fields[key])
    ]


_DPKG_OPS = {"<<": "lt", "<=": "le", "=": "eq", ">=": "ge", ">>": "gt", "<": "le", ">": "ge"}


def satisfies(version: str, dependency: Dependency) -> bool:
    """Whether `version` of dependency.name meets its constraint (dpkg's comparison)."""
    if not dependency.op:
        return True
    result = subprocess.run(
        [DPKG, "--compare-versions", version, _DPKG_OPS[dependency.op], dependency.version],
        check=False,
    )
    return result.returncode == 0
