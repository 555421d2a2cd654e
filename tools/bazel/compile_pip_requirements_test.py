"""The platform lock: same pins, that platform's hashes, and gaps named (pip replaced by a fake)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tools.bazel.compile_pip_requirements import pins, platform_lock, strip_extras
from tools.bazel.wheel_platforms import pip_target_flags

LOCK = """\
# header
grpcio==1.85.3 \\
    --hash=sha256:aaaa
pyjwt[crypto]==2.10.1 \\
    --hash=sha256:bbbb
sdist-only==0.1 \\
    --hash=sha256:cccc
"""

WHEELS = {
    "grpcio==1.85.3": "grpcio-1.85.3-cp311-cp311-manylinux2014_aarch64.whl",
    "pyjwt==2.10.1": "PyJWT-2.10.1-py3-none-any.whl",
}


def fake_pip(specs: list[str], dest: Path) -> str:
    """Like pip download: stops at the first spec without a wheel, else saves them all."""
    for spec in specs:
        if strip_extras(spec) not in WHEELS:
            return f"ERROR: No matching distribution found for {spec}\n"
    for spec in specs:
        (dest / WHEELS[strip_extras(spec)]).write_bytes(spec.encode())
    return ""


def test_pins_keep_extras_and_order() -> None:
    assert pins(LOCK) == ["grpcio==1.85.3", "pyjwt[crypto]==2.10.1", "sdist-only==0.1"]


def test_platform_lock_hashes_each_wheel_and_records_the_gap() -> None:
    text = platform_lock(pins(LOCK), "linux_aarch64", fake_pip)
    grpcio = hashlib.sha256(b"grpcio==1.85.3").hexdigest()
    pyjwt = hashlib.sha256(b"pyjwt[crypto]==2.10.1").hexdigest()
    body = [line for line in text.splitlines() if not line.startswith("# Generated")][2:]
    assert body == [
        "grpcio==1.85.3 \\",
        f"    --hash=sha256:{grpcio}",
        "pyjwt[crypto]==2.10.1 \\",
        f"    --hash=sha256:{pyjwt}",
        "# no linux_aarch64 wheel: sdist-only==0.1",
    ]


def test_other_pip_failures_stop_the_lock() -> None:
    with pytest.raises(SystemExit, match="connection refused"):
        platform_lock(["grpcio==1.85.3"], "linux_aarch64", lambda _s, _d: "connection refused")


def test_target_flags_list_every_manylinux_tag_glibc_2_36_runs() -> None:
    flags = pip_target_flags("linux_aarch64")
    assert "--platform=manylinux_2_36_aarch64" in flags
    assert "--platform=manylinux_2_17_aarch64" in flags
    assert "--platform=manylinux2014_aarch64" in flags
    assert "--platform=manylinux_2_37_aarch64" not in flags
    assert "--abi=cp311" in flags and "--only-binary=:all:" in flags
