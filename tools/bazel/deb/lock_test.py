"""Checks the `packages.<arch>.lock` files against packages.toml and the packages themselves.

Offline, from the fetched .debs of every architecture: every `include` is
locked, no `exclude` is, each file is the locked name, version and
architecture, each set is closed under its packages' own Pre-Depends/Depends
(so nothing the base needs is missing), and the architectures pin the same
version of every package they share (one set of sources for every image).
A failure means: `bazel run //third_party/debian:lock`.

Usage: lock_test.py packages.toml [--arch ARCH LOCK DEB...]... (the deb_lock
macro writes these arguments).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tools.bazel.deb.control import control_file, parse_stanza
from tools.bazel.deb.lock import read_config, read_lock, unmet, version_skew


def problems(config: Path, arch: str, lock: Path, debs: list[Path]) -> list[str]:
    """What is wrong with one architecture's lock and fetched packages."""
    include, exclude, _ = read_config(config)
    locked = {entry.name: entry for entry in read_lock(lock)}
    found = [f"{arch}: not locked: {name}" for name in include if name not in locked]
    found += [f"{arch}: locked but excluded: {name}" for name in sorted(exclude & set(locked))]
    found += [
        f"{arch}: {entry.name} is locked for {entry.arch}"
        for entry in locked.values()
        if entry.arch not in (arch, "all")
    ]
    stanzas = {}
    for deb in debs:
        fields = parse_stanza(control_file(deb))
        name = fields["Package"]
        stanzas[name] = fields
        entry = locked.get(name)
        got = f"{fields['Version']} {fields['Architecture']}"
        want = f"{entry.version} {entry.arch}" if entry else None
        if got != want:
            found.append(f"{arch}: {deb.name} is {name} {got}, lock says {want}")
    found += [f"{arch}: fetched set lacks {name}" for name in sorted(set(locked) - set(stanzas))]
    found += [f"{arch}: unmet dependency of {problem}" for problem in unmet(stanzas, exclude)]
    return found


def main() -> int:
    config = Path(sys.argv[1])
    locks: dict[str, Path] = {}
    debs: dict[str, list[Path]] = {}
    groups = " ".join(sys.argv[2:]).split("--arch")
    for group in groups[1:]:
        arch, lock_name, *files = group.split()
        locks[arch] = Path(lock_name)
        debs[arch] = [Path(f) for f in files]
    _, _, architectures = read_config(config)
    found = [f"no lock for {arch}" for arch in architectures if arch not in locks]
    for arch, lock in sorted(locks.items()):
        found += problems(config, arch, lock, debs.get(arch, []))
    pinned = {arch: {e.name: e.version for e in read_lock(lock)} for arch, lock in locks.items()}
    found += [f"version skew: {problem}" for problem in version_skew(pinned)]
    for problem in found:
        print(problem)
    if found:
        print("regenerate the locks: bazel run //third_party/debian:lock")
        return 1
    counts = ", ".join(f"{arch} {len(debs.get(arch, []))}" for arch in sorted(locks))
    print(f"packages ({counts}): locked, fetched, closed under their dependencies, same versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
