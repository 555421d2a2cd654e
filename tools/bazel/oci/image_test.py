"""image.py: config merging, stamping, and a digest that depends only on content."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from tools.bazel.oci.image import build, expand, merged_config


def test_expand_fills_stamp_keys_or_defaults() -> None:
    stamped = {"STABLE_GIT_COMMIT": "abc123"}
    assert expand("{STABLE_GIT_COMMIT}", stamped) == "abc123"
    assert expand("{STABLE_GIT_COMMIT:none}", {}) == "none"
    assert expand("{STABLE_GIT_COMMIT}", {}) == "unknown"
    assert expand("{lowercase} stays", {}) == "{lowercase} stays"


def test_child_settings_override_and_extend_the_base() -> None:
    base = {"config": {"Env": ["PATH=/usr/bin", "LANG=C.UTF-8"], "Cmd": ["x"], "User": "1"}}
    settings: dict[str, Any] = {
        "entrypoint": ["/usr/bin/python3.11"],
        "env": [["PATH", "/app/bin:/usr/bin"], ["PYTHONPATH", "/app"]],
        "exposed_ports": ["50051", "9102/tcp"],
        "labels": [["org.opencontainers.image.revision", "{STABLE_GIT_COMMIT}"]],
        "user": "65532:65532",
    }
    config = merged_config(base, settings, {"STABLE_GIT_COMMIT": "c0ffee"})
    assert config["Env"] == ["PATH=/app/bin:/usr/bin", "LANG=C.UTF-8", "PYTHONPATH=/app"]
    assert "Cmd" not in config  # a new entrypoint drops the base's cmd
    assert config["User"] == "65532:65532"
    assert config["ExposedPorts"] == {"50051/tcp": {}, "9102/tcp": {}}
    assert config["Labels"] == {"org.opencontainers.image.revision": "c0ffee"}


def layout(tmp_path: Path, name: str) -> tuple[str, Path]:
    layer = tmp_path / f"{name}.tar.gz"
    layer.write_bytes(gzip.compress(b"\0" * 1024, mtime=0))
    spec = {
        "base": None,
        "config": {"architecture": "amd64", "os": "linux", "user": "65532"},
        "layers": [{"short": "layer.tar.gz", "src": str(layer)}],
        "stamp": None,
    }
    out = tmp_path / name
    out.mkdir()
    return build(spec, out), out


def test_digest_depends_only_on_content(tmp_path: Path) -> None:
    digest_a, out_a = layout(tmp_path, "a")
    digest_b, _ = layout(tmp_path, "b-elsewhere")
    assert digest_a == digest_b
    manifest_blob = out_a / "blobs" / "sha256" / digest_a.removeprefix("sha256:")
    assert "sha256:" + hashlib.sha256(manifest_blob.read_bytes()).hexdigest() == digest_a
    manifest = json.loads(manifest_blob.read_text())
    config = json.loads((out_a / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(b"\0" * 1024).hexdigest()]
    index = json.loads((out_a / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest_a
