"""The client's session mirror: snapshots, ordered changes, gaps, its own acks; no server."""

from __future__ import annotations

from typing import Any

from libs.client.mirror import StateMirror, Verdict


def _mirror() -> StateMirror:
    mirror = StateMirror()
    mirror.apply_snapshot(
        {
            "session_id": "s",
            "epoch": 1,
            "version": 4,
            "state": {"a": 1},
            "active_device": "phone",
            "devices": [{"device_id": "phone"}],
        }
    )
    return mirror


def _change(version: int, **fields: Any) -> dict[str, Any]:
    return {"type": "change", "session_id": "s", "epoch": 1, "version": version, **fields}


def test_a_snapshot_replaces_everything() -> None:
    mirror = _mirror()
    mirror.ended = True
    mirror.apply_snapshot({"session_id": "t", "epoch": 2, "version": 0})
    assert (mirror.session_id, mirror.epoch, mirror.version) == ("t", 2, 0)
    assert (mirror.state, mirror.active_device, mirror.devices, mirror.ended) == ({}, "", [], False)


def test_the_next_version_is_applied() -> None:
    mirror = _mirror()
    assert mirror.apply_change(_change(5, patch={"b": 2, "a": None})) is Verdict.APPLIED
    assert (mirror.version, mirror.state) == (5, {"b": 2})


def test_duplicates_other_sessions_and_old_epochs_are_stale() -> None:
    mirror = _mirror()
    assert mirror.apply_change(_change(4, patch={"x": 1})) is Verdict.STALE
    assert mirror.apply_change(_change(3, patch={"x": 1})) is Verdict.STALE
    assert mirror.apply_change({**_change(5, patch={"x": 1}), "epoch": 0}) is Verdict.STALE
    assert mirror.apply_change({**_change(5, patch={"x": 1}), "session_id": "t"}) is Verdict.STALE
    assert (mirror.version, mirror.state) == (4, {"a": 1})


def test_a_missing_version_is_a_gap_and_changes_nothing() -> None:
    mirror = _mirror()
    assert mirror.apply_change(_change(6, patch={"x": 1})) is Verdict.GAP
    assert (mirror.version, mirror.state) == (4, {"a": 1})


def test_handoff_and_end_move_the_lease_and_the_end_flag() -> None:
    mirror = _mirror()
    handoff = {**_change(5), "type": "handoff", "active_device": "laptop"}
    assert mirror.apply_change(handoff) is Verdict.APPLIED
    assert mirror.active_device == "laptop"
    assert mirror.apply_change(_change(6, kind="ended")) is Verdict.APPLIED
    assert mirror.ended and mirror.state == {"a": 1}


def test_a_patch_that_is_not_an_object_leaves_an_empty_state() -> None:
    mirror = _mirror()
    mirror.apply_change(_change(5, patch=[1, 2]))
    assert mirror.state == {}


def test_presence_of_this_session_only() -> None:
    mirror = _mirror()
    assert not mirror.apply_presence({"session_id": "t", "devices": [{"device_id": "x"}]})
    assert mirror.apply_presence({"session_id": "s", "devices": [{"device_id": "tv"}]})
    assert mirror.devices == [{"device_id": "tv"}]


def test_an_own_update_that_directly_follows_is_applied_at_once() -> None:
    mirror = _mirror()
    sent = {"type": "update", "op_id": "o1", "patch": {"a": 2}}
    message = mirror.apply_own(sent, epoch=1, version=5, outcome="applied", device_id="phone")
    assert message is not None and message["type"] == "change" and message["op_id"] == "o1"
    assert (mirror.version, mirror.state) == (5, {"a": 2})
    # The same change arriving later through the bus is a duplicate.
    assert mirror.apply_change(_change(5, patch={"a": 2})) is Verdict.STALE


def test_an_own_op_is_left_to_the_stream_unless_exactly_known() -> None:
    mirror = _mirror()
    sent = {"type": "update", "op_id": "o1", "patch": {"a": 2}}
    assert mirror.apply_own(sent, epoch=1, version=5, outcome="rebased", device_id="p") is None
    assert mirror.apply_own(sent, epoch=1, version=6, outcome="applied", device_id="p") is None
    assert mirror.apply_own(sent, epoch=2, version=5, outcome="applied", device_id="p") is None
    assert (mirror.version, mirror.state) == (4, {"a": 1})


def test_an_own_handoff_moves_the_lease() -> None:
    mirror = _mirror()
    sent = {"type": "handoff", "op_id": "h1", "to_device": "laptop"}
    message = mirror.apply_own(sent, epoch=1, version=5, outcome="", device_id="phone")
    assert message is not None and message["active_device"] == "laptop"
    assert (mirror.version, mirror.active_device) == (5, "laptop")
