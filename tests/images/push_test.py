"""oci_push against Debian's docker-registry on loopback, checked with skopeo.

The push goes by digest first, then tags: the registry must serve exactly
the index digest the build wrote to `:image_index.digest`, under both names,
and each platform's manifest (amd64, arm64) by its own digest.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.testing.ports import free_port
from tests.images.images import DOCKER_REGISTRY, IMAGES, SKOPEO, Image


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A throwaway registry on 127.0.0.1:<free port>; yields host:port."""
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (tmp_path / "registry.log").open("w")
    process = subprocess.Popen([DOCKER_REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "registry.log").read_text())
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def skopeo_inspect(reference: str, *flags: str) -> bytes:
    return subprocess.run(
        [SKOPEO, "inspect", "--tls-verify=false", *flags, f"docker://{reference}"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


def sha256_digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.name)
def test_push_by_digest_then_tag(registry: str, image: Image) -> None:
    repository = f"{registry}/syncbridge/{image.name.replace('_', '-')}"
    subprocess.run(
        [str(image.push_script), "--repository", repository, "--tag", "v-test", "--tag", "latest"],
        check=True,
        timeout=300,
    )
    digest = image.platform("image_index").digest
    raw = skopeo_inspect(f"{repository}@{digest}", "--raw")
    assert sha256_digest(raw) == digest
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
    }
    # Each platform's manifest is the one its own target built, served by its digest.
    assert platforms == {
        "linux/amd64": image.digest,
        "linux/arm64": image.platform("image_linux_arm64").digest,
    }
    for manifest_digest in platforms.values():
        served = skopeo_inspect(f"{repository}@{manifest_digest}", "--raw")
        assert sha256_digest(served) == manifest_digest
    for tag in ("v-test", "latest"):
        # Tags name the index, not one platform's manifest.
        assert sha256_digest(skopeo_inspect(f"{repository}:{tag}", "--raw")) == digest
