"""Checks packages.lock against packages.toml and the packages themselves.

Offline, from the fetched .debs: every `include` is locked, no `exclude` is,
each file is the locked name and version, and the set is closed under the
packages' own Pre-Depends/Depends (so nothing the base needs is missing).
A failure means: `bazel run //third_party/debian:lock`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tools.bazel.deb.control import control_file, parse_stanza
from tools.bazel.deb.lock import read_config, unmet


def problems(config: Path, lock: Path, debs: list[Path]) -> list[str]:
    include, exclude, arch = read_config(config)
    locked = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version, _ = line.split()
            locked[name] = version
    found = [f"not locked: {name}" for name in include if name not in locked]
    found += [f"locked but excluded: {name}" for name in sorted(exclude & set(locked))]
    stanzas = {}
    for deb in debs:
        fields = parse_stanza(control_file(deb))
        name = fields["Package"]
        stanzas[name] = fields
        if locked.get(name) != fields["Version"]:
            found.append(f"{deb.name} is {name} {fields['Version']}, lock says {locked.get(name)}")
        if fields["Architecture"] not in (arch, "all"):
            found.append(f"{deb.name} is for {fields['Architecture']}, not {arch}")
    found += [f"fetched set lacks {name}" for name in sorted(set(locked) - set(stanzas))]
    found += [f"unmet dependency of {problem}" for problem in unmet(stanzas, exclude)]
    return found


def main() -> int:
    config, lock, *debs = (Path(arg) for arg in sys.argv[1:])
    found = problems(config, lock, debs)
    for problem in found:
        print(problem)
    if found:
        print("regenerate the lock: bazel run //third_party/debian:lock")
        return 1
    print(f"{len(debs)} packages: locked, fetched and closed under their dependencies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
