"""The scans with the pinned Trivy: clean on our tree, images and manifests; each bites."""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
from pathlib import Path

import pytest

from libs.testing import ports
from tools.scan import oci_fixture, scan

RUNFILES = Path(os.environ["RUNFILES_DIR"]) / os.environ["TEST_WORKSPACE"]
IMAGES = {
    "ws-edge": RUNFILES / "services" / "ws_edge" / "image",
    "session-core": RUNFILES / "services" / "session_core" / "image",
}
HERE = Path(__file__).resolve().parent
TMP = Path(os.environ["TEST_TMPDIR"])


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = scan.main(["--cache-dir", str(TMP / "cache"), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def token() -> str:
    """A GitHub token's shape, made now: no secret-shaped string lives in the repo."""
    alphabet = string.ascii_letters + string.digits
    return "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))


def git_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    subprocess.run([scan.GIT, "init", "-q", str(path)], check=True)
    subprocess.run([scan.GIT, "-C", str(path), "add", "-A"], check=True)
    return path


# --- secrets -------------------------------------------------------------------


def test_the_tracked_files_hold_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "secrets", "--repo", str(scan.REPO))
    assert code == scan.OK, out


def test_a_committed_token_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    repo = git_repo(TMP / "leaky", {"deploy/settings.env": f"A=1\nGITHUB_TOKEN={token()}\n"})
    (repo / "untracked.env").write_text(f"T={token()}\n")  # not tracked: not scanned
    code, out = run(capsys, "secrets", "--repo", str(repo))
    assert code == scan.FINDINGS, out
    assert "secret: deploy/settings.env (line 2): github-pat" in out
    assert "untracked.env" not in out


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_images_hold_no_secret(capsys: pytest.CaptureFixture[str], image: str) -> None:
    code, out = run(capsys, "secrets", "--no-repo", "--image", str(IMAGES[image]))
    assert code == scan.OK, out


def test_a_token_in_an_image_layer_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    layout = oci_fixture.write_layout(TMP / "leaky-image", {"app/settings.env": f"T={token()}\n"})
    code, out = run(capsys, "secrets", "--no-repo", "--image", str(layout))
    assert code == scan.FINDINGS, out
    assert "app/settings.env (line 1): github-pat" in out


# --- misconfigurations of the rendered manifests -----------------------------


def test_the_rendered_gitops_tree_passes_the_embedded_checks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run(capsys, "config", "--gitops", str(RUNFILES / "gitops"))
    assert code == scan.OK, out
    assert "manifests checked" in out


def test_a_privileged_pod_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "config", "--gitops", str(HERE / "testdata" / "gitops"))
    assert code == scan.FINDINGS, out
    assert "KSV-0017" in out  # privileged container


# --- SBOM ------------------------------------------------------------------------


def test_the_sbom_lists_the_images_python_and_debian_packages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = TMP / "ws-edge.cdx.json"
    code, out = run(capsys, "sbom", "--image", str(IMAGES["ws-edge"]), "--output", str(output))
    assert code == scan.OK, out
    bom = json.loads(output.read_text())
    assert bom["bomFormat"] == "CycloneDX"
    components = {(c.get("name"), c.get("version")) for c in bom.get("components", [])}
    locked = (RUNFILES / "requirements_lock.txt").read_text()
    assert ("sanic", "25.12.1") in components and "sanic==25.12.1" in locked
    assert any(name == "python3.11-minimal" for name, _ in components), sorted(components)[:20]


def test_an_spdx_sbom_too(capsys: pytest.CaptureFixture[str]) -> None:
    output = TMP / "session-core.spdx.json"
    args = ["sbom", "--format", "spdx-json", "--output", str(output)]
    code, out = run(capsys, *args, "--image", str(IMAGES["session-core"]))
    assert code == scan.OK, out
    doc = json.loads(output.read_text())
    assert doc["spdxVersion"].startswith("SPDX-") and len(doc["packages"]) > 10


# --- vulnerabilities: need a database this machine cannot reach ----------------


def test_without_its_database_the_vulnerability_scan_fails_loudly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A registry address nothing answers on: what an unreachable database looks like.
    registry = f"{ports.HOST}:{ports.free_port()}/trivy-db"
    layout = oci_fixture.write_layout(TMP / "plain-image", {"app/x.txt": "x\n"})
    code, out = run(capsys, "vuln", "--image", str(layout), "--db-repository", registry)
    assert code == scan.TRIVY_FAILED, out
    assert "DB" in out and registry in out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sbom", "--output", "x")[0] == scan.USAGE
    assert run(capsys, "secrets", "--image", str(TMP))[0] == scan.USAGE
    assert run(capsys, "--trivy", str(TMP / "none"), "config")[0] == scan.USAGE
