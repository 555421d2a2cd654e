"""Bus messages: presence as its schema says, changes as protobuf; both refused when bent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from libs.bus import messages
from syncbridge.session.v1 import session_pb2

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).parent / "schema" / "presence.json").read_text()
)


def presence() -> messages.Presence:
    return messages.Presence(
        "alice",
        "s1",
        (messages.DeviceOnline("phone", True), messages.DeviceOnline("laptop", False)),
    )


def test_the_schema_is_valid_and_its_examples_decode() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for example in SCHEMA["examples"]:
        jsonschema.validate(example, SCHEMA, cls=jsonschema.Draft202012Validator)
        messages.decode_presence(json.dumps(example).encode())


def test_what_the_edge_publishes_is_what_the_schema_says_and_reads_back() -> None:
    body = messages.encode_presence(presence())
    jsonschema.validate(json.loads(body), SCHEMA, cls=jsonschema.Draft202012Validator)
    assert messages.decode_presence(body) == presence()
    assert presence().devices_json() == [
        {"device_id": "phone", "online": True},
        {"device_id": "laptop", "online": False},
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"session_id": "s1", "devices": []},
        {"user_id": 1, "session_id": "s1", "devices": []},
        {"user_id": "a", "session_id": "s1", "devices": {}},
        {"user_id": "a", "session_id": "s1", "devices": [{"device_id": "p"}]},
        {"user_id": "a", "session_id": "s1", "devices": [{"device_id": "p", "online": 1}]},
        {"user_id": "a", "session_id": "s1", "devices": ["p"]},
        ["not", "an", "object"],
    ],
)
def test_what_the_schema_refuses_decode_refuses(body: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, SCHEMA, cls=jsonschema.Draft202012Validator)
    with pytest.raises(messages.MalformedEvent):
        messages.decode_presence(json.dumps(body).encode())


def test_not_json_is_malformed() -> None:
    with pytest.raises(messages.MalformedEvent):
        messages.decode_presence(b"\xff{")


def test_changes_round_trip_and_garbage_is_malformed() -> None:
    change = session_pb2.Change(event_id="e", session_id="s1", user_id="alice", version=3)
    assert messages.decode_change(messages.encode_change(change)) == change
    with pytest.raises(messages.MalformedEvent):
        messages.decode_change(b"\xff not a change")
