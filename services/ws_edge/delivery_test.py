"""A device's change stream: in order, once, holes backfilled from core, never a silent gap."""

from __future__ import annotations

import asyncio

import pytest

from libs.core_client.client import CoreError
from services.ws_edge.delivery import Delivery
from syncbridge.session.v1 import session_pb2

pytestmark = pytest.mark.asyncio


def change(version: int, epoch: int = 1) -> session_pb2.Change:
    return session_pb2.Change(session_id="s", epoch=epoch, version=version, event_id=f"e{version}")


class FakeCore:
    """Holds the session's log; ChangesSince answers from it."""

    def __init__(self, head: int, epoch: int = 1, oldest: int = 1) -> None:
        self.head = head
        self.epoch = epoch
        self.oldest = oldest
        self.calls: list[tuple[int, int]] = []
        self.failures: list[CoreError] = []

    async def since(self, epoch: int, version: int) -> session_pb2.ChangesSinceResponse:
        self.calls.append((epoch, version))
        if self.failures:
            raise self.failures.pop(0)
        if epoch != self.epoch or version + 1 < self.oldest:
            return session_pb2.ChangesSinceResponse(recovered=False, snapshot=await self.snapshot())
        return session_pb2.ChangesSinceResponse(
            recovered=True,
            changes=[change(v, self.epoch) for v in range(version + 1, self.head + 1)],
        )

    async def snapshot(self) -> session_pb2.Session:
        return session_pb2.Session(session_id="s", epoch=self.epoch, version=self.head)


class Device:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []
        self.failures: list[str] = []

    def make(self, core: FakeCore, **kwargs: object) -> Delivery:
        return Delivery(
            "s",
            emit_change=lambda c: self.seen.append(("change", c.epoch, c.version)),
            emit_snapshot=lambda s, reason: self.seen.append(("snapshot", s.epoch, s.version)),
            fetch_since=core.since,
            fetch_snapshot=core.snapshot,
            on_failure=lambda e: self.failures.append(e.code),
            retry_seconds=0.01,
            **kwargs,  # type: ignore[arg-type]
        )


def versions(device: Device) -> list[int]:
    return [v for kind, _, v in device.seen if kind == "change"]


async def settle(delivery: Delivery) -> None:
    await delivery.wait_idle()
    await asyncio.sleep(0)


async def test_in_order_stream_is_delivered_once() -> None:
    core, device = FakeCore(head=3), Device()
    delivery = device.make(core)
    delivery.start(1, 3)
    for v in (4, 4, 5, 3, 6):
        delivery.offer(change(v))
    assert versions(device) == [4, 5, 6]
    assert core.calls == []


async def test_changes_arriving_before_start_are_stashed_then_filtered() -> None:
    core, device = FakeCore(head=5), Device()
    delivery = device.make(core)
    for v in (5, 6, 7):
        delivery.offer(change(v))
    assert device.seen == []
    delivery.start(1, 5)
    assert versions(device) == [6, 7]


async def test_a_hole_is_backfilled_before_later_changes() -> None:
    core, device = FakeCore(head=8), Device()
    delivery = device.make(core)
    delivery.start(1, 3)
    delivery.offer(change(6))  # 4 and 5 were lost
    delivery.offer(change(7))  # arrives during the backfill: stashed
    await settle(delivery)
    delivery.offer(change(8))
    assert versions(device) == [4, 5, 6, 7, 8]
    assert core.calls == [(1, 3)]


async def test_replay_on_start_then_live() -> None:
    core, device = FakeCore(head=10), Device()
    delivery = device.make(core)
    delivery.offer(change(11))
    sent = delivery.start(1, 7, [change(8), change(9), change(10)])
    assert sent == 3
    assert versions(device) == [8, 9, 10, 11]


async def test_history_gone_becomes_a_snapshot() -> None:
    core, device = FakeCore(head=50, oldest=40), Device()
    delivery = device.make(core)
    delivery.start(1, 3)
    delivery.offer(change(50))
    await settle(delivery)
    assert device.seen == [("snapshot", 1, 50)]
    delivery.offer(change(51))
    assert versions(device) == [51]


async def test_newer_epoch_resyncs_with_a_snapshot() -> None:
    core, device = FakeCore(head=2, epoch=2), Device()
    delivery = device.make(core)
    delivery.start(1, 9)
    delivery.offer(change(3, epoch=2))
    await settle(delivery)
    assert device.seen == [("snapshot", 2, 2), ("change", 2, 3)]


async def test_core_unavailable_is_retried_then_filled() -> None:
    core, device = FakeCore(head=5), Device()
    core.failures = [CoreError("unavailable", "UNAVAILABLE", "down")] * 2
    delivery = device.make(core)
    delivery.start(1, 3)
    delivery.offer(change(5))
    await settle(delivery)
    assert versions(device) == [4, 5]
    assert len(core.calls) == 3


async def test_session_gone_is_reported() -> None:
    core, device = FakeCore(head=5), Device()
    core.failures = [CoreError("session_not_found", "NOT_FOUND", "gone")]
    delivery = device.make(core)
    delivery.start(1, 3)
    delivery.offer(change(5))
    await settle(delivery)
    assert device.failures == ["session_not_found"]
    assert versions(device) == []


async def test_resync_after_bus_reconnect_fetches_what_was_missed() -> None:
    core, device = FakeCore(head=6), Device()
    delivery = device.make(core)
    delivery.start(1, 4)
    delivery.resync()
    await settle(delivery)
    assert versions(device) == [5, 6]


async def test_stash_is_bounded() -> None:
    core, device = FakeCore(head=100), Device()
    delivery = device.make(core, max_stash=5)
    for v in range(1, 101):
        delivery.offer(change(v))
    delivery.start(1, 0)
    await settle(delivery)
    assert versions(device) == list(range(1, 101))  # the dropped ones came from core


async def test_closed_delivery_ignores_everything() -> None:
    core, device = FakeCore(head=3), Device()
    delivery = device.make(core)
    delivery.start(1, 3)
    delivery.close()
    delivery.offer(change(4))
    assert device.seen == []
