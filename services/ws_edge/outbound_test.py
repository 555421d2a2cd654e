"""The writer: in order, never blocks the producer, gives up on a peer that stops reading."""

from __future__ import annotations

import asyncio

import pytest

from services.ws_edge.outbound import Frame, Outbound

pytestmark = pytest.mark.asyncio


class Peer:
    """A socket whose send blocks while `reading` is clear."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.reading = asyncio.Event()
        self.reading.set()

    async def send(self, message: str) -> None:
        await self.reading.wait()
        self.sent.append(message)


def frame(n: int) -> Frame:
    return Frame(f"m{n}", "change")


async def test_sends_in_order_and_flushes() -> None:
    peer, sent = Peer(), list[Frame]()
    out = Outbound(peer, capacity=10, send_timeout=1, on_slow=lambda r: None, on_sent=sent.append)
    out.start()
    for n in range(5):
        assert out.push(frame(n))
    assert await out.flush(1.0)
    assert peer.sent == ["m0", "m1", "m2", "m3", "m4"]
    assert [f.text for f in sent] == peer.sent
    out.stop()


async def test_send_timeout_marks_slow_and_releases_the_queue() -> None:
    peer, reasons = Peer(), list[str]()
    peer.reading.clear()
    out = Outbound(peer, capacity=100, send_timeout=0.05, on_slow=reasons.append)
    out.start()
    for n in range(20):
        out.push(frame(n))
    await asyncio.sleep(0.2)
    assert reasons == ["send timed out"]
    assert out.slow and out.pending == 0
    assert not out.push(frame(99))
    await out.wait_stopped()


async def test_full_queue_marks_slow_without_blocking() -> None:
    peer, reasons = Peer(), list[str]()
    peer.reading.clear()
    out = Outbound(peer, capacity=3, send_timeout=10, on_slow=reasons.append)
    out.start()
    assert out.push(frame(0))
    await asyncio.sleep(0.01)  # the writer took it and is stuck sending it
    results = [out.push(frame(n)) for n in range(1, 6)]
    assert results == [True, True, True, False, False]
    assert reasons == ["outbound queue full"]
    assert out.pending == 0
    out.stop()
    await out.wait_stopped()


async def test_flush_times_out_on_a_stalled_peer() -> None:
    peer = Peer()
    peer.reading.clear()
    out = Outbound(peer, capacity=10, send_timeout=10, on_slow=lambda r: None)
    out.start()
    out.push(frame(1))
    assert not await out.flush(0.05)
    out.stop()
    await out.wait_stopped()
