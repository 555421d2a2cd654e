"""kubeconform -strict against the pinned schemas: what it must reject."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.gitops import render, schemas
from tools.gitops.conftest import TESTDATA
from tools.gitops.findings import Finding
from tools.gitops.validate import Tools


def check(tools: Tools, root: str) -> list[Finding]:
    with render.materialized(TESTDATA) as copy:
        documents = render.build_documents(copy / root, tools.kustomize)
    name = Path(root).name
    return schemas.check(name, documents, tools.kubeconform, schemas.Schemas.at(tools.schemas))


def test_the_schemas_are_for_kubernetes_1_28(tools: Tools) -> None:
    assert schemas.Schemas.at(tools.schemas).kubernetes_version.startswith("1.28.")


def test_a_valid_overlay_passes(tools: Tools) -> None:
    assert check(tools, "tree/apps/demo/overlays/staging") == []


def test_a_misspelt_field_fails_strict_validation(tools: Tools) -> None:
    assert check(tools, "invalid_field") == [
        Finding(
            "invalid_field",
            "schema",
            "Deployment/broken/misspelt",
            "/spec: additional properties 'replicass' not allowed",
        )
    ]


def test_a_kind_without_schema_fails(tools: Tools) -> None:
    assert check(tools, "unknown_kind") == [
        Finding(
            "unknown_kind",
            "schema",
            "Widget/widgets/unknown",
            "could not find schema for Widget example.com/v1: " + schemas.MISSING_HINT,
        )
    ]


def test_crd_schemas_are_strict(tools: Tools) -> None:
    [finding] = check(tools, "crd_invalid")
    assert finding.subject == "ClusterIssuer/-/letsencrypt"
    assert finding.message == "/spec/acme: additional properties 'emial' not allowed"


def test_only_local_schema_locations_and_no_skipping(tools: Tools) -> None:
    argv = schemas.command(tools.kubeconform, schemas.Schemas.at(tools.schemas), [])
    locations = [argv[i + 1] for i, a in enumerate(argv) if a == "-schema-location"]
    assert len(locations) == 2
    assert all(loc.startswith(str(tools.schemas)) for loc in locations)
    assert "-strict" in argv
    assert not any("ignore-missing" in a for a in argv)


def test_linkerd_policy_kinds_are_validated(tools: Tools) -> None:
    # Linkerd's CRDs come from its chart templates (tools/kube_schemas/helm_metadata.py).
    with render.materialized(TESTDATA) as copy:
        documents = render.build_documents(copy / "linkerd_server", tools.kustomize)
    findings = schemas.check(
        "linkerd_server", documents, tools.kubeconform, schemas.Schemas.at(tools.schemas)
    )
    # In kustomize's output order (ConfigMaps first).
    assert [(f.subject, f.message) for f in findings] == [
        ("ConfigMap/mesh/settings", "/: additional properties 'unexpected' not allowed"),
        ("Server/mesh/grpc", "/spec: additional properties 'proxyProtocl' not allowed"),
    ]


def test_the_schema_directory_is_kubernetes_and_crds_only(tmp_path: Path) -> None:
    (tmp_path / "k8s/v1.28.15-standalone-strict").mkdir(parents=True)
    (tmp_path / "crds").mkdir()
    assert schemas.Schemas.at(tmp_path).kubernetes_version == "1.28.15"


def test_a_directory_without_schemas_is_refused(tmp_path: Path) -> None:
    with pytest.raises(schemas.SchemaError, match="expected one k8s/"):
        schemas.Schemas.at(tmp_path)
