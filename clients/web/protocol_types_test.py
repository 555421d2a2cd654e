"""protocol_types.mts is current: regenerating it from the schemas changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clients.web import gen_protocol_types

HERE = Path(__file__).parent
# The schema files (PROTOCOL_SCHEMA in BUILD.bazel), runfiles-relative.
SCHEMAS = [Path(p) for p in os.environ.get("PROTOCOL_SCHEMA_FILES", "").split()]


def test_generated_types_are_current() -> None:
    assert len(SCHEMAS) >= 14, SCHEMAS
    assert gen_protocol_types.generate(SCHEMAS) == (HERE / "protocol_types.mts").read_text(), (
        "stale: bazel run //clients/web:protocol_types.update"
    )


def test_every_message_has_a_type() -> None:
    text = (HERE / "protocol_types.mts").read_text()
    for path in SCHEMAS:
        assert (
            f"export interface {gen_protocol_types.type_name(path.parent.name, path.stem)} " in text
        )


def test_unknown_keywords_stop_the_generator() -> None:
    with pytest.raises(ValueError, match="oneOf"):
        gen_protocol_types.ts_type({"oneOf": []}, "", "server")


def test_a_ref_names_a_shared_shape_and_nothing_else() -> None:
    assert gen_protocol_types.ts_type({"$ref": "../shapes/session.json"}, "", "server") == "Session"
    assert gen_protocol_types.ts_type({"$ref": "device.json"}, "", "shapes") == "Device"
    with pytest.raises(ValueError, match="only shapes"):
        gen_protocol_types.ts_type({"$ref": "../client/open.json"}, "", "server")
