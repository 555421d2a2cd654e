"""Plain records passed between core's store, cache, relay and gRPC layer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

KINDS = ("created", "update", "handoff", "attach", "ended")
OUTCOMES = ("", "applied", "rebased")


@dataclass(frozen=True)
class SessionRecord:
    """One session as PostgreSQL holds it (the snapshot clients receive)."""

    session_id: str
    user_id: str
    state: dict[str, Any]
    version: int
    epoch: int
    active_device: str
    lease_fence: int
    devices: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class ChangeRecord:
    """One committed change: a row of the change log and one outbox event."""

    event_id: str
    session_id: str
    user_id: str
    epoch: int
    version: int
    kind: str
    patch: Any
    paths: frozenset[tuple[str, ...]]
    op_id: str | None
    device_id: str
    active_device: str
    lease_fence: int
    outcome: str
    committed_at: dt.datetime


class StoreError(Exception):
    """A refused operation; `code` is the stable wire code (see session.proto)."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    code = "session_not_found"


class InvalidArgument(StoreError):
    code = "invalid_argument"


class TooLarge(StoreError):
    code = "too_large"


class LeaseRequired(StoreError):
    code = "lease_required"


class DeadlineExceeded(StoreError):
    """The caller's deadline passed before its update could be written: not written."""

    code = "deadline_exceeded"


class Conflict(StoreError):
    """A stale update overlapping later changes, or a base in another epoch."""

    code = "conflict"

    def __init__(self, message: str, *, version: int, epoch: int, code: str = "conflict") -> None:
        super().__init__(message)
        self.version = version
        self.epoch = epoch
        self.code = code


@dataclass(frozen=True)
class UpdateRequest:
    """One ApplyUpdate, as the edge sent it, scoped to the verified user."""

    user_id: str
    session_id: str
    device_id: str
    op_id: str
    base_version: int
    epoch: int
    patch: Any
    require_lease: bool = False
    expected_fence: int = 0
    # time.monotonic() after which the caller no longer waits (None: no deadline).
    deadline: float | None = None
