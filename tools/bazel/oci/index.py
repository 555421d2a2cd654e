"""Assembles an OCI image index layout from per-platform image layouts.

Usage: index.py SPEC.json OUT_DIR DIGEST_FILE

SPEC (written by oci_image_index in tools/bazel/oci.bzl): `images`, a list
of OCI layout directories each holding one image (oci_image's output). The
output layout holds every blob of every image, an index blob listing each
image's manifest with the platform its config names, and an `index.json`
whose one entry is that index: so `skopeo copy --all oci:OUT_DIR` carries the
whole set, and DIGEST_FILE receives the index's digest, the one to deploy.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from tools.bazel.oci.image import INDEX, MANIFEST, Layout, canonical


def image_descriptor(layout: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(manifest descriptor, platform) of the single image in a layout."""
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = index["manifests"]
    if descriptor["mediaType"] != MANIFEST:
        raise SystemExit(f"{layout}: holds a {descriptor['mediaType']}, not one image")
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / descriptor["digest"].removeprefix("sha256:")).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    platform = {"architecture": config["architecture"], "os": config["os"]}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    return descriptor, platform


def build(spec: dict[str, Any], out: Path) -> str:
    """Writes the index layout to `out`; returns the index digest."""
    layout = Layout(out)
    manifests = []
    seen: dict[str, str] = {}
    for image in spec["images"]:
        src = Path(image["src"])
        descriptor, platform = image_descriptor(src)
        key = "/".join(platform[k] for k in ("os", "architecture", "variant") if k in platform)
        if key in seen:
            raise SystemExit(f"{image['short']} and {seen[key]} are both {key}")
        seen[key] = image["short"]
        for blob in sorted((src / "blobs" / "sha256").iterdir()):
            target = out / "blobs" / "sha256" / blob.name
            if not target.exists():
                shutil.copyfile(blob, target)
        manifests.append(
            {
                "digest": descriptor["digest"],
                "mediaType": descriptor["mediaType"],
                "platform": platform,
                "size": descriptor["size"],
            }
        )
    index = {"manifests": manifests, "mediaType": INDEX, "schemaVersion": 2}
    descriptor = layout.put_bytes(INDEX, canonical(index))
    top = {"manifests": [descriptor], "mediaType": INDEX, "schemaVersion": 2}
    (out / "index.json").write_bytes(canonical(top))
    return str(descriptor["digest"])


def main() -> int:
    spec_path, out, digest_file = (Path(arg) for arg in sys.argv[1:4])
    digest_file.write_text(build(json.loads(spec_path.read_text()), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
