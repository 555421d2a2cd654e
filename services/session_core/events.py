"""Wire forms of core's records: protobuf messages.

One change is one `syncbridge.session.v1.Change`, the same bytes in the gRPC
answers, the Redis change log and the RabbitMQ event body (libs/bus: where it
is published, and how the edges read it back).
"""

from __future__ import annotations

import datetime as dt
import json

from google.protobuf.timestamp_pb2 import Timestamp

from libs.bus.messages import encode_change
from services.session_core.records import ChangeRecord, SessionRecord
from syncbridge.session.v1 import session_pb2

_KIND = {
    "created": session_pb2.CHANGE_KIND_CREATED,
    "update": session_pb2.CHANGE_KIND_UPDATE,
    "handoff": session_pb2.CHANGE_KIND_HANDOFF,
    "attach": session_pb2.CHANGE_KIND_DEVICE_ATTACHED,
    "ended": session_pb2.CHANGE_KIND_ENDED,
}


_OUTCOME = {
    "": session_pb2.UPDATE_OUTCOME_UNSPECIFIED,
    "applied": session_pb2.UPDATE_OUTCOME_APPLIED,
    "rebased": session_pb2.UPDATE_OUTCOME_REBASED,
}


def timestamp(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(dt.UTC))
    return stamp


def change_message(change: ChangeRecord) -> session_pb2.Change:
    return session_pb2.Change(
        event_id=change.event_id,
        session_id=change.session_id,
        user_id=change.user_id,
        epoch=change.epoch,
        version=change.version,
        kind=_KIND[change.kind],
        patch_json=json.dumps(change.patch, separators=(",", ":"))
        if change.kind in ("update", "created")
        else "",
        op_id=change.op_id or "",
        device_id=change.device_id,
        active_device=change.active_device,
        lease_fence=change.lease_fence,
        committed_at=timestamp(change.committed_at),
        outcome=_OUTCOME[change.outcome],
    )


def encode(change: ChangeRecord) -> bytes:
    """The outbox payload of `change`: the bus's change message."""
    return encode_change(change_message(change))


def session_message(
    record: SessionRecord, online: dict[str, dt.datetime] | None = None
) -> session_pb2.Session:
    online = online or {}
    return session_pb2.Session(
        session_id=record.session_id,
        user_id=record.user_id,
        state_json=json.dumps(record.state, separators=(",", ":")),
        version=record.version,
        epoch=record.epoch,
        active_device=record.active_device,
        lease_fence=record.lease_fence,
        devices=[
            session_pb2.Device(
                device_id=device,
                online=device in online,
                last_seen=timestamp(online[device]) if device in online else None,
            )
            for device in record.devices
        ],
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
        expires_at=timestamp(record.expires_at),
    )
