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
    out = Outbound(
        peer,
        max_bytes=1 << 20,
        capacity=10,
        send_timeout=1,
        on_slow=lambda r: None,
        on_sent=sent.append,
    )
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
    out = Outbound(peer, max_bytes=1 << 20, capacity=100, send_timeout=0.05, on_slow=reasons.append)
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
    out = Outbound(peer, max_bytes=1 << 20, capacity=3, send_timeout=10, on_slow=reasons.append)
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
    out = Outbound(peer, max_bytes=1 << 20, capacity=10, send_timeout=10, on_slow=lambda r: None)
    out.start()
    out.push(frame(1))
    assert not await out.flush(0.05)
    out.stop()
    await out.wait_stopped()


async def test_byte_bound_marks_slow_even_with_frames_to_spare() -> None:
    peer, reasons = Peer(), list[str]()
    peer.reading.clear()
    out = Outbound(peer, capacity=100, max_bytes=1000, send_timeout=10, on_slow=reasons.append)
    out.start()
    assert out.push(Frame("x" * 10, "change"))
    await asyncio.sleep(0.01)  # the writer is stuck sending it: the queue is empty again
    assert out.push(Frame("é" * 300, "change"))  # 600 bytes, not 300 characters
    assert out.pending_bytes == 600
    assert not out.push(Frame("y" * 401, "change"))
    assert reasons == ["outbound queue full (bytes)"]
    assert out.pending == 0 and out.pending_bytes == 0
    await out.wait_stopped()


async def test_one_frame_above_the_byte_bound_still_goes_alone() -> None:
    peer = Peer()
    out = Outbound(peer, capacity=10, max_bytes=100, send_timeout=1, on_slow=lambda r: None)
    out.start()
    assert out.push(Frame("z" * 500, "snapshot"))
    assert await out.flush(1.0)
    assert peer.sent == ["z" * 500]
    out.stop()


class Broken:
    """A socket that is open but cannot send this frame (as a lone surrogate in Sanic)."""

    async def send(self, message: str) -> None:
        message.encode("utf-8")


async def test_a_send_failing_on_an_open_socket_fails_the_writer() -> None:
    out = Outbound(Broken(), capacity=10, max_bytes=1000, send_timeout=1, on_slow=lambda r: None)
    out.start()
    out.push(Frame("\ud800", "error"))
    out.push(Frame("next", "ack"))
    with pytest.raises(UnicodeEncodeError):
        await out.wait_stopped()
    assert out.pending == 0 and not out.push(Frame("more", "ack"))


async def test_a_send_failing_on_a_closed_socket_just_stops() -> None:
    out = Outbound(
        Broken(),
        capacity=10,
        max_bytes=1000,
        send_timeout=1,
        on_slow=lambda r: None,
        gone=lambda: True,
    )
    out.start()
    out.push(Frame("\ud800", "error"))
    await out.wait_stopped()  # no exception: the reader side ends the connection
    assert not out.push(Frame("more", "ack"))
