"""The benchmark's ceiling: a minimal relay on the bare `websockets` library.

A device's first frame is `join <user>`; every later frame is copied to the
other devices of that user and answered with `ack` to the sender. No auth,
no parsing, no ordering, no storage: what a WebSocket relay in Python costs
at least, to compare ws-edge with (services/ws_edge/bench.py).

    broadcast_baseline <port-file>
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import defaultdict
from pathlib import Path

from websockets.asyncio.server import ServerConnection, broadcast, serve

_devices: defaultdict[str, set[ServerConnection]] = defaultdict(set)


async def relay(ws: ServerConnection) -> None:
    join = await ws.recv()
    user = str(join).removeprefix("join ")
    peers = _devices[user]
    peers.add(ws)
    try:
        async for message in ws:
            broadcast([peer for peer in peers if peer is not ws], message)
            await ws.send("ack")
    finally:
        peers.discard(ws)


def _write(path: str, port: int) -> None:
    Path(path).write_text(str(port))


async def main(port_file: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(relay, "127.0.0.1", 0, ping_interval=30, compression=None) as server:
        _write(port_file, next(iter(server.sockets)).getsockname()[1])
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
