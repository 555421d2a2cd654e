"""Walks a JSON Schema's sub-schemas, and the rewrites both converters share.

A schema node is a dict; its sub-schemas sit under known keywords. Walking
by keyword (not by every dict) matters: `properties` maps *field names* to
schemas, so a field called `description` or `type` must not be mistaken for
a keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]
Visit = Callable[[Schema, bool], Schema]

_MAP_KEYWORDS = ("properties", "patternProperties", "definitions")
_ONE_KEYWORDS = ("additionalProperties", "items", "not", "additionalItems")
_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "items")


def walk(schema: Schema, visit: Visit, *, root: bool = True) -> Schema:
    """Returns a copy of `schema` with `visit(node, is_root)` applied bottom-up."""
    node = dict(schema)
    for key in _MAP_KEYWORDS:
        value = node.get(key)
        if isinstance(value, dict):
            node[key] = {
                name: walk(sub, visit, root=False) if isinstance(sub, dict) else sub
                for name, sub in value.items()
            }
    for key in _ONE_KEYWORDS:
        value = node.get(key)
        if isinstance(value, dict):
            node[key] = walk(value, visit, root=False)
    for key in _LIST_KEYWORDS:
        value = node.get(key)
        if isinstance(value, list):
            node[key] = [walk(s, visit, root=False) if isinstance(s, dict) else s for s in value]
    return visit(node, root)


def forbid_unknown_fields(node: Schema) -> Schema:
    """kubeconform -strict's meaning: an object with declared fields takes no others.

    Maps (`additionalProperties` given) and objects that upstream marks as
    free-form (`x-kubernetes-preserve-unknown-fields`) keep their openness.
    """
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


def allow_null(node: Schema) -> Schema:
    """`type: T` becomes `[T, "null"]`: YAML's `field: null` means unset."""
    kind = node.get("type")
    if isinstance(kind, str):
        node["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        node["type"] = [*kind, "null"]
    return node


def drop_descriptions(node: Schema) -> Schema:
    """Descriptions never change a verdict; dropping them keeps the files small."""
    node.pop("description", None)
    return node


def pin_identity(node: Schema, api_version: str, kind: str) -> Schema:
    """Top-level `apiVersion`/`kind` may only be this resource's own."""
    properties = dict(node.get("properties", {}))
    properties["apiVersion"] = {"type": "string", "enum": [api_version]}
    properties["kind"] = {"type": "string", "enum": [kind]}
    node["properties"] = properties
    return node
