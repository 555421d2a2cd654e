"""The CLI end to end: render, schema and policy failures, and nothing to check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.gitops import schemas, validate
from tools.gitops.conftest import TESTDATA
from tools.gitops.validate import Tools


def run(tools: Tools, gitops: Path, policies: Path, *extra: str) -> int:
    return validate.main(
        [
            "--gitops", str(gitops),
            "--policies", str(policies),
            "--kustomize", str(tools.kustomize),
            "--kubeconform", str(tools.kubeconform),
            "--opa", str(tools.opa),
            "--schemas", str(tools.schemas),
            *extra,
        ]
    )  # fmt: skip


def test_an_empty_tree_fails_loudly(
    tools: Tools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tools, tmp_path, TESTDATA / "policies") == 1
    assert f"no render roots under {tmp_path}:" in capsys.readouterr().err


def test_a_clean_tree_passes(tools: Tools, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tools, TESTDATA / "tree", TESTDATA / "policies") == 0
    assert capsys.readouterr().out == "validate: 2 roots, 3 objects: ok\n"


def test_every_kind_of_failure_is_reported(
    tools: Tools, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gitops = tmp_path / "gitops"
    for name in ("invalid_field", "unknown_kind", "helm_chart"):
        shutil.copytree(TESTDATA / name, gitops / name)
    assert run(tools, gitops, TESTDATA / "policies") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "validate: 3 roots, 2 objects: FAILED, 5 failures"
    assert out[0].startswith("helm_chart: render: helm_chart: ")
    assert out[1:-1] == [
        "invalid_field: schema: Deployment/broken/misspelt: "
        "/spec: additional properties 'replicass' not allowed",
        "invalid_field: policy labels: Deployment/broken/misspelt: "
        'set metadata.labels["app.kubernetes.io/name"]',
        "unknown_kind: schema: Widget/widgets/unknown: could not find schema for Widget "
        f"example.com/v1: {schemas.MISSING_HINT}",
        "unknown_kind: policy labels: Widget/widgets/unknown: "
        'set metadata.labels["app.kubernetes.io/name"]',
    ]


def test_root_selects_and_unknown_roots_are_refused(
    tools: Tools, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tools, TESTDATA / "tree", TESTDATA / "policies", "--root", "apps/demo/base") == 0
    assert capsys.readouterr().out == "validate: 1 roots, 1 objects: ok\n"
    assert run(tools, TESTDATA / "tree", TESTDATA / "policies", "--root", "components/extra") == 1
    assert "not render roots" in capsys.readouterr().err


def test_missing_policies_fail(tools: Tools, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tools, TESTDATA / "tree", TESTDATA / "policies_none") == 1
    assert "no policies" in capsys.readouterr().err
