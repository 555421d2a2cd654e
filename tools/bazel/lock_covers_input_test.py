"""Fails when requirements.in names a package the lock does not pin, or a platform lock drifts.

A cheap offline check that the locks were regenerated after an edit: every
direct requirement is pinned, and each platform lock given after the main
one pins exactly the main lock's `name==version`s (or records that the
platform has no wheel for one), so every image runs the same versions.

Usage: lock_covers_input_test.py requirements.in requirements_lock.txt [PLATFORM_LOCK]...
"""

import re
import sys

_GAP = re.compile(r"^# no (\S+) wheel: (\S+)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def names(path: str, pinned_only: bool) -> set[str]:
    found = set()
    with open(path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("--"):
                continue
            if pinned_only and "==" not in line:
                continue
            found.add(normalize(re.split(r"[\[=<>~! ]", line)[0]))
    return found


def pins(path: str) -> set[str]:
    """`name==version` of every pinned line, and of every recorded gap."""
    found = set()
    with open(path) as handle:
        for line in handle:
            gap = _GAP.match(line.strip())
            spec = gap.group(2) if gap else line.split("#", 1)[0].strip().split(" ")[0]
            if "==" in spec:
                name, version = spec.split("==", 1)
                found.add(f"{normalize(name.split('[', 1)[0])}=={version}")
    return found


def main() -> int:
    wanted, locked = names(sys.argv[1], False), names(sys.argv[2], True)
    missing = sorted(wanted - locked)
    failed = False
    if missing:
        print(f"not in the lock: {missing}; run `bazel run //:requirements.update`")
        failed = True
    main_pins = pins(sys.argv[2])
    for platform_lock in sys.argv[3:]:
        theirs = pins(platform_lock)
        if theirs != main_pins:
            print(
                f"{platform_lock} drifted from {sys.argv[2]}: only there "
                f"{sorted(theirs - main_pins)}, missing {sorted(main_pins - theirs)}; "
                "run `bazel run //:requirements.update`"
            )
            failed = True
    if failed:
        return 1
    print(f"all {len(wanted)} direct requirements are pinned, in {len(sys.argv) - 2} locks alike")
    return 0


if __name__ == "__main__":
    sys.exit(main())
