"""The transition rules of one update, handoff and end: pure, no PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from services.session_core import transitions
from services.session_core.rebase import ChangeSummary
from services.session_core.records import (
    Conflict,
    InvalidArgument,
    LeaseRequired,
    SessionRecord,
    TooLarge,
    UpdateRequest,
)

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TTL = dt.timedelta(hours=1)


def _session(**fields: Any) -> SessionRecord:
    base = SessionRecord(
        session_id="4f1c0d0e-7c5b-4a53-9b53-0d5a3e1f2a10",
        user_id="alice",
        state={"track": {"id": "t1", "at": 10}, "volume": 3},
        version=5,
        epoch=2,
        active_device="phone",
        lease_fence=7,
        devices=("phone", "laptop"),
        created_at=NOW - TTL,
        updated_at=NOW - TTL,
        expires_at=NOW,
    )
    return dataclasses.replace(base, **fields)


def _update(**fields: Any) -> UpdateRequest:
    base = UpdateRequest(
        user_id="alice",
        session_id=_session().session_id,
        device_id="laptop",
        op_id="op-1",
        base_version=5,
        epoch=2,
        patch={"volume": 4},
    )
    return dataclasses.replace(base, **fields)


def _apply(request: UpdateRequest, since: list[ChangeSummary] | None = None, **kw: Any) -> Any:
    return transitions.updated(
        kw.pop("session", _session()),
        NOW,
        request,
        since or [],
        ttl=TTL,
        max_state_bytes=kw.pop("max_state_bytes", 1000),
    )


def test_a_current_update_is_applied_one_version_on() -> None:
    written = _apply(_update())
    assert written.session.state == {"track": {"id": "t1", "at": 10}, "volume": 4}
    assert written.session.version == written.change.version == 6
    assert written.change.outcome == "applied"
    assert written.change.paths == frozenset({("volume",)})
    assert written.change.op_id == "op-1"
    assert written.session.updated_at == written.change.committed_at == NOW
    assert written.session.expires_at == NOW + TTL
    assert not written.replayed


def test_a_stale_update_on_other_paths_is_rebased() -> None:
    since = [ChangeSummary(version=5, kind="update", paths=frozenset({("track", "at")}))]
    written = _apply(_update(base_version=4), since)
    assert written.change.outcome == "rebased"
    assert written.session.version == 6


def test_a_stale_update_on_the_same_path_conflicts_with_the_current_position() -> None:
    since = [ChangeSummary(version=5, kind="update", paths=frozenset({("volume",)}))]
    with pytest.raises(Conflict) as caught:
        _apply(_update(base_version=4), since)
    assert (caught.value.code, caught.value.version, caught.value.epoch) == ("conflict", 5, 2)


def test_a_stale_update_with_a_trimmed_history_conflicts() -> None:
    # Two versions since the base, one change readable: what it overlaps is unknown.
    since = [ChangeSummary(version=5, kind="update", paths=frozenset({("track",)}))]
    with pytest.raises(Conflict, match="stale"):
        _apply(_update(base_version=3), since)


def test_a_base_ahead_of_the_session_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="ahead"):
        _apply(_update(base_version=9))


def test_another_epoch_is_an_epoch_mismatch() -> None:
    with pytest.raises(Conflict) as caught:
        _apply(_update(epoch=1))
    assert caught.value.code == "epoch_mismatch"


def test_a_lease_update_needs_the_lease_and_its_fence() -> None:
    with pytest.raises(LeaseRequired, match="does not hold"):
        _apply(_update(require_lease=True))
    with pytest.raises(LeaseRequired, match="stale"):
        _apply(_update(device_id="phone", require_lease=True, expected_fence=6))
    written = _apply(_update(device_id="phone", require_lease=True, expected_fence=7))
    assert written.session.lease_fence == 7


def test_without_require_lease_any_device_writes() -> None:
    assert _apply(_update(device_id="laptop", expected_fence=1)).session.version == 6


def test_the_state_must_stay_an_object_within_the_limit() -> None:
    with pytest.raises(TooLarge, match="state: larger than 60 bytes"):
        _apply(_update(patch={"blob": "x" * 100}), max_state_bytes=60)


def test_next_change_keeps_what_it_is_not_given() -> None:
    current = _session()
    written = transitions.next_change(
        current,
        NOW,
        ttl=TTL,
        kind="handoff",
        device_id="phone",
        active_device="laptop",
        lease_fence=current.lease_fence + 1,
    )
    assert written.session.state == current.state
    assert written.session.devices == current.devices
    assert (written.change.active_device, written.change.lease_fence) == ("laptop", 8)
    assert written.change.kind == "handoff"


def test_event_ids_are_unique_per_transition() -> None:
    a = transitions.next_change(_session(), NOW, ttl=TTL, kind="attach", device_id="x")
    b = transitions.next_change(_session(), NOW, ttl=TTL, kind="attach", device_id="x")
    assert a.change.event_id != b.change.event_id


def test_a_handoff_is_between_attached_devices() -> None:
    transitions.handoff_checked(_session(), device_id="phone", to_device="laptop")
    with pytest.raises(InvalidArgument, match="device_id: 'tv'"):
        transitions.handoff_checked(_session(), device_id="tv", to_device="laptop")
    with pytest.raises(InvalidArgument, match="to_device: 'tv'"):
        transitions.handoff_checked(_session(), device_id="phone", to_device="tv")


def test_ended_is_one_version_on_without_a_lease() -> None:
    change = transitions.ended(_session(), device_id="phone", now=NOW)
    assert (change.kind, change.version, change.active_device, change.patch) == (
        "ended",
        6,
        "",
        None,
    )
    assert change.lease_fence == 7
