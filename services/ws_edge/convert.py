"""session-core's protobuf messages as the JSON the protocol and the HTTP API send."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.ws_edge.protocol import Message
from syncbridge.session.v1 import session_pb2

KIND_NAMES = {
    session_pb2.CHANGE_KIND_UPDATE: "update",
    session_pb2.CHANGE_KIND_HANDOFF: "handoff",
    session_pb2.CHANGE_KIND_DEVICE_ATTACHED: "attach",
    session_pb2.CHANGE_KIND_ENDED: "ended",
    session_pb2.CHANGE_KIND_CREATED: "created",
}
OUTCOME_NAMES = {
    session_pb2.UPDATE_OUTCOME_APPLIED: "applied",
    session_pb2.UPDATE_OUTCOME_REBASED: "rebased",
}


def rfc3339(stamp: Timestamp) -> str:
    """A protobuf Timestamp as RFC 3339 UTC ("...Z")."""
    text: str = stamp.ToJsonString()
    return text


def devices(items: Any) -> list[dict[str, Any]]:
    """Device list entries as {device_id, online}."""
    return [{"device_id": d.device_id, "online": bool(d.online)} for d in items]


def session_view(session: session_pb2.Session) -> Message:
    """The `session` object of a snapshot (and of GET /v1/sessions/{id})."""
    return {
        "session_id": session.session_id,
        "epoch": session.epoch,
        "version": session.version,
        "state": json.loads(session.state_json or "{}"),
        "active_device": session.active_device,
        "lease_fence": session.lease_fence,
        "devices": devices(session.devices),
        "updated_at": rfc3339(session.updated_at),
        "expires_at": rfc3339(session.expires_at),
    }


def change_message(change: session_pb2.Change) -> Message:
    """A `change` message, or a `handoff` one for a lease move (same ordering, own type)."""
    kind = KIND_NAMES.get(change.kind, "update")
    message: Message = {
        "type": "handoff" if kind == "handoff" else "change",
        "session_id": change.session_id,
        "epoch": change.epoch,
        "version": change.version,
        "device_id": change.device_id,
        "committed_at": rfc3339(change.committed_at),
    }
    if kind == "handoff":
        message["active_device"] = change.active_device
        message["lease_fence"] = change.lease_fence
    else:
        message["kind"] = kind
        if change.patch_json:
            message["patch"] = json.loads(change.patch_json)
    if change.op_id:
        message["op_id"] = change.op_id
    return message
