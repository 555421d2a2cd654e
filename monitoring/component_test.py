"""The component renders with the pinned kustomize into what kube-prometheus-stack
reads: the PrometheusRule, the Alertmanager config Secret (the committed file,
byte for byte) and the dashboard ConfigMaps, all in `monitoring`."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from monitoring import alertmanager, dashboards, rules

COMPONENT = rules.REPO / "gitops/components/alerts"


def kustomize() -> str:
    """The pinned kustomize, `@go_tools//:kustomize` in this test's runfiles."""
    for candidate in (
        rules.REPO.parent / "go_tools/kustomize",
        rules.REPO / "external/go_tools/kustomize",
    ):
        if candidate.exists():
            return str(candidate)
    raise AssertionError("kustomize is not in the runfiles: depend on @go_tools//:kustomize")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    # A root like the one that includes the component in the tree; files are
    # copied (not runfiles symlinks) so kustomize's load restrictions hold.
    root = tmp_path_factory.mktemp("render")
    shutil.copytree(COMPONENT, root / "alerts", ignore=shutil.ignore_patterns("BUILD.bazel"))
    (root / "monitoring").mkdir()
    (root / "monitoring/kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: monitoring\ncomponents:\n  - ../alerts\n"
    )
    built = subprocess.run(
        [kustomize(), "build", str(root / "monitoring")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_the_rule_is_the_committed_one(rendered: list[dict[str, Any]]) -> None:
    rule = by_kind(rendered, "PrometheusRule")["syncbridge"]
    assert rule == rules.load()
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_alertmanager_secret_is_the_committed_file(rendered: list[dict[str, Any]]) -> None:
    secret = by_kind(rendered, "Secret")["alertmanager-syncbridge"]
    assert secret["metadata"]["namespace"] == "monitoring"
    assert list(secret["data"]) == ["alertmanager.yaml"]
    assert (
        base64.b64decode(secret["data"]["alertmanager.yaml"])
        == alertmanager.CONFIG_PATH.read_bytes()
    )


def test_everything_lands_in_monitoring(rendered: list[dict[str, Any]]) -> None:
    assert {o["metadata"]["namespace"] for o in rendered} == {"monitoring"}


def test_dashboards_are_sidecar_configmaps(rendered: list[dict[str, Any]]) -> None:
    maps = by_kind(rendered, "ConfigMap")
    assert set(maps) == {f"dashboard-{stem}" for stem in dashboards.load_all()}
    for name, config_map in maps.items():
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1", name
        (content,) = config_map["data"].values()
        assert json.loads(content) == dashboards.load_all()[name.removeprefix("dashboard-")]
