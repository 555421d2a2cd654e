"""The documented protocol (libs/protocol/schema/*.json) and the code agree.

Every schema's examples validate; client examples parse, and lose a required
field → the parser and the schema both refuse; what the server builds
validates against the server schemas.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from jsonschema import Draft202012Validator

from libs.protocol.codes import ErrorCode
from libs.protocol.schemas import load, names
from libs.protocol.validation import errors
from services.ws_edge import convert, protocol
from syncbridge.session.v1 import session_pb2


def test_one_schema_per_message() -> None:
    assert names("client") == set(protocol.CLIENT_TYPES)
    assert names("server") == set(protocol.SERVER_TYPES)


@pytest.mark.parametrize(
    ("direction", "name"),
    [("client", n) for n in protocol.CLIENT_TYPES] + [("server", n) for n in protocol.SERVER_TYPES],
)
def test_examples_validate(direction: str, name: str) -> None:
    schema = load(direction, name)
    assert schema["examples"], f"{direction}/{name}: no examples"
    for example in schema["examples"]:
        assert errors(schema, example) == [], example


@pytest.mark.parametrize("name", protocol.CLIENT_TYPES)
def test_client_examples_parse_and_required_fields_are_required(name: str) -> None:
    schema = load("client", name)
    for example in schema["examples"]:
        protocol.parse(json.dumps(example))
        for field in schema["required"]:
            broken = {k: v for k, v in example.items() if k != field}
            assert errors(schema, broken), f"schema accepts {name} without {field}"
            with pytest.raises(protocol.ProtocolError) as refused:
                protocol.parse(json.dumps(broken))
            assert refused.value.code is ErrorCode.MISSING_FIELD


def test_validator_catches_what_it_claims() -> None:
    schema = load("server", "presence")
    assert errors(schema, {"type": "presence"}) == [
        "$: 'session_id' is a required property",
        "$: 'devices' is a required property",
    ]
    assert errors(schema, {"type": "presence", "session_id": 1, "devices": [], "x": 1}) == [
        "$: Additional properties are not allowed ('x' was unexpected)",
        "$.session_id: 1 is not of type 'string'",
    ]
    # References between files resolve: a snapshot's session is the shared Session shape.
    snapshot = load("server", "snapshot")["examples"][0]
    snapshot["session"]["version"] = True
    snapshot["session"]["devices"] = [{"device_id": "p", "online": 1}]
    assert errors(load("server", "snapshot"), snapshot) == [
        "$.session.devices[0].online: 1 is not of type 'boolean'",
        "$.session.version: True is not of type 'integer'",
    ]
    snapshot["session"] = {**snapshot["session"], "version": 1.0, "devices": []}
    assert errors(load("server", "snapshot"), snapshot) == []  # 1.0 is an integer in JSON
    snapshot["session"]["updated_at"] = "yesterday"
    assert errors(load("server", "snapshot"), snapshot) == [
        "$.session.updated_at: 'yesterday' is not a 'date-time'"
    ]


def test_every_schema_is_valid_draft_2020_12() -> None:
    for direction in ("client", "server", "shapes"):
        for name in names(direction):
            Draft202012Validator.check_schema(load(direction, name))


def stamp() -> Timestamp:
    value = Timestamp()
    value.FromJsonString("2026-02-11T20:55:00.120Z")
    return value


def session() -> session_pb2.Session:
    return session_pb2.Session(
        session_id="s1",
        user_id="alice",
        state_json='{"page": 1}',
        version=4,
        epoch=1,
        active_device="phone",
        lease_fence=1,
        devices=[session_pb2.Device(device_id="phone", online=True)],
        updated_at=stamp(),
        expires_at=stamp(),
    )


def change(kind: session_pb2.ChangeKind.ValueType, **fields: Any) -> session_pb2.Change:
    return session_pb2.Change(
        event_id="e",
        session_id="s1",
        user_id="alice",
        epoch=1,
        version=5,
        kind=kind,
        device_id="phone",
        committed_at=stamp(),
        **fields,
    )


def built_messages() -> list[dict[str, Any]]:
    view = convert.session_view(session())
    return [
        protocol.welcome(
            user_id="alice",
            device_id="phone",
            edge_id="e1",
            ping_interval_seconds=30.0,
            token_expires_at=1,
            limits={
                "max_frame_bytes": 1,
                "rate_per_second": 1.0,
                "rate_burst": 1,
                "max_devices_per_user": 1,
            },
            ref="r",
        ),
        protocol.snapshot(view, recovered=True, ref="r"),
        protocol.snapshot(view, recovered=False, reason="gap"),
        convert.change_message(
            change(session_pb2.CHANGE_KIND_UPDATE, patch_json='{"a":1}', op_id="o")
        ),
        convert.change_message(change(session_pb2.CHANGE_KIND_DEVICE_ATTACHED)),
        convert.change_message(change(session_pb2.CHANGE_KIND_ENDED)),
        convert.change_message(change(session_pb2.CHANGE_KIND_CREATED, patch_json="{}")),
        convert.change_message(
            change(session_pb2.CHANGE_KIND_HANDOFF, active_device="laptop", lease_fence=2)
        ),
        protocol.ack(
            "update",
            op_id="o",
            session_id="s1",
            epoch=1,
            version=5,
            outcome="rebased",
            replayed=True,
        ),
        protocol.ack("resume", ref="r", session_id="s1", epoch=1, version=5, changes=2),
        protocol.ack("refresh", token_expires_at=5),
        protocol.ack("leave"),
        protocol.presence("s1", convert.devices(session().devices)),
        protocol.error(ErrorCode.CONFLICT, "x", ref="r", details={"version": 3}),
    ]


@pytest.mark.parametrize("message", built_messages(), ids=lambda m: m["type"])
def test_built_messages_validate(message: dict[str, Any]) -> None:
    assert message["type"] in protocol.SERVER_TYPES
    assert errors(load("server", message["type"]), message) == []
