"""crd2jsonschema over a small CRD fixture shaped like controller-gen's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.kube_schemas import crd2jsonschema

FIXTURE = Path(__file__).parent / "testdata" / "widget-crd.yaml"


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    return crd2jsonschema.convert(crd2jsonschema.load_documents([FIXTURE]))


def widget_spec(schemas: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = schemas["example.com/widget_v1.json"]["properties"]["spec"]
    return spec


def test_one_file_per_version_in_kubeconforms_layout(schemas: dict[str, Any]) -> None:
    assert sorted(schemas) == ["example.com/widget_v1.json", "example.com/widget_v1beta1.json"]


def test_objects_with_fields_take_no_others(schemas: dict[str, Any]) -> None:
    assert schemas["example.com/widget_v1.json"]["additionalProperties"] is False
    assert widget_spec(schemas)["additionalProperties"] is False


def test_preserve_unknown_fields_and_maps_stay_open(schemas: dict[str, Any]) -> None:
    props = widget_spec(schemas)["properties"]
    assert "additionalProperties" not in props["values"]
    assert props["labels"]["additionalProperties"] == {"type": "string"}


def test_nullable_becomes_a_null_type(schemas: dict[str, Any]) -> None:
    assert widget_spec(schemas)["properties"]["note"] == {"type": ["string", "null"]}


def test_a_bare_equals_sign_reads_as_a_string(schemas: dict[str, Any]) -> None:
    assert widget_spec(schemas)["properties"]["operator"]["enum"] == ["=", "!="]


def test_a_field_named_type_is_a_field(schemas: dict[str, Any]) -> None:
    assert widget_spec(schemas)["properties"]["type"] == {"type": "string"}


def test_identity_is_pinned_per_version(schemas: dict[str, Any]) -> None:
    props = schemas["example.com/widget_v1beta1.json"]["properties"]
    assert props["apiVersion"]["enum"] == ["example.com/v1beta1"]
    assert props["kind"]["enum"] == ["Widget"]


def test_metadata_is_always_allowed(schemas: dict[str, Any]) -> None:
    # v1beta1 of the fixture declares only spec, as Linkerd's CRDs do.
    props = schemas["example.com/widget_v1beta1.json"]["properties"]
    assert props["metadata"] == {"type": "object"}
    assert schemas["example.com/widget_v1beta1.json"]["additionalProperties"] is False


def test_int_or_string_without_anyof_gets_one() -> None:
    crd = _crd({"type": "object", "properties": {"n": {"x-kubernetes-int-or-string": True}}})
    out = crd2jsonschema.convert([("x", crd)])
    assert out["example.com/thing_v1.json"]["properties"]["n"]["anyOf"] == [
        {"type": "integer"},
        {"type": "string"},
    ]


def test_a_version_without_schema_is_an_error() -> None:
    crd = _crd(None)
    with pytest.raises(ValueError, match="no openAPIV3Schema"):
        crd2jsonschema.convert([("x.yaml", crd)])


def test_other_documents_are_refused() -> None:
    with pytest.raises(ValueError, match="not a CustomResourceDefinition"):
        crd2jsonschema.convert([("x.yaml", {"kind": "ConfigMap"})])


def test_v1beta1_crds_are_refused() -> None:
    crd = _crd({"type": "object"})
    crd["apiVersion"] = "apiextensions.k8s.io/v1beta1"
    with pytest.raises(ValueError, match=r"only apiextensions\.k8s\.io/v1"):
        crd2jsonschema.convert([("x.yaml", crd)])


def test_the_same_kind_twice_is_an_error() -> None:
    crd = _crd({"type": "object"})
    with pytest.raises(ValueError, match="defined twice"):
        crd2jsonschema.convert([("a.yaml", crd), ("b.yaml", crd)])


def test_writes_group_directories(tmp_path: Path, schemas: dict[str, Any]) -> None:
    crd2jsonschema.write(schemas, tmp_path)
    written = json.loads((tmp_path / "example.com" / "widget_v1.json").read_text())
    assert written == schemas["example.com/widget_v1.json"]


def _crd(schema: dict[str, Any] | None) -> dict[str, Any]:
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True}
    if schema is not None:
        version["schema"] = {"openAPIV3Schema": schema}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {"group": "example.com", "names": {"kind": "Thing"}, "versions": [version]},
    }
