"""Fails when requirements.in names a package the lock does not pin.

A cheap offline check that the lock was regenerated after an edit.
"""

import re
import sys


def names(path: str, pinned_only: bool) -> set[str]:
    found = set()
    with open(path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("--"):
                continue
            if pinned_only and "==" not in line:
                continue
            found.add(re.sub(r"[-_.]+", "-", re.split(r"[\[=<>~! ]", line)[0]).lower())
    return found


def main() -> int:
    wanted, locked = names(sys.argv[1], False), names(sys.argv[2], True)
    missing = sorted(wanted - locked)
    if missing:
        print(f"not in the lock: {missing}; run `bazel run //:requirements.update`")
        return 1
    print(f"all {len(wanted)} direct requirements are pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
