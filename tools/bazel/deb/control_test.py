"""control.py: Depends parsing and version checks, as dpkg reads them."""

from __future__ import annotations

import subprocess

import pytest

from tools.bazel.deb.control import Dependency, depends, parse_depends, parse_stanza, satisfies
from tools.bazel.deb.lock import apt_candidate, resolve, version_skew


def test_parse_depends_keeps_alternatives_and_drops_arch_qualifiers() -> None:
    parsed = parse_depends("libc6 (>= 2.34), media-types | mime-support, python3:any (= 3.11)")
    assert parsed == [
        [Dependency("libc6", ">=", "2.34")],
        [Dependency("media-types"), Dependency("mime-support")],
        [Dependency("python3", "=", "3.11")],
    ]


def test_parse_stanza_and_depends() -> None:
    fields = parse_stanza("Package: a\nPre-Depends: b\nDepends: c,\n d\nDescription: x\n more\n")
    assert [[d.name for d in g] for g in depends(fields)] == [["b"], ["c"], ["d"]]


def test_satisfies_uses_debian_ordering() -> None:
    assert satisfies("1:4.4.33-2", Dependency("libcrypt1", ">=", "1:4.1.0"))
    assert satisfies("2.36-9+deb12u10", Dependency("libc6", ">>", "2.36-9"))
    assert not satisfies("1.0~rc1", Dependency("x", ">=", "1.0"))


def test_resolve_skips_excluded_and_takes_first_real_alternative() -> None:
    archive = {
        "app": {"Package": "app", "Version": "1", "Depends": "lib, debconf | debconf-2.0, v | w"},
        "lib": {"Package": "lib", "Version": "2"},
        "w": {"Package": "w", "Version": "1"},
    }
    chosen = resolve(["app"], {"debconf", "debconf-2.0"}, archive.get)
    assert sorted(chosen) == ["app", "lib", "w"]


def test_version_skew_names_packages_the_architectures_disagree_on() -> None:
    locks = {"amd64": {"libc6": "2.36-9", "zlib1g": "1"}, "arm64": {"libc6": "2.36-9+u1"}}
    assert version_skew(locks) == ["libc6: amd64 2.36-9, arm64 2.36-9+u1"]
    assert version_skew({"amd64": {"a": "1"}, "arm64": {"a": "1", "b": "2"}}) == []


def test_apt_candidate_falls_back_to_architecture_all(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def fake_run(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        asked.append(argv[-1])
        out = (
            "Package: tzdata\nVersion: 1\nArchitecture: all\n" if argv[-1].endswith(":all") else ""
        )
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    apt_candidate.cache_clear()
    assert apt_candidate("tzdata", "arm64") == {
        "Package": "tzdata",
        "Version": "1",
        "Architecture": "all",
    }
    assert asked == ["tzdata:arm64", "tzdata:all"]
    apt_candidate.cache_clear()
