"""Two clean builds give the same image and index digests: Bazel's own, from scratch.

The outer build's digest files of every image (amd64, arm64) and index
(this test's data) are compared with
those of a nested `bazel build` of the same images in a fresh output base:
no action cache, no outputs, repositories fetched again (the outer repository
cache is shared, so pinned downloads are not repeated; it holds only
content-addressed files and cannot change a digest). The nested build runs
from the real workspace directory, leaves its bazel-* links alone
(`--symlink_prefix=/`), and its server and output base are removed after.

The nested Bazel gets a clean environment, not the test's: with TEST_TMPDIR
set, Bazel would take it as its output user root (as in Bazel's own tests)
and extract a new install base there; RUNFILES_DIR, PYTHONPATH and the
like are the outer build's business. Sources edited between the outer build
and this test (another checkout's work) show up as a difference.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images.images import ARM64_IMAGES, IMAGES, INDEXES, Image, runfile

# A cold build of both platforms' images (arm64 .debs and wheels fetched again).
TIMEOUT = 600


def workspace_directory() -> Path:
    """The source tree: where this test's runfile symlinks point."""
    source = Path(os.path.realpath(runfile("tests/images/clean_build_test.py")))
    workspace = source.parents[2]
    assert (workspace / "WORKSPACE").is_file(), workspace
    return workspace


def outer_repository_cache() -> Path | None:
    """The outer build's repository cache: `<output user root>/cache/repos/v1`.

    Asking the outer Bazel (`bazel info repository_cache`) would wait on the
    server lock this very test holds; the default location is derived from
    the outer output base instead (no bazelrc here sets another).
    """
    digest = os.path.realpath(runfile(f"{IMAGES[0].package}/image.digest"))
    output_base = Path(digest.split("/execroot/")[0])
    cache = output_base.parent / "cache" / "repos" / "v1"
    return cache if cache.is_dir() else None


def clean_environment() -> dict[str, str]:
    user = pwd.getpwuid(os.getuid())
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": user.pw_dir,
        "USER": user.pw_name,
        "LANG": "C.UTF-8",
    }


def remove_tree(path: Path) -> None:
    """rm -rf, through the read-only directories Bazel leaves behind."""

    def make_writable(function: object, name: str, _: object) -> None:
        parent = os.path.dirname(name)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, os.stat(name).st_mode | stat.S_IWUSR | stat.S_IXUSR)
            shutil.rmtree(name, onerror=make_writable)
        else:
            os.unlink(name)

    shutil.rmtree(path, onerror=make_writable)


@pytest.fixture(scope="module")
def nested_bin() -> Iterator[Path]:
    """bazel-bin of a nested, clean build of every image."""
    bazel = shutil.which("bazel") or "/usr/bin/bazel"
    output_base = Path(tempfile.mkdtemp(prefix="clean_build_", dir="/tmp"))
    workspace = workspace_directory()
    environment = clean_environment()

    def nested(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [bazel, f"--output_base={output_base}", "--max_idle_secs=60", *args],
            cwd=workspace,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    flags = ["--symlink_prefix=/"]
    cache = outer_repository_cache()
    if cache is not None:
        flags.append(f"--repository_cache={cache}")
    try:
        built = nested("build", *flags, *[f"//{image.package}:image_index" for image in IMAGES])
        assert built.returncode == 0, built.stderr[-4000:]
        info = nested("info", *flags, "bazel-bin")
        assert info.returncode == 0, info.stderr[-4000:]
        yield Path(info.stdout.strip())
    finally:
        nested("shutdown")
        remove_tree(output_base)


def layers(layout: Path, digest: str) -> list[str]:
    blob = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return [layer["digest"] for layer in json.loads(blob.read_text())["layers"]]


@pytest.mark.parametrize("image", IMAGES + ARM64_IMAGES, ids=lambda i: f"{i.name}-{i.target}")
def test_clean_build_gives_the_same_digest(image: Image, nested_bin: Path) -> None:
    nested = nested_bin / image.package
    digest = (nested / f"{image.target}.digest").read_text().strip()
    if digest != image.digest:
        ours = layers(image.layout, image.digest)
        theirs = layers(nested / image.target, digest)
        differing = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b]
        pytest.fail(
            f"{image.name}: outer {image.digest} vs clean {digest}; "
            f"layers differing: {differing or 'none (config or layer count)'}"
        )


@pytest.mark.parametrize("index", INDEXES, ids=lambda i: i.name)
def test_clean_build_gives_the_same_index_digest(index: Image, nested_bin: Path) -> None:
    digest = (nested_bin / index.package / "image_index.digest").read_text().strip()
    assert digest == index.digest, f"{index.name}: outer {index.digest} vs clean {digest}"
