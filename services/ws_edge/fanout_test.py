"""Fanout's bookkeeping with a fake queue: binds, unbinds and the per-user locks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from libs.bus.messages import CHANGE_TYPE, PRESENCE_TYPE
from libs.bus.topology import EDGE_HEADER, REASON_HEADER, USER_HEADER, routing_key
from services.ws_edge.fanout import Fanout

pytestmark = pytest.mark.asyncio

ALICE = routing_key("alice")


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
    bus._dead = DeadLetters()
    return bus


class DeadLetters:
    """The dead-letter exchange: what was published to it."""

    def __init__(self, fail: bool = False) -> None:
        self.published: list[tuple[Any, str]] = []
        self.fail = fail

    async def publish(self, message: Any, routing_key: str) -> None:
        if self.fail:
            raise ConnectionError("channel gone")
        self.published.append((message, routing_key))


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
    assert not later.done() or ALICE in queue.bound
    queue.binds.set()
    await asyncio.gather(waiting, later)
    assert queue.bound == {ALICE}
    await bus.unsubscribe("alice")
    await bus.unsubscribe("alice")
    assert queue.bound == set()
    assert bus._locks == {}


class Message:
    def __init__(
        self, body: bytes, headers: dict[str, Any] | None, kind: str = CHANGE_TYPE
    ) -> None:
        self.body = body
        self.routing_key = ALICE
        self.headers = headers
        self.type = kind
        self.content_type = None
        self.message_id = "m-1"
        self.acked = False

    async def ack(self) -> None:
        self.acked = True


async def test_a_poison_message_is_set_aside_acked_and_resyncs_its_user() -> None:
    lost: list[str | None] = []
    bus = fanout(SlowQueue(), lost)
    message = Message(b"\xff not a change", {USER_HEADER: "alice"})
    await bus._consume(message)  # type: ignore[arg-type]
    assert message.acked
    assert lost == ["alice"]  # from the header: the routing key is a digest
    ((copy, key),) = bus._dead.published
    assert copy.body == message.body and key == ALICE
    assert copy.headers[USER_HEADER] == "alice"
    assert copy.headers[EDGE_HEADER] == "test"
    assert "not a Change" in copy.headers[REASON_HEADER]


async def test_poison_without_a_user_header_resyncs_everyone() -> None:
    lost: list[str | None] = []
    bus = fanout(SlowQueue(), lost)
    await bus._consume(Message(b"\xff", None))  # type: ignore[arg-type]
    await bus._consume(Message(b"[]", {}, PRESENCE_TYPE))  # type: ignore[arg-type]
    assert lost == [None, None]
    assert len(bus._dead.published) == 2


async def test_a_failed_dead_letter_copy_still_acks() -> None:
    lost: list[str | None] = []
    bus = fanout(SlowQueue(), lost)
    bus._dead = DeadLetters(fail=True)
    message = Message(b"\xff", {USER_HEADER: "alice"})
    await bus._consume(message)  # type: ignore[arg-type]
    assert message.acked and lost == ["alice"]
