"""`bazel run` of an oci_load target: copies the image into podman's storage.

Usage: load.py LAYOUT [--default-tag T]... [--tag T]...

The BUILD file's `repo_tags` arrive as --default-tag; any --tag given after
`bazel run ... --` replaces them. Names without a registry become
`localhost/<name>`, as `podman build -t` would name them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# By the path its Debian package installs (tools/setup), not the caller's PATH.
SKOPEO = "/usr/bin/skopeo"
PODMAN = "/usr/bin/podman"


def qualify(tag: str) -> str:
    """`syncbridge/core:latest` → `localhost/syncbridge/core:latest`; registries stay."""
    first = tag.split("/", 1)[0]
    if "/" in tag and ("." in first or ":" in first or first == "localhost"):
        return tag
    return f"localhost/{tag}"


def image_id(layout: Path) -> str:
    """podman's image ID: the digest of the config blob."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    return str(manifest["config"]["digest"]).removeprefix("sha256:")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("layout", type=Path)
    parser.add_argument("--default-tag", action="append", default=[])
    parser.add_argument("--tag", action="append", default=[])
    args = parser.parse_args()
    tags = [qualify(tag) for tag in (args.tag or args.default_tag)]
    if not tags:
        raise SystemExit("no tag: pass --tag NAME:TAG")
    layout = args.layout.resolve()
    subprocess.run(
        [SKOPEO, "copy", "--quiet", f"oci:{layout}", f"containers-storage:{tags[0]}"],
        check=True,
    )
    for tag in tags[1:]:
        subprocess.run([PODMAN, "tag", tags[0], tag], check=True)
    print(f"loaded {image_id(layout)[:12]} as {', '.join(tags)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
