"""Validating messages against the protocol's schemas, for tests (jsonschema, draft 2020-12).

Every schema file is registered under its `$id`, so the references between
them (`../shapes/session.json`) resolve offline, from these files only.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from libs.protocol.schemas import SCHEMA_DIR, load


@functools.cache
def registry() -> Registry[Any]:
    """Every schema of the protocol, by its `$id`."""
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*/*.json")):
        contents = json.loads(path.read_text())
        resources.append(
            (contents["$id"], Resource.from_contents(contents, default_specification=DRAFT202012))
        )
    return Registry().with_resources(resources)


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of `schema` that resolves the protocol's references; formats are checked."""
    return jsonschema.Draft202012Validator(
        schema,
        registry=registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """What is wrong with `instance`, one line per error ("$.path: message"); [] if valid."""
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator(schema).iter_errors(instance), key=lambda e: e.json_path)
    ]


def server_message_errors(message: Any) -> list[str]:
    """What is wrong with a message the edge sent, judged by the schema of its `type`."""
    kind = message.get("type") if isinstance(message, dict) else None
    if not isinstance(kind, str) or not (SCHEMA_DIR / "server" / f"{kind}.json").is_file():
        return [f"$.type: {kind!r} names no server message"]
    return errors(load("server", kind), message)
