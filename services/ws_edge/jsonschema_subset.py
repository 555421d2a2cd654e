"""A JSON Schema validator for the subset schema/*.json uses (tests only).

Keywords: type, const, enum, required, properties, additionalProperties
(boolean), items, minimum, minLength, maxLength; annotations ($schema, $id,
title, description, default, examples, format) are ignored. Any other
keyword is an error, so a schema cannot silently rely on an unchecked rule.
"""

from __future__ import annotations

from typing import Any

_ANNOTATIONS = {"$schema", "$id", "title", "description", "default", "examples", "format"}
_CHECKED = {
    "type",
    "const",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minimum",
    "minLength",
    "maxLength",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON true is not a number
    return isinstance(value, _TYPES[name])


def errors(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """Every violation of `schema` by `value`, as "path: problem"; [] if valid."""
    unknown = set(schema) - _ANNOTATIONS - _CHECKED
    if unknown:
        raise ValueError(f"{path}: unsupported schema keywords {sorted(unknown)}")
    found: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, name) for name in names):
            return [f"{path}: expected {'/'.join(names)}"]
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: expected {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            found.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(f"{path}: longer than {schema['maxLength']}")
    if _is(value, "number") and "minimum" in schema and value < schema["minimum"]:
        found.append(f"{path}: below {schema['minimum']}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found.extend(errors(schema["items"], item, f"{path}[{index}]"))
    if isinstance(value, dict):
        found.extend(
            f"{path}.{name}: required" for name in schema.get("required", []) if name not in value
        )
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                found.extend(errors(properties[name], item, f"{path}.{name}"))
            elif schema.get("additionalProperties", True) is False:
                found.append(f"{path}.{name}: not allowed")
    return found
