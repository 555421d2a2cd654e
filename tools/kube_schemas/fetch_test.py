"""fetch: the module sum is enforced and the output is written whole.

A stand-in `go` prints what `go mod download -json` prints, so the checks
run without the proxy.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from tools.kube_schemas import fetch, lock

TESTDATA = Path(__file__).parent / "testdata"


def fake_go(tmp: Path, answers: dict[str, dict[str, str]]) -> Path:
    """An executable answering `go mod download -json <ref>` from `answers`."""
    script = tmp / "go"
    script.write_text(
        "#!/usr/bin/python3.11\n"
        "import json, sys\n"
        f"answers = json.loads({json.dumps(json.dumps(answers))})\n"
        "ref = sys.argv[-1]\n"
        "print(json.dumps(answers.get(ref, {'Path': ref, 'Error': 'not served'})))\n"
        "sys.exit(0 if 'Sum' in answers.get(ref, {}) else 1)\n"
    )
    script.chmod(0o755)
    return script


def module_dirs(tmp: Path) -> tuple[Path, Path]:
    k8s = tmp / "k8s"
    (k8s / "api/openapi-spec").mkdir(parents=True)
    shutil.copy(TESTDATA / "swagger.json", k8s / "api/openapi-spec/swagger.json")
    crds = tmp / "crds"
    (crds / "config").mkdir(parents=True)
    shutil.copy(TESTDATA / "widget-crd.yaml", crds / "config/widget.yaml")
    return k8s, crds


LOCK = lock.Lock(
    kubernetes=lock.KubernetesSource(
        module="k8s.io/kubernetes",
        version="v1.28.15",
        sum="h1:k8s=",
        openapi="api/openapi-spec/swagger.json",
    ),
    crds=(
        lock.CrdSource(
            module="example.com/widgets",
            version="v1.0.0",
            sum="h1:w=",
            name="w",
            files=("config/widget.yaml",),
        ),
    ),
)


def test_build_writes_both_layouts(tmp_path: Path) -> None:
    k8s, crds = module_dirs(tmp_path)
    go = fake_go(
        tmp_path,
        {
            "k8s.io/kubernetes@v1.28.15": {"Sum": "h1:k8s=", "Dir": str(k8s)},
            "example.com/widgets@v1.0.0": {"Sum": "h1:w=", "Dir": str(crds)},
        },
    )
    out = tmp_path / "out"
    report = fetch.build(LOCK, go, out)
    assert (out / "k8s/v1.28.15-standalone-strict/deployment-apps-v1.json").is_file()
    assert (out / "crds/example.com/widget_v1.json").is_file()
    assert len(report) == 2


def test_a_module_unknown_to_the_checksum_db_is_fetched_with_gonosumdb(tmp_path: Path) -> None:
    k8s, crds = module_dirs(tmp_path)
    # The stand-in go serves the CRD module only when told to skip the checksum DB.
    script = fake_go(
        tmp_path,
        {
            "k8s.io/kubernetes@v1.28.15": {"Sum": "h1:k8s=", "Dir": str(k8s)},
            "example.com/widgets@v1.0.0": {"Sum": "h1:w=", "Dir": str(crds)},
        },
    )
    text = script.read_text().replace(
        "ref = sys.argv[-1]\n",
        "import os\nref = sys.argv[-1]\n"
        "skip = os.environ.get('GONOSUMDB')\n"
        "if ref.startswith('example.com') and skip != 'example.com/widgets':\n"
        "    ref = 'refused'\n",
    )
    script.write_text(text)
    with pytest.raises(fetch.FetchError, match="not served"):
        fetch.build(LOCK, script, tmp_path / "out1")
    [source] = LOCK.crds
    unchecked = dataclasses.replace(source, checksum_db=False)
    fetch.build(dataclasses.replace(LOCK, crds=(unchecked,)), script, tmp_path / "out2")
    assert (tmp_path / "out2/crds/example.com/widget_v1.json").is_file()


def test_a_module_whose_sum_differs_from_the_lock_is_refused(tmp_path: Path) -> None:
    k8s, _ = module_dirs(tmp_path)
    go = fake_go(tmp_path, {"k8s.io/kubernetes@v1.28.15": {"Sum": "h1:other=", "Dir": str(k8s)}})
    with pytest.raises(fetch.FetchError, match="the lock pins h1:k8s="):
        fetch.build(LOCK, go, tmp_path / "out")


def test_a_module_the_proxy_refuses_is_an_error(tmp_path: Path) -> None:
    go = fake_go(tmp_path, {})
    with pytest.raises(fetch.FetchError, match="not served"):
        fetch.build(LOCK, go, tmp_path / "out")


def test_a_file_missing_from_the_module_is_an_error(tmp_path: Path) -> None:
    k8s, crds = module_dirs(tmp_path)
    (crds / "config/widget.yaml").unlink()
    go = fake_go(
        tmp_path,
        {
            "k8s.io/kubernetes@v1.28.15": {"Sum": "h1:k8s=", "Dir": str(k8s)},
            "example.com/widgets@v1.0.0": {"Sum": "h1:w=", "Dir": str(crds)},
        },
    )
    with pytest.raises(fetch.FetchError, match=r"has no config/widget\.yaml"):
        fetch.build(LOCK, go, tmp_path / "out")


def test_an_up_to_date_output_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "STAMP").write_text(lock.stamp(fetch.REPO))
    # A go that would fail proves nothing was downloaded.
    go = fake_go(tmp_path, {})
    assert fetch.main(["--go", str(go), "--out", str(out)]) == 0


def test_a_failed_fetch_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "STAMP").write_text("stale\n")
    go = fake_go(tmp_path, {})
    assert fetch.main(["--go", str(go), "--out", str(out)]) == 1
    assert (out / "STAMP").read_text() == "stale\n"
    assert not (tmp_path / "out.new").exists()
