"""Two clean rebuilds of each image index, outside Bazel and unlike it, give Bazel's digests.

Every platform's image (amd64, arm64) and the index of both are rebuilt.

The recipes (every layer and image action behind an image) are replayed
twice by tools/bazel/oci/replay.py, each time with inputs copied to other
paths and given other mtimes, spec entries shuffled, another umask, hash
seed, time zone and working directory. Anything of that reaching the
output (timestamps, file order, build paths) changes a digest and fails
here, naming the first layer that differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.images.images import IMAGES, RUNFILES, WORKSPACE, Image
from tools.bazel.oci.replay import VARIANTS, replay, snapshot


def manifest(layout: Path, digest: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text()
    )
    return loaded


def first_difference(layout_a: Path, digest_a: str, layout_b: Path, digest_b: str) -> str:
    a, b = manifest(layout_a, digest_a), manifest(layout_b, digest_b)
    for index, (la, lb) in enumerate(zip(a["layers"], b["layers"], strict=False)):
        if la["digest"] != lb["digest"]:
            return f"layer {index} differs: {la['digest']} vs {lb['digest']}"
    if len(a["layers"]) != len(b["layers"]):
        return "layer counts differ"
    return "config differs (layers are equal)"


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_rebuilds_match_bazel(image: Image, tmp_path: Path) -> None:
    recipes = json.loads(image.recipe.read_text())
    targets = [image, image.platform("image_linux_arm64"), image.platform("image_index")]
    finals = {
        t.target: next(r for r in recipes if r["out"] == f"{image.package}/{t.target}")
        for t in targets
    }
    inputs = tmp_path / "snapshot"
    snapshot(recipes, RUNFILES, WORKSPACE, inputs)
    runs = []
    for variant in VARIANTS:
        work = tmp_path / variant.name
        produced = replay(recipes, inputs, RUNFILES / WORKSPACE, WORKSPACE, work, variant)
        runs.append((variant.name, produced))
    (name_a, produced_a), (name_b, produced_b) = runs
    for target in targets:
        final = finals[target.target]
        layout_a, digest_a = produced_a[final["out"]], produced_a[final["digest"]].read_text()
        layout_b, digest_b = produced_b[final["out"]], produced_b[final["digest"]].read_text()
        where = f"{target.target}, {name_a} vs {name_b}: "
        if target.target == "image_index":
            assert digest_a == digest_b, where + "the index differs"
            if not final["stamped"]:
                assert digest_a == target.digest, f"{target.target}: replay vs bazel"
            continue
        assert digest_a == digest_b, where + first_difference(
            layout_a, digest_a, layout_b, digest_b
        )
        if not final["stamped"]:
            assert digest_a == target.digest, f"{target.target}, replay vs bazel: " + (
                first_difference(layout_a, digest_a, target.layout, target.digest)
            )
