"""layer.py: the same entries give the same bytes, whatever the inputs' order and metadata."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tools.bazel.oci.layer import Entry, Layer, build, normalize, usrmerge


def spec(tmp_path: Path, order: list[str], mtime: float) -> dict[str, Any]:
    files = []
    for name in order:
        src = tmp_path / f"{name}-{mtime}"
        src.write_text(f"content of {name}\n")
        os.utime(src, (mtime, mtime))
        files.append({"path": f"/app/pkg/{name}", "src": str(src)})
    return {
        "dirs": [{"path": "tmp", "mode": 0o1777, "uid": 0, "gid": 0}],
        "files": files,
        "symlinks": [{"path": "/lib", "target": "usr/lib"}],
    }


def test_output_ignores_input_order_mtime_and_location(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two-longer"
    first.mkdir()
    second.mkdir()
    build(spec(first, ["b.py", "a.py", "c.py"], 1e9)).write(tmp_path / "one.tar.gz")
    build(spec(second, ["c.py", "a.py", "b.py"], 2e9)).write(tmp_path / "two.tar.gz")
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()


def test_entries_are_sorted_normalised_and_have_parents(tmp_path: Path) -> None:
    build(spec(tmp_path, ["b.py", "a.py"], 1e9)).write(tmp_path / "out.tar.gz")
    with tarfile.open(tmp_path / "out.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "app",
        "app/pkg",
        "app/pkg/a.py",
        "app/pkg/b.py",
        "lib",
        "tmp",
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert members[2].mode == 0o644
    assert members[-1].mode == 0o1777


def test_gzip_header_carries_no_name_or_time(tmp_path: Path) -> None:
    Layer().write(tmp_path / "empty.tar.gz")
    header = (tmp_path / "empty.tar.gz").read_bytes()[:10]
    assert header[3] & 0x08 == 0  # no FNAME field
    assert header[4:8] == b"\0\0\0\0"  # MTIME
    assert gzip.decompress((tmp_path / "empty.tar.gz").read_bytes())


def test_conflicting_files_fail_identical_ones_merge() -> None:
    layer = Layer()
    layer.add(Entry("etc/x", tarfile.REGTYPE, 0o644, data=b"1", origin="a.deb"))
    layer.add(Entry("etc/x", tarfile.REGTYPE, 0o644, data=b"1", origin="b.deb"))
    with pytest.raises(SystemExit, match="conflicts"):
        layer.add(Entry("etc/x", tarfile.REGTYPE, 0o644, data=b"2", origin="c.deb"))


def test_paths() -> None:
    assert normalize("./usr//bin/") == "usr/bin"
    assert usrmerge("lib/x86_64-linux-gnu/libc.so.6") == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert usrmerge("library/x") == "library/x"
    with pytest.raises(SystemExit):
        normalize("usr/../../etc")


def test_a_missing_platform_wheel_fails_naming_the_package() -> None:
    missing = {
        "lock": "//:requirements_lock_linux_aarch64.txt",
        "packages": ["sdist-only 0.1"],
        "platform": "linux_aarch64",
        "target": "//services/x:image_linux_arm64_layers",
    }
    with pytest.raises(SystemExit) as failure:
        build({"files": [], "missing_wheels": missing})
    message = str(failure.value)
    assert "no linux_aarch64 wheel for sdist-only 0.1" in message
    assert "//services/x:image_linux_arm64_layers" in message
    assert "requirements_lock_linux_aarch64.txt" in message
