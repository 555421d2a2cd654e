"""Assembles an OCI image layout from a base layout, layer tars and a config.

Usage: image.py SPEC.json OUT_DIR DIGEST_FILE

SPEC (written by oci_image in tools/bazel/oci.bzl): `base` (an OCI layout
directory or null), `layers` (.tar.gz files, bottom first), `config`
(entrypoint, cmd, env, user, workdir, exposed_ports, labels, os,
architecture) and `stamp` (a workspace status file or null). Child settings
override the base's; env and labels are merged. JSON is written with sorted
keys and `created` is the epoch, so equal inputs give an equal digest, which
DIGEST_FILE receives as `sha256:<hex>`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = "1970-01-01T00:00:00Z"
UNSTAMPED = "unknown"


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def sha256_stream(handle: Any) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return "sha256:" + digest.hexdigest()


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def put_bytes(self, media_type: str, data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blob_path(digest).write_bytes(data)
        return {"digest": digest, "mediaType": media_type, "size": len(data)}

    def put_file(self, media_type: str, src: Path) -> dict[str, Any]:
        with src.open("rb") as handle:
            digest = sha256_stream(handle)
        target = self.blob_path(digest)
        if not target.exists():
            shutil.copyfile(src, target)
        return {"digest": digest, "mediaType": media_type, "size": src.stat().st_size}


def read_base(base: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, config) of the single image in a layout."""
    index = json.loads((base / "index.json").read_text())
    (descriptor,) = index["manifests"]

    def blob(digest: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(
            (base / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text()
        )
        return loaded

    manifest = blob(descriptor["digest"])
    return manifest, blob(manifest["config"]["digest"])


def stamp_values(stamp: Path | None) -> dict[str, str]:
    """KEY value lines of a workspace status file (empty when not stamping)."""
    if stamp is None:
        return {}
    values = {}
    for line in stamp.read_text().splitlines():
        key, _, value = line.partition(" ")
        values[key] = value
    return values


def expand(value: str, values: dict[str, str]) -> str:
    """`{KEY}` or `{KEY:default}` → the status value of KEY, else the default (`unknown`)."""

    def substitute(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(2) or UNSTAMPED)

    return re.sub(r"\{([A-Z][A-Z0-9_]*)(?::([^{}]*))?\}", substitute, value)


def merged_config(
    base: dict[str, Any] | None, settings: dict[str, Any], stamp: dict[str, str]
) -> dict[str, Any]:
    """The image config: the base's, overridden and extended by `settings`."""
    config: dict[str, Any] = dict((base or {}).get("config") or {})
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    env.update({key: expand(value, stamp) for key, value in settings.get("env", [])})
    if env:
        config["Env"] = [f"{key}={value}" for key, value in env.items()]
    labels = dict(config.get("Labels") or {})
    labels.update({key: expand(value, stamp) for key, value in settings.get("labels", [])})
    if labels:
        config["Labels"] = labels
    if settings.get("entrypoint") is not None:
        config["Entrypoint"] = settings["entrypoint"]
        # As in Docker: a new entrypoint drops the base's cmd unless one is given.
        config.pop("Cmd", None)
    if settings.get("cmd") is not None:
        config["Cmd"] = settings["cmd"]
    if settings.get("user"):
        config["User"] = settings["user"]
    if settings.get("workdir"):
        config["WorkingDir"] = settings["workdir"]
    ports = dict(config.get("ExposedPorts") or {})
    for port in settings.get("exposed_ports", []):
        ports[port if "/" in port else f"{port}/tcp"] = {}
    if ports:
        config["ExposedPorts"] = ports
    return config


def diff_id(layer: Path) -> str:
    """The digest of the uncompressed tar, which the config's rootfs lists."""
    with gzip.open(layer, "rb") as handle:
        return sha256_stream(handle)


def build(spec: dict[str, Any], out: Path) -> str:
    """Writes the layout to `out`; returns the manifest digest."""
    layout = Layout(out)
    base_dir = Path(spec["base"]["src"]) if spec.get("base") else None
    base_manifest, base_config = read_base(base_dir) if base_dir else ({"layers": []}, None)
    layers = []
    diff_ids = list(base_config["rootfs"]["diff_ids"]) if base_config else []
    if base_dir is not None:
        for descriptor in base_manifest["layers"]:
            src = base_dir / "blobs" / "sha256" / descriptor["digest"].removeprefix("sha256:")
            layers.append(layout.put_file(descriptor["mediaType"], src))
    for layer in spec["layers"]:
        path = Path(layer["src"])
        layers.append(layout.put_file(LAYER_GZIP, path))
        diff_ids.append(diff_id(path))
    settings = spec["config"]
    stamp = stamp_values(Path(spec["stamp"]) if spec.get("stamp") else None)
    config = {
        "architecture": base_config["architecture"] if base_config else settings["architecture"],
        "config": merged_config(base_config, settings, stamp),
        "created": EPOCH,
        "os": base_config["os"] if base_config else settings["os"],
        "rootfs": {"diff_ids": diff_ids, "type": "layers"},
    }
    manifest = {
        "config": layout.put_bytes(CONFIG, canonical(config)),
        "layers": layers,
        "mediaType": MANIFEST,
        "schemaVersion": 2,
    }
    descriptor = layout.put_bytes(MANIFEST, canonical(manifest))
    index = {"manifests": [descriptor], "mediaType": INDEX, "schemaVersion": 2}
    (out / "index.json").write_bytes(canonical(index))
    return str(descriptor["digest"])


def main() -> int:
    spec_path, out, digest_file = (Path(arg) for arg in sys.argv[1:4])
    digest = build(json.loads(spec_path.read_text()), out)
    digest_file.write_text(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
