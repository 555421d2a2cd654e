"""openapi2jsonschema over a small swagger fixture shaped like Kubernetes'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.kube_schemas import openapi2jsonschema

FIXTURE = Path(__file__).parent / "testdata" / "swagger.json"


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    return openapi2jsonschema.convert(json.loads(FIXTURE.read_text()))


@pytest.mark.parametrize(
    ("group", "version", "kind", "file"),
    [
        ("apps", "v1", "Deployment", "deployment-apps-v1.json"),
        ("", "v1", "ConfigMap", "configmap-v1.json"),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicy-networking-v1.json"),
    ],
)
def test_file_names_are_kubeconforms(group: str, version: str, kind: str, file: str) -> None:
    assert openapi2jsonschema.kind_file(group, version, kind) == file


def test_one_file_per_group_version_kind(schemas: dict[str, Any]) -> None:
    assert sorted(schemas) == [
        "configmap-v1.json",
        "deployment-apps-v1.json",
        "jsonschemaprops-apiextensions-v1.json",
        "networkpolicy-networking-v1.json",
    ]


def test_refs_are_inlined(schemas: dict[str, Any]) -> None:
    assert "$ref" not in json.dumps(schemas)
    spec = schemas["deployment-apps-v1.json"]["properties"]["spec"]
    assert spec["properties"]["replicas"]["type"] == ["integer", "null"]


def test_objects_with_fields_take_no_others(schemas: dict[str, Any]) -> None:
    deployment = schemas["deployment-apps-v1.json"]
    assert deployment["additionalProperties"] is False
    container = deployment["properties"]["spec"]["properties"]["containers"]["items"]
    assert container["additionalProperties"] is False


def test_maps_stay_maps(schemas: dict[str, Any]) -> None:
    data = schemas["configmap-v1.json"]["properties"]["data"]
    assert data["additionalProperties"] == {"type": ["string", "null"]}


def test_int_or_string_and_quantities_accept_numbers(schemas: dict[str, Any]) -> None:
    container = schemas["deployment-apps-v1.json"]["properties"]["spec"]["properties"][
        "containers"
    ]["items"]["properties"]
    assert container["port"] == {
        "anyOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]
    }
    assert container["limits"]["additionalProperties"] == {
        "anyOf": [{"type": ["string", "null"]}, {"type": ["number", "null"]}]
    }


def test_descriptions_go_but_a_field_named_description_stays(schemas: dict[str, Any]) -> None:
    deployment = schemas["deployment-apps-v1.json"]
    assert "description" not in deployment
    container = deployment["properties"]["spec"]["properties"]["containers"]["items"]
    assert container["properties"]["description"] == {"type": ["string", "null"]}


def test_identity_is_pinned(schemas: dict[str, Any]) -> None:
    props = schemas["deployment-apps-v1.json"]["properties"]
    assert props["apiVersion"] == {"type": "string", "enum": ["apps/v1"]}
    assert props["kind"] == {"type": "string", "enum": ["Deployment"]}
    assert schemas["configmap-v1.json"]["properties"]["apiVersion"]["enum"] == ["v1"]


def test_recursion_is_cut(schemas: dict[str, Any]) -> None:
    props = schemas["jsonschemaprops-apiextensions-v1.json"]["properties"]["properties"]
    assert props["additionalProperties"] == {}


def test_a_missing_definition_is_an_error() -> None:
    swagger = {
        "definitions": {
            "a.Kind": {
                "type": "object",
                "properties": {"x": {"$ref": "#/definitions/missing"}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "K", "version": "v1"}],
            }
        }
    }
    with pytest.raises(ValueError, match="missing definition"):
        openapi2jsonschema.convert(swagger)


def test_two_definitions_for_one_file_are_an_error() -> None:
    gvk = [{"group": "apps", "kind": "K", "version": "v1"}]
    swagger = {
        "definitions": {
            "a.K": {"type": "object", "x-kubernetes-group-version-kind": gvk},
            "b.K": {"type": "string", "x-kubernetes-group-version-kind": gvk},
        }
    }
    with pytest.raises(ValueError, match="two different definitions"):
        openapi2jsonschema.convert(swagger)


def test_writes_one_json_file_per_schema(tmp_path: Path, schemas: dict[str, Any]) -> None:
    openapi2jsonschema.write(schemas, tmp_path)
    written = json.loads((tmp_path / "deployment-apps-v1.json").read_text())
    assert written == schemas["deployment-apps-v1.json"]
