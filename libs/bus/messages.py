"""The two kinds of message on the exchange, told apart by their AMQP `type` property.

- a change: one `syncbridge.session.v1.Change` (protobuf), the same bytes core
  keeps in its change log and answers over gRPC;
- presence: which devices of a session are online, published by the edge that
  saw it change, so every replica serving the user tells its devices. It has no
  version (it is not a change), and is JSON described by `schema/presence.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from syncbridge.session.v1 import session_pb2

CHANGE_TYPE = "syncbridge.session.v1.Change"
CHANGE_CONTENT_TYPE = "application/x-protobuf"
PRESENCE_TYPE = "syncbridge.edge.presence.v1"
PRESENCE_CONTENT_TYPE = "application/json"


class MalformedEvent(ValueError):
    """A bus message that is not what its `type` says."""


def encode_change(change: session_pb2.Change) -> bytes:
    payload: bytes = change.SerializeToString()
    return payload


def decode_change(payload: bytes) -> session_pb2.Change:
    """A change's body; MalformedEvent if it is not a serialized Change."""
    try:
        change: session_pb2.Change = session_pb2.Change.FromString(payload)
    except Exception as error:  # protobuf's DecodeError, among others
        raise MalformedEvent(f"not a Change: {error}") from error
    return change


@dataclass(frozen=True, slots=True)
class DeviceOnline:
    device_id: str
    online: bool


@dataclass(frozen=True, slots=True)
class Presence:
    """Who is online in `session_id` of `user_id` (the full list, not a delta)."""

    user_id: str
    session_id: str
    devices: tuple[DeviceOnline, ...]

    def devices_json(self) -> list[dict[str, Any]]:
        """The list as the client protocol's `presence` message carries it."""
        return [{"device_id": d.device_id, "online": d.online} for d in self.devices]


def encode_presence(presence: Presence) -> bytes:
    body = {
        "user_id": presence.user_id,
        "session_id": presence.session_id,
        "devices": presence.devices_json(),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_presence(payload: bytes) -> Presence:
    """A presence body; MalformedEvent naming the first field that breaks the schema."""
    try:
        data = json.loads(payload)
    except ValueError as error:
        raise MalformedEvent(f"presence: not JSON: {error}") from error
    if not isinstance(data, dict):
        raise MalformedEvent("presence: not an object")
    user_id = _string(data, "user_id")
    session_id = _string(data, "session_id")
    devices = data.get("devices")
    if not isinstance(devices, list):
        raise MalformedEvent("presence: devices: expected an array")
    return Presence(user_id, session_id, tuple(_device(item) for item in devices))


def _string(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise MalformedEvent(f"presence: {field}: expected a string")
    return value


def _device(item: Any) -> DeviceOnline:
    if not isinstance(item, dict):
        raise MalformedEvent("presence: devices[]: expected an object")
    online = item.get("online")
    if not isinstance(online, bool):
        raise MalformedEvent("presence: devices[].online: expected a boolean")
    return DeviceOnline(_string(item, "device_id"), online)
