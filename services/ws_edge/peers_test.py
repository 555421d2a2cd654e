"""Slow and half-open peers on real loopback sockets: every timeout is a total deadline.

Timeouts come from the edge's configuration, short; each test keeps the
peer misbehaving for many times the deadline and asserts the edge cut it
off meanwhile, so a deadline that restarted with every byte or frame fails.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from libs.client.client import SyncClient
from services.ws_edge.edge_testing import (
    Stack,
    expect,
    metric,
    raw,
    running_stack,
    send,
    wait_until,
)

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

Make = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def make(pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path) -> Make:
    return functools.partial(running_stack, pg_dsn, redis_url, amqp_url, tmp_path)


async def _connect(stack: Stack, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, stack.http())
    return sock


def _upgrade(stack: Stack) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /session/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {stack.token()}\r\n\r\n"
    ).encode()


def _text_frame(payload: bytes) -> bytes:
    """A masked client text frame (payload below 64 KiB)."""
    mask = os.urandom(4)
    length = len(payload)
    head = bytes([0x81, 0x80 | length]) if length < 126 else struct.pack("!BBH", 0x81, 0xFE, length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the edge sends until it closes the socket (EOF or reset)."""
    loop = asyncio.get_running_loop()
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await loop.sock_recv(sock, 1 << 16):
            data += chunk
    return data


# -- before the upgrade --------------------------------------------------------


async def test_an_upgrade_trickled_byte_by_byte_is_cut_at_the_header_deadline(
    make: Make,
) -> None:
    # The per-read timeout (Sanic's REQUEST_TIMEOUT) is the same 0.5 s: a byte every
    # 0.1 s never trips it, only a deadline counted from the first byte does.
    async with make(header_timeout_seconds=0.5, idle_timeout_seconds=30.0) as stack:
        loop = asyncio.get_running_loop()
        sock = await _connect(stack)
        request = _upgrade(stack)[:-2] + b"X-Pad: " + b"a" * 400 + b"\r\n\r\n"
        closed = asyncio.create_task(_read_until_closed(sock))
        started = loop.time()
        sent = 0
        for byte in request[:-4]:  # never the end of the head
            if closed.done():
                break
            with contextlib.suppress(ConnectionError):
                await loop.sock_sendall(sock, bytes([byte]))
            sent += 1
            await asyncio.sleep(0.1)
        assert closed.done(), "the trickled head was never cut off"
        answer = await closed
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert loop.time() - started >= 0.5  # not before the deadline: a total, not a guess
        assert sent < len(request) - 4
        sock.close()


async def test_a_connection_that_sends_nothing_is_closed_at_the_idle_timeout(
    make: Make,
) -> None:
    async with make(idle_timeout_seconds=0.3) as stack:
        sock = await _connect(stack)
        assert await asyncio.wait_for(_read_until_closed(sock), 10) == b""
        sock.close()


async def test_the_listen_backlog_is_the_configured_one(make: Make) -> None:
    # 77: neither Sanic's default (100) nor the old hard-coded 1024.
    async with make(listen_backlog=77) as stack:
        serving = stack.edges[0].server.server
        assert serving is not None
        [listening] = serving.sockets
        info = listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        # struct tcp_info: 8 one-byte fields, then u32 rto, ato, snd_mss, rcv_mss,
        # unacked, sacked. On a listening socket Linux reports the accept queue's
        # length in `unacked` and its limit (the backlog) in `sacked`.
        _unacked, sacked = struct.unpack_from("II", info, 24)
        assert sacked == 77


# -- after the upgrade -----------------------------------------------------------


async def test_frames_other_than_hello_do_not_push_the_hello_deadline_back(
    make: Make,
) -> None:
    async with make(hello_timeout_seconds=0.5) as stack:
        loop = asyncio.get_running_loop()
        ws = await raw(stack)
        started = loop.time()
        refused = 0
        with pytest.raises(ConnectionClosed) as closed:
            for n in range(200):  # 20 s of frames: far past the deadline
                await send(ws, {"type": "open", "ref": f"r{n}"})
                assert (await expect(ws, "error"))["code"] == "hello_required"
                refused += 1
                await asyncio.sleep(0.1)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        assert refused >= 1 and loop.time() - started >= 0.5


async def test_a_stalled_reader_gets_a_4008_close_frame_at_the_byte_bound(make: Make) -> None:
    # Frames to spare (1000), bytes not (256 KiB): the byte bound is what trips.
    async with make(
        outbound_queue=1000,
        outbound_queue_bytes=256 * 1024,
        send_timeout_seconds=5.0,
        rate_per_second=1000.0,
    ) as stack:
        address = stack.http()
        await stack.add_edge()  # the writer's replica: its own queue is the default one
        writer = SyncClient(stack.url(1), device_id="writer", token=stack.token())
        session = await writer.open()
        stalled = await _stalled_in(stack, session["session_id"])

        async def joined() -> bool:
            return await metric(address, "syncbridge_edge_active_sessions") == 1

        await wait_until(joined)
        blob = "x" * 20_000
        for n in range(400):
            await writer.update({"blob": f"{n}{blob}"})
            if await metric(address, "syncbridge_edge_slow_consumer_disconnects_total") >= 1:
                break
        else:
            raise AssertionError("the stalled device was never found slow")
        # It reads again now: behind what was already in its socket, a real close frame.
        stream = await asyncio.wait_for(_read_until_closed(stalled), 10)
        stalled.close()
        assert _close_codes(b"\r\n\r\n" + stream) == [4008], stream[-64:]
        await writer.close()


async def _stalled_in(stack: Stack, session_id: str) -> socket.socket:
    """A device that opens `session_id`, then never reads (a tiny receive buffer)."""
    stalled = await _connect(stack, rcvbuf=4096)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(stalled, _upgrade(stack))
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(stalled, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    for message in (
        {"type": "hello", "device_id": "stalled"},
        {"type": "open", "session_id": session_id},
    ):
        await loop.sock_sendall(stalled, _text_frame(json.dumps(message).encode()))
    return stalled


def _close_codes(stream: bytes) -> list[int]:
    """Close codes of the server frames in `stream` (after the 101 response)."""
    _, _, stream = stream.partition(b"\r\n\r\n")
    codes, offset = [], 0
    while offset + 2 <= len(stream):
        opcode, length = stream[offset] & 0x0F, stream[offset + 1] & 0x7F
        offset += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", stream, offset)
            offset += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", stream, offset)
            offset += 8
        if offset + length > len(stream):
            break
        if opcode == 0x8 and length >= 2:
            codes.append(struct.unpack_from("!H", stream, offset)[0])
        offset += length
    return codes


async def test_a_close_on_a_socket_that_is_not_read_is_still_a_close_frame(make: Make) -> None:
    # Sanic's close() waits for the socket to drain; cut off by its timeout, the close
    # frame was lost and a peer reading again saw the stream end without one.
    async with make(outbound_queue=2000, send_timeout_seconds=5.0, rate_per_second=1000.0) as s:
        address = s.http()
        await s.add_edge()
        writer = SyncClient(s.url(1), device_id="writer", token=s.token())
        session = await writer.open()
        stalled = await _stalled_in(s, session["session_id"])

        async def joined() -> bool:
            return await metric(address, "syncbridge_edge_active_sessions") == 1

        await wait_until(joined)
        [connection] = s.edges[0].replica.connections
        blob = "x" * 50_000
        for n in range(400):
            await writer.update({"blob": f"{n}{blob}"})
            if connection._outbound.pending >= 5:
                break
        else:
            raise AssertionError("the stalled device never stopped taking frames")
        await connection.going_away()
        stream = await asyncio.wait_for(_read_until_closed(stalled), 10)
        stalled.close()
        assert _close_codes(b"\r\n\r\n" + stream) == [1001], stream[-64:]
        await writer.close()
