"""What is (and is not) inside each image, read from its layers without running it.

Distroless: no shell, no package manager, files owned by root, a non-root
user. And no leaks: no build paths (workspace, Bazel output base, caches), no
credential files or private keys, only the wheels the binary imports.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
from pathlib import Path

import pytest

from tests.images.images import IMAGES, Image, runfile

SHELLS_AND_PACKAGE_MANAGERS = {
    "ash",
    "bash",
    "busybox",
    "dash",
    "sh",
    "zsh",
    "ksh",
    "su",
    "sudo",
    "login",
    "apt",
    "apt-get",
    "apt-cache",
    "dpkg",
    "dpkg-deb",
    "pip",
    "pip3",
    "pip3.11",
    "perl",
}
SHELLS = {"ash", "bash", "busybox", "csh", "dash", "ksh", "mksh", "sh", "tcsh", "zsh"}
CREDENTIAL_FILES = {
    ".netrc",
    ".pypirc",
    "pip.conf",
    ".git-credentials",
    ".npmrc",
    "auth.json",
    "id_rsa",
    "id_ecdsa",
    "id_ed25519",
    ".bash_history",
    ".python_history",
}
# Packages the build and tests use that no service imports at run time.
DEV_ONLY_DISTRIBUTIONS = {
    "pytest",
    "hypothesis",
    "mypy",
    "ruff",
    "grpcio_tools",
    "pip",
    "pytest_asyncio",
    "types_protobuf",
}
# A PEM private key with a body (cryptography's ssh.py holds the bare marker).
PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]{64,}-----END")


def build_paths() -> list[bytes]:
    """Paths of this build that must not appear in any image file."""
    source = Path(os.path.realpath(runfile("tests/images/contents_test.py")))
    workspace = str(source.parents[2])
    generated = os.path.realpath(runfile("tests/images/session_core_recipe.json"))
    output_base = generated.split("/execroot/")[0]
    needles = {
        workspace + "/",
        output_base,
        "/root/.cache",
        "bazel-out/",
        "/execroot/",
        "_bazel_root",
    }
    return sorted(n.encode() for n in needles)


def merged(image: Image) -> dict[str, tarfile.TarInfo]:
    """The image's filesystem: later layers' entries replace earlier ones."""
    entries: dict[str, tarfile.TarInfo] = {}
    for _, tar in image.layers():
        for member in tar.getmembers():
            entries[member.name.rstrip("/")] = member
    return entries


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_config_is_non_root_and_labelled(image: Image) -> None:
    config = image.config()["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"][0] == "/usr/bin/python3.11"
    assert config["WorkingDir"] == "/app"
    assert config["ExposedPorts"]
    for label in ("source", "revision", "version"):
        assert config["Labels"][f"org.opencontainers.image.{label}"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONPATH"] == "/app"
    # Credentials are the deployment's to give, never the image's.
    for key, value in env.items():
        assert not re.search(r"PASSWORD|SECRET|TOKEN|DSN|_URL$", key), key
        assert not re.search(r"://[^/@\s]+@", value), key
    assert image.config()["created"] == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_distroless(image: Image) -> None:
    entries = merged(image)
    programs = {Path(name).name for name, member in entries.items() if not member.isdir()}
    assert not programs & SHELLS_AND_PACKAGE_MANAGERS
    assert "var/lib/dpkg/status" not in entries
    assert not [n for n in entries if n.startswith(("etc/apt", "var/lib/apt", "var/cache/apt"))]
    # Login-shell setup and the scripts of a system with a shell.
    for path in (
        "etc/profile.d",
        "etc/skel",
        "etc/update-motd.d",
        "usr/sbin/update-ca-certificates",
    ):
        assert path not in entries, path
    assert entries["usr/bin/python3.11"].isfile()
    passwd = entries["etc/passwd"]
    assert passwd.isfile()
    home = entries["home/nonroot"]
    assert (home.uid, home.gid) == (65532, 65532)


def shell_interpreter(head: bytes) -> str | None:
    """The shell a `#!` line names (`#!/bin/sh -e`, `#! /usr/bin/env bash`), if any."""
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if words and Path(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    if words and Path(words[0]).name in SHELLS:
        return words[0]
    return None


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_no_shell_scripts(image: Image) -> None:
    """Without a shell, a shell script is dead weight (and a hint to install one)."""
    scripts = []
    for index, tar in image.layers():
        for member in tar.getmembers():
            if not member.isfile():
                continue
            extracted = tar.extractfile(member)
            assert extracted is not None
            shell = shell_interpreter(extracted.read(256))
            if shell is not None:
                scripts.append(f"layer {index}: {member.name} runs {shell}")
    assert scripts == []


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_owned_by_root_and_not_writable(image: Image) -> None:
    for name, member in merged(image).items():
        if member.issym():
            continue
        if not name.startswith("home/nonroot"):
            assert member.uid == 0, name
        assert not member.mode & (stat.S_ISUID | stat.S_ISGID) or member.isdir(), name
        if member.mode & stat.S_IWOTH:
            # Only shared scratch directories (/tmp, /var/tmp, /var/lock), with the sticky bit.
            assert member.isdir() and member.mode & stat.S_ISVTX, name


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_no_build_paths_or_credentials(image: Image) -> None:
    needles = build_paths()
    leaks = []
    for index, tar in image.layers():
        for member in tar.getmembers():
            name = member.name
            if Path(name).name in CREDENTIAL_FILES or "/.git/" in f"/{name}":
                leaks.append(f"layer {index}: credential-like file {name}")
            for needle in needles:
                if needle in name.encode() or needle in member.linkname.encode():
                    leaks.append(f"layer {index}: {name} names {needle!r}")
            if not member.isfile():
                continue
            extracted = tar.extractfile(member)
            assert extracted is not None
            data = extracted.read()
            leaks += [f"layer {index}: {name} holds {n!r}" for n in needles if n in data]
            if PRIVATE_KEY.search(data):
                leaks.append(f"layer {index}: {name} holds a private key")
    assert leaks == []


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_only_run_time_wheels(image: Image) -> None:
    site = "usr/local/lib/python3.11/dist-packages/"
    distributions = {
        Path(name).name.split("-")[0].lower()
        for name in merged(image)
        if name.startswith(site) and name.endswith(".dist-info") and "/" not in name[len(site) :]
    }
    assert "grpcio" in distributions
    assert not distributions & DEV_ONLY_DISTRIBUTIONS
