"""The schema walker and the rewrites both converters share."""

from __future__ import annotations

from tools.kube_schemas import schema_walk
from tools.kube_schemas.schema_walk import Schema


def test_walk_visits_sub_schemas_not_field_names() -> None:
    seen: list[Schema] = []

    def visit(node: Schema, root: bool) -> Schema:
        seen.append(node)
        return node

    schema = {
        "type": "object",
        "properties": {"items": {"type": "string"}, "allOf": {"type": "integer"}},
        "additionalProperties": {"type": "boolean"},
    }
    schema_walk.walk(schema, visit)
    assert [n["type"] for n in seen] == ["string", "integer", "boolean", "object"]


def test_walk_tells_the_root() -> None:
    roots: list[bool] = []

    def visit(node: Schema, root: bool) -> Schema:
        roots.append(root)
        return node

    schema_walk.walk({"items": [{"type": "string"}], "anyOf": [{}]}, visit)
    assert roots == [False, False, True]


def test_forbid_unknown_fields_only_where_fields_are_declared() -> None:
    assert schema_walk.forbid_unknown_fields({"properties": {}})["additionalProperties"] is False
    assert "additionalProperties" not in schema_walk.forbid_unknown_fields({"type": "object"})
    preserved = {"properties": {}, "x-kubernetes-preserve-unknown-fields": True}
    assert "additionalProperties" not in schema_walk.forbid_unknown_fields(preserved)
    mapping = {"properties": {}, "additionalProperties": {"type": "string"}}
    assert schema_walk.forbid_unknown_fields(mapping)["additionalProperties"] == {"type": "string"}


def test_allow_null() -> None:
    assert schema_walk.allow_null({"type": "string"}) == {"type": ["string", "null"]}
    assert schema_walk.allow_null({"type": ["string", "null"]}) == {"type": ["string", "null"]}
    assert schema_walk.allow_null({}) == {}
