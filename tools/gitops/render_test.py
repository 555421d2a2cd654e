"""Render roots and the offline kustomize build."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.gitops import render
from tools.gitops.conftest import TESTDATA
from tools.gitops.validate import Tools

TREE = TESTDATA / "tree"


@pytest.fixture(scope="module")
def real() -> Iterator[Path]:
    """testdata as real files: runfiles are symlinks kustomize would refuse."""
    with render.materialized(TESTDATA) as copy:
        yield copy


def test_roots_are_kustomizations_and_not_components() -> None:
    found = [str(p.relative_to(TREE)) for p in render.roots(TREE)]
    assert found == ["apps/demo/base", "apps/demo/overlays/staging"]


def test_an_empty_tree_has_no_roots(tmp_path: Path) -> None:
    assert render.roots(tmp_path) == []


@pytest.mark.parametrize(
    ("root", "environment"),
    [
        ("apps/ws-edge/overlays/staging", "staging"),
        ("clusters/prod", "prod"),
        ("apps/ws-edge/base", None),
        ("infrastructure/linkerd", None),
    ],
)
def test_environment_is_the_path_segment(root: str, environment: str | None) -> None:
    assert render.environment(Path(root)) == environment


def test_build_renders_the_overlay_with_its_component(tools: Tools, real: Path) -> None:
    objects = render.build(real / "tree/apps/demo/overlays/staging", tools.kustomize)
    assert sorted((o["kind"], o["metadata"]["namespace"]) for o in objects) == [
        ("ConfigMap", "demo-staging"),
        ("Deployment", "demo-staging"),
    ]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("@sha256:" + "0" * 64)


def test_documents_keep_kustomizes_text(tools: Tools, real: Path) -> None:
    docs = render.build_documents(real / "tree/apps/demo/base", tools.kustomize)
    assert len(docs) == 1
    assert docs[0].text.startswith("apiVersion: apps/v1\n")


def test_a_remote_base_fails_offline(tools: Tools, real: Path) -> None:
    with pytest.raises(render.RenderError, match=r"example\.invalid"):
        render.build(real / "remote_base", tools.kustomize)


def test_helm_charts_are_not_inflated(tools: Tools, real: Path) -> None:
    with pytest.raises(render.RenderError, match="enable-helm"):
        render.build(real / "helm_chart", tools.kustomize)


def test_files_outside_the_root_are_refused(tools: Tools, tmp_path: Path) -> None:
    # Argo CD's kustomize keeps the default load restrictor; so do we.
    (tmp_path / "root").mkdir()
    (tmp_path / "outside.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    (tmp_path / "root/kustomization.yaml").write_text("resources: [../outside.yaml]\n")
    with pytest.raises(render.RenderError, match="outside"):
        render.build(tmp_path / "root", tools.kustomize)


def test_a_missing_kustomize_is_named(tmp_path: Path) -> None:
    with pytest.raises(render.RenderError, match="kustomize not found"):
        render.build(TREE / "apps/demo/base", tmp_path / "kustomize")


def test_split_stream_splits_only_at_separator_lines() -> None:
    text = "a: 1\n---\nb: |\n  ---\n  x\n---\n\n"
    assert render.split_stream(text) == ["a: 1\n", "b: |\n  ---\n  x\n"]
