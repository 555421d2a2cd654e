"""The client's outbox: order, one in flight, base versions, resends, acks, refusals; no server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from libs.client.outbox import Ack, Acked, Outbox, Refused, Retry


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # Futures need a loop to belong to, not a running one: these tests stay synchronous.
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def update(op_id: str, **patch: Any) -> dict[str, Any]:
    return {"type": "update", "op_id": op_id, "patch": patch, "require_lease": False}


def ack(op_id: str, version: int, epoch: int = 1, **fields: Any) -> dict[str, Any]:
    return {"type": "ack", "of": "update", "op_id": op_id, "version": version, "epoch": epoch}


def outbox_with(loop: asyncio.AbstractEventLoop, *messages: dict[str, Any]) -> Outbox:
    outbox = Outbox()
    for message in messages:
        outbox.add(message, loop.create_future())
    return outbox


def test_ops_go_oldest_first_and_one_at_a_time(loop: asyncio.AbstractEventLoop) -> None:
    outbox = outbox_with(loop, update("a", x=1), update("b", x=2))
    first = outbox.next_to_send(epoch=1, version=3)
    assert first is not None and first.message["op_id"] == "a" and not first.resend
    assert outbox.in_flight == "a"
    assert outbox.next_to_send(epoch=1, version=3) is None  # "a" is still in flight
    assert not outbox.wants_send(3)
    outbox.acked(ack("a", 4), epoch=1)
    second = outbox.next_to_send(epoch=1, version=4)
    assert second is not None and second.message["op_id"] == "b"


def test_an_update_takes_its_base_version_when_first_sent(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1))
    sent = outbox.next_to_send(epoch=2, version=7)
    assert sent is not None
    assert (sent.message["base_version"], sent.message["epoch"]) == (7, 2)


def test_a_resend_after_a_reconnect_keeps_op_id_and_base_version(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1))
    outbox.next_to_send(epoch=1, version=3)
    outbox.reconnected()
    again = outbox.next_to_send(epoch=1, version=9)  # the stream moved on meanwhile
    assert again is not None and again.resend
    assert (again.message["op_id"], again.message["base_version"]) == ("a", 3)


def test_the_next_update_waits_until_the_stream_reaches_our_last_op(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1), update("b", x=2))
    outbox.next_to_send(epoch=1, version=3)
    outbox.acked(ack("a", 5), epoch=1)  # committed at 5: version 4 is someone else's
    assert outbox.own_floor == 5
    assert not outbox.wants_send(4)
    assert outbox.next_to_send(epoch=1, version=4) is None
    assert outbox.wants_send(5)
    sent = outbox.next_to_send(epoch=1, version=5)
    assert sent is not None and sent.message["base_version"] == 5


def test_an_ack_of_another_epoch_does_not_raise_the_floor(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1))
    outbox.next_to_send(epoch=1, version=3)
    outbox.acked(ack("a", 1, epoch=2), epoch=1)
    assert outbox.own_floor == 0


def test_a_snapshot_lowers_the_floor_to_what_it_shows(loop: asyncio.AbstractEventLoop) -> None:
    outbox = outbox_with(loop, update("a", x=1), update("b", x=2))
    outbox.next_to_send(epoch=1, version=3)
    outbox.acked(ack("a", 8), epoch=1)
    outbox.snapshot(6)  # history was lost: waiting for 8 would wait for ever
    assert outbox.own_floor == 6 and outbox.wants_send(6)


def test_an_ack_gives_the_entry_and_its_ack(loop: asyncio.AbstractEventLoop) -> None:
    outbox = outbox_with(loop, update("a", x=1))
    outbox.next_to_send(epoch=1, version=3)
    acked = outbox.acked({**ack("a", 4), "outcome": "rebased", "replayed": True}, epoch=1)
    assert isinstance(acked, Acked)
    assert acked.ack == Ack("a", 4, 1, outcome="rebased", replayed=True)
    assert acked.entry.message["op_id"] == "a"
    assert len(outbox) == 0 and outbox.in_flight is None


def test_an_ack_that_names_no_op_of_ours_changes_nothing(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1))
    outbox.next_to_send(epoch=1, version=3)
    assert outbox.acked(ack("zzz", 4), epoch=1) is None
    assert outbox.acked({"type": "ack", "of": "resume", "version": 4, "epoch": 1}, epoch=1) is None
    assert len(outbox) == 1 and outbox.in_flight == "a" and outbox.own_floor == 0


@pytest.mark.parametrize("code", ["unavailable", "internal", "rate_limited"])
def test_a_transient_error_is_retried_with_the_same_op(
    loop: asyncio.AbstractEventLoop, code: str
) -> None:
    outbox = outbox_with(loop, update("a", x=1))
    outbox.next_to_send(epoch=1, version=3)
    outcome = outbox.refused(code, {"op_id": "a", "retry_after": 2})
    assert outcome == Retry("a", 2.0)
    assert len(outbox) == 1
    assert outbox.next_to_send(epoch=1, version=3) is None  # still in flight until released
    assert outbox.release("a")
    again = outbox.next_to_send(epoch=1, version=3)
    assert again is not None and again.resend and again.message["op_id"] == "a"


def test_a_retry_without_retry_after_waits_the_default(loop: asyncio.AbstractEventLoop) -> None:
    outbox = outbox_with(loop, update("a", x=1))
    outbox.next_to_send(epoch=1, version=3)
    assert outbox.refused("unavailable", {"op_id": "a"}) == Retry("a", 0.5)


def test_a_rate_limit_naming_no_op_retries_the_one_in_flight(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1), update("b", x=2))
    outbox.next_to_send(epoch=1, version=3)
    assert outbox.refused("rate_limited", {"retry_after": 1}) == Retry("a", 1.0)
    # Any other error that names no op is not about an op.
    assert outbox.refused("unavailable", {}) is None


def test_release_after_the_op_settled_sends_nothing_twice(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1), update("b", x=2))
    outbox.next_to_send(epoch=1, version=3)
    outbox.refused("unavailable", {"op_id": "a"})
    outbox.acked(ack("a", 4), epoch=1)  # the first send was applied after all
    outbox.next_to_send(epoch=1, version=4)  # "b" is in flight now
    assert not outbox.release("a")
    assert outbox.in_flight == "b"


def test_a_refusal_for_good_removes_the_op_and_frees_the_line(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outbox = outbox_with(loop, update("a", x=1), update("b", x=2))
    outbox.next_to_send(epoch=1, version=3)
    outcome = outbox.refused("conflict", {"op_id": "a", "version": 5})
    assert isinstance(outcome, Refused) and outcome.entry.message["op_id"] == "a"
    assert len(outbox) == 1 and outbox.in_flight is None
    sent = outbox.next_to_send(epoch=1, version=3)
    assert sent is not None and sent.message["op_id"] == "b"


def test_a_handoff_is_sent_as_made(loop: asyncio.AbstractEventLoop) -> None:
    outbox = outbox_with(loop, {"type": "handoff", "op_id": "h", "to_device": "laptop"})
    outbox.own_floor = 9  # a handoff names no base version: it need not wait
    sent = outbox.next_to_send(epoch=1, version=3)
    assert sent is not None and "base_version" not in sent.message


def test_fail_all_fails_every_waiting_caller(loop: asyncio.AbstractEventLoop) -> None:
    outbox = Outbox()
    futures = [loop.create_future() for _ in range(2)]
    outbox.add(update("a", x=1), futures[0])
    outbox.add(update("b", x=2), futures[1])
    futures[1].set_result(Ack("b", 1, 1))  # already answered: left as it is
    outbox.fail_all(RuntimeError("closed"))
    assert isinstance(futures[0].exception(), RuntimeError)
    assert futures[1].result() == Ack("b", 1, 1)
    assert len(outbox) == 0
