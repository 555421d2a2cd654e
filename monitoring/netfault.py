"""A TCP proxy on loopback whose faults a test controls: the network between
two real processes (the edge and core in the live monitoring test) made slow
or cut, while both keep running.

- `delay`: every chunk, in either direction, is passed on `delay` seconds after
  it arrived (in order), so a request/response round trip takes 2 x delay more.
- `block()`: open connections are reset and new ones closed at once: the client
  sees the peer unreachable (gRPC: UNAVAILABLE) until `unblock()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CHUNK = 65536


@dataclass
class Proxy:
    """Forwards 127.0.0.1:<port> to `target` (host, port). Runs on one event loop."""

    target: tuple[str, int]
    delay: float = 0.0
    blocked: bool = False
    port: int = 0
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_all()

    def block(self) -> None:
        self.blocked = True
        self._drop_all()

    def unblock(self) -> None:
        self.blocked = False

    def _drop_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self.blocked:  # blocked while this connection was being made
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in (writer, up_writer):
                self._open.discard(end)
                end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copies reader -> writer, each chunk held until `delay` after it came."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.transport.abort()  # the other side closed: so does this one
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((loop.time() + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender
