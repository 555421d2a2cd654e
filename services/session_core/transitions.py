"""The rules of one state transition, against the session as it stands: pure.

store.py reads and locks the rows, calls these, then writes what they return.
Nothing here reads a clock, a database or a socket: `now` and the history are
arguments, so every rule is unit-tested without PostgreSQL (transitions_test.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from libs.merge_patch import merge_patch
from services.session_core import rebase
from services.session_core.records import (
    ChangeRecord,
    Conflict,
    InvalidArgument,
    LeaseRequired,
    SessionRecord,
    UpdateRequest,
)
from services.session_core.store_checks import check_state_size


@dataclasses.dataclass(frozen=True)
class Written:
    """A committed change and the session as it stands after it."""

    change: ChangeRecord
    session: SessionRecord
    replayed: bool = False


def next_change(
    current: SessionRecord,
    now: dt.datetime,
    *,
    ttl: dt.timedelta,
    kind: str,
    device_id: str,
    op_id: str | None = None,
    patch: Any = None,
    paths: frozenset[tuple[str, ...]] = frozenset(),
    outcome: str = "",
    state: dict[str, Any] | None = None,
    active_device: str | None = None,
    lease_fence: int | None = None,
    devices: tuple[str, ...] | None = None,
) -> Written:
    """The session and change one more transition makes: one version on, TTL renewed."""
    session = dataclasses.replace(
        current,
        state=current.state if state is None else state,
        version=current.version + 1,
        active_device=current.active_device if active_device is None else active_device,
        lease_fence=current.lease_fence if lease_fence is None else lease_fence,
        devices=current.devices if devices is None else devices,
        updated_at=now,
        expires_at=now + ttl,
    )
    change = ChangeRecord(
        event_id=str(uuid.uuid4()),
        session_id=session.session_id,
        user_id=session.user_id,
        epoch=session.epoch,
        version=session.version,
        kind=kind,
        patch=patch,
        paths=paths,
        op_id=op_id,
        device_id=device_id,
        active_device=session.active_device,
        lease_fence=session.lease_fence,
        outcome=outcome,
        committed_at=now,
    )
    return Written(change, session)


def updated(
    current: SessionRecord,
    now: dt.datetime,
    request: UpdateRequest,
    since: list[rebase.ChangeSummary],
    *,
    ttl: dt.timedelta,
    max_state_bytes: int,
) -> Written:
    """One update against the session as it stands; `since` is every change after its base
    that could be read (fewer than the versions between means the log was trimmed)."""
    if request.epoch != current.epoch:
        raise Conflict(
            f"epoch: the session is in epoch {current.epoch}, not {request.epoch}",
            version=current.version,
            epoch=current.epoch,
            code="epoch_mismatch",
        )
    if request.require_lease and current.active_device != request.device_id:
        raise LeaseRequired(f"device {request.device_id!r} does not hold the active-device lease")
    if (
        request.require_lease
        and request.expected_fence
        and request.expected_fence != current.lease_fence
    ):
        raise LeaseRequired(
            f"expected_fence {request.expected_fence} is stale (lease fence {current.lease_fence})"
        )
    paths = merge_patch.changed_paths(request.patch)
    base_version = request.base_version
    try:
        decision = rebase.decide(
            base_version,
            current.version,
            paths,
            since,
            history_complete=len(since) == max(current.version - base_version, 0),
        )
    except rebase.FutureBaseError:
        raise Conflict(
            f"base_version {base_version} is ahead of the session ({current.version})",
            version=current.version,
            epoch=current.epoch,
        ) from None
    if decision.outcome == "conflict":
        raise Conflict(
            f"base_version {base_version} is stale and overlaps later changes"
            f" (current version {current.version})",
            version=current.version,
            epoch=current.epoch,
        )
    state = merge_patch.apply_merge_patch(current.state, request.patch)
    if not isinstance(state, dict):
        raise InvalidArgument("patch_json: the state must stay a JSON object")
    check_state_size(state, max_state_bytes)
    return next_change(
        current,
        now,
        ttl=ttl,
        kind="update",
        device_id=request.device_id,
        op_id=request.op_id,
        patch=request.patch,
        paths=paths,
        outcome=decision.outcome,
        state=state,
    )


def handoff_checked(current: SessionRecord, *, device_id: str, to_device: str) -> None:
    """A handoff moves the lease between two devices attached to the session."""
    if device_id not in current.devices:
        raise InvalidArgument(f"device_id: {device_id!r} is not attached to the session")
    if to_device not in current.devices:
        raise InvalidArgument(f"to_device: {to_device!r} is not attached to the session")


def ended(current: SessionRecord, *, device_id: str, now: dt.datetime) -> ChangeRecord:
    """The `ended` change: one version on, no state, no lease (the row itself is deleted)."""
    return ChangeRecord(
        event_id=str(uuid.uuid4()),
        session_id=current.session_id,
        user_id=current.user_id,
        epoch=current.epoch,
        version=current.version + 1,
        kind="ended",
        patch=None,
        paths=frozenset(),
        op_id=None,
        device_id=device_id,
        active_device="",
        lease_fence=current.lease_fence,
        outcome="",
        committed_at=now,
    )
