"""Fanout's bookkeeping with a fake queue: binds, unbinds and the per-user locks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from libs.bus.messages import CHANGE_TYPE
from services.ws_edge.fanout import Fanout

pytestmark = pytest.mark.asyncio


class SlowQueue:
    """bind waits for `binds`, unbind for `unbinds`; `bound`: the keys bound right now."""

    def __init__(self) -> None:
        self.binds = asyncio.Event()
        self.unbinds = asyncio.Event()
        self.bound: set[str] = set()

    async def bind(self, exchange: Any, routing_key: str) -> None:
        await self.binds.wait()
        self.bound.add(routing_key)

    async def unbind(self, exchange: Any, routing_key: str) -> None:
        await self.unbinds.wait()
        self.bound.discard(routing_key)


def fanout(queue: SlowQueue, lost: list[str | None] | None = None) -> Fanout:
    bus = Fanout(
        "amqp://unused",
        "test",
        queue_max_length=10,
        on_change=lambda change: None,
        on_presence=lambda user, session, devices: None,
        on_reconnect=lambda: None,
        on_lost=None if lost is None else lost.append,
    )
    bus._queue = queue
    bus._exchange = object()
    return bus


async def test_subscribe_never_returns_before_the_bind_exists() -> None:
    queue = SlowQueue()
    bus = fanout(queue)
    queue.binds.set()
    await bus.subscribe("alice")
    queue.binds.clear()  # from now on binds hang until released
    leaving = asyncio.create_task(bus.unsubscribe("alice"))  # holds the lock, unbinding
    await asyncio.sleep(0)
    waiting = asyncio.create_task(bus.subscribe("alice"))  # queued on the lock
    await asyncio.sleep(0)
    queue.unbinds.set()
    await leaving
    await asyncio.sleep(0.01)
    later = asyncio.create_task(bus.subscribe("alice"))
    await asyncio.sleep(0.05)
    # The later device must not be told it receives events while nothing is bound.
    assert not later.done() or "user.616c696365" in queue.bound
    queue.binds.set()
    await asyncio.gather(waiting, later)
    assert queue.bound == {"user.616c696365"}
    await bus.unsubscribe("alice")
    await bus.unsubscribe("alice")
    assert queue.bound == set()
    assert bus._locks == {}


class Message:
    def __init__(self, body: bytes, routing_key: str) -> None:
        self.body = body
        self.routing_key = routing_key
        self.type = CHANGE_TYPE
        self.acked = False

    async def ack(self) -> None:
        self.acked = True


async def test_a_dropped_poison_message_resyncs_its_user() -> None:
    lost: list[str | None] = []
    bus = fanout(SlowQueue(), lost)
    message = Message(b"\xff not a change", "user.616c696365")
    await bus._consume(message)  # type: ignore[arg-type]
    assert message.acked
    assert lost == ["alice"]
    await bus._consume(Message(b"\xff", "weird"))  # type: ignore[arg-type]
    assert lost == ["alice", None]
