"""The externals table, tools/setup and the code agree, and this machine has them all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.externals import doctor
from tools.externals.externals import (
    EXTERNALS,
    bare_programs,
    cluster_tools,
    program_paths,
    setup_apt_packages,
    setup_go_tools,
)

REPO = doctor.REPO  # the real checkout: its .tools/bin is what setup built
# The sources, as Bazel declares them (//:all_sources): every package's files.
SCANNED = Path(os.environ["RUNFILES_DIR"]) / os.environ["TEST_WORKSPACE"]
SETUP = (SCANNED / "tools" / "setup").read_text()
KNOWN = {item.path for item in EXTERNALS}
SOURCES = sorted(
    path
    for path in SCANNED.rglob("*")
    if path.is_file()
    and (path.suffix in {".py", ".bzl", ".sh", ".conf"} or path.parent.name == "tools")
    and "external" not in path.relative_to(SCANNED).parts[:1]  # wheels: not our code
    and path.name not in {"externals.py", "externals_test.py"}  # the table; its fixtures
)


def test_setup_arrays_parse() -> None:
    text = 'apt_packages=(\n  "bazel=1"  # why\n  a b\n)\ngo_tools=(\n  "kustomize m/k@v1"\n)\n'
    assert setup_apt_packages(text) == {"bazel", "a", "b"}
    assert setup_go_tools(text) == {"kustomize"}
    with pytest.raises(ValueError, match="apt_packages"):
        setup_apt_packages("nothing here")


def test_cluster_tools_count_only_when_setup_builds_them() -> None:
    build = (
        'targets=(\n  "etcd|etcd|go.etcd.io/etcd/server/v3|"\n'
        '  "kubectl|kubernetes|k8s.io/x|-X a=b"\n)\n'
    )
    assert cluster_tools('"$repo/tools/cluster/build_tools.sh"\n', build) == {"etcd", "kubectl"}
    assert cluster_tools("no call here", build) == set()


def test_scanners_find_paths_and_bare_names() -> None:
    code = (
        'subprocess.run(["podman", "x"])\n'
        'X = "/usr/sbin/iptables"\n'
        'Y = Path("/usr/lib/cni/bridge")\n'
    )
    assert bare_programs(code) == {"podman"}
    assert program_paths(code) == {"/usr/sbin/iptables", "/usr/lib/cni/bridge"}
    assert bare_programs('subprocess.run([SKOPEO, "copy"])') == set()
    assert bare_programs('asyncio.create_subprocess_exec("redis-server", x)') == {"redis-server"}
    assert bare_programs('subprocess.CompletedProcess(["podman"], 0)') == set()
    assert program_paths('SH = "/bin/sh"  # externals: not run here') == set()


def test_the_sources_were_scanned() -> None:
    names = {path.relative_to(SCANNED).as_posix() for path in SOURCES}
    assert {"tools/setup", "tests/images/images.py", "tools/bazel/oci/containers.conf"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(SCANNED).as_posix())
def test_code_runs_programs_only_by_a_known_path(path: Path) -> None:
    """A program run by bare name depends on the caller's PATH; one named by a
    path missing from the table may be missing on a fresh machine."""
    text = path.read_text(errors="replace")
    assert bare_programs(text) == set(), "name the program by its absolute path"
    unknown = program_paths(text) - KNOWN
    assert unknown == set(), "add each to tools/externals/externals.py (and tools/setup)"


def test_every_external_comes_from_setup_and_is_on_this_machine() -> None:
    assert doctor.problems(EXTERNALS, SETUP, REPO) == []


def test_a_package_setup_does_not_install_is_reported() -> None:
    found = doctor.problems(EXTERNALS, SETUP.replace(" iptables ", " "), REPO)
    assert "/usr/sbin/iptables: tools/setup does not install iptables" in found


def test_rehearse_never_purges_what_the_image_ships() -> None:
    base = doctor.base_image_packages()
    assert {"git", "postgresql-15", "ca-certificates"} <= base
    assert "bazel-bootstrap" not in base and "podman" not in base
