"""The loopback proxy passes bytes, delays them by what it is told, and cuts
connections when blocked (real sockets, an echo server behind it)."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitoring import netfault


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def round_trip(port: int, payload: bytes = b"ping") -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection(netfault.HOST, port)
    started = time.monotonic()
    writer.write(payload)
    answer = await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    elapsed = time.monotonic() - started
    writer.close()
    return answer, elapsed


async def scenario() -> dict[str, float]:
    server = await asyncio.start_server(echo, netfault.HOST, 0)
    proxy = netfault.Proxy(("127.0.0.1", int(server.sockets[0].getsockname()[1])))
    port = await proxy.start()
    seen: dict[str, float] = {}
    answer, seen["direct"] = await round_trip(port)
    assert answer == b"ping"
    proxy.delay = 0.3
    answer, seen["delayed"] = await round_trip(port, b"x" * 200_000)
    assert answer == b"x" * 200_000
    proxy.delay = 0.0
    # blocked: a connection open before is cut, a new one is closed unanswered
    reader, writer = await asyncio.open_connection(netfault.HOST, port)
    writer.write(b"up")
    assert await asyncio.wait_for(reader.readexactly(2), 5) == b"up"
    proxy.block()
    assert await asyncio.wait_for(reader.read(1), 5) == b""
    writer.close()
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await round_trip(port)
    proxy.unblock()
    answer, _ = await round_trip(port)
    assert answer == b"ping"
    await proxy.close()
    server.close()
    return seen


def test_delays_and_blocks_as_told() -> None:
    seen = asyncio.run(scenario())
    assert seen["direct"] < 0.3
    assert 0.6 <= seen["delayed"] < 3.0  # both directions held 0.3 s
