"""The JSON Schemas of the client protocol (`schema/client/*.json`, `schema/server/*.json`).

One file per message type. The WebSocket tests validate what the edge sends
against them, and the HTTP API's OpenAPI document refers to the same
definitions (`$defs`), so a wire shape is written down once.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent / "schema"


@functools.cache
def _load(direction: str, name: str) -> str:
    return (SCHEMA_DIR / direction / f"{name}.json").read_text()


def load(direction: str, name: str) -> dict[str, Any]:
    """The schema of message `name` sent by `direction` (a fresh copy: callers may edit it)."""
    schema: dict[str, Any] = json.loads(_load(direction, name))
    return schema


def names(direction: str) -> set[str]:
    """Every message type with a schema in `direction`."""
    return {path.stem for path in (SCHEMA_DIR / direction).glob("*.json")}
