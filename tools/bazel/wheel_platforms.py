"""The platforms besides the build machine's that images take wheels for.

One table shared by the lock command (compile_pip_requirements.py) and the
pip_parse repository rule (pip_repository.py), so the wheels pinned and the
wheels fetched are chosen by the same tags. pip 23 (bookworm's) does not
widen `--platform manylinux_2_36_aarch64` to the older manylinux tags a
glibc 2.36 system also runs, so every tag is listed.
"""

from __future__ import annotations

# bookworm's libc6 (third_party/debian/packages.*.lock): 2.36.
GLIBC_MINOR = 36
# Wheel platform (as in the lock's file name) → machine name in manylinux tags.
PLATFORMS = {"linux_aarch64": "aarch64"}


def pip_target_flags(platform: str) -> list[str]:
    """pip's flags choosing CPython 3.11 wheels for `platform` (only those: --only-binary)."""
    machine = PLATFORMS[platform]
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(GLIBC_MINOR, 16, -1)]
    tags.append(f"manylinux2014_{machine}")
    return [
        *(f"--platform={tag}" for tag in tags),
        "--implementation=cp",
        "--python-version=3.11",
        "--abi=cp311",
        "--only-binary=:all:",
    ]
