"""A connection's outbound side: a bounded queue drained by one writer task.

Nothing else writes to the socket, so a peer that stops reading blocks only
its own writer. Sanic's `send()` waits for the transport to drain and can
wait forever on such a peer; every send here has a timeout. The queue is
bounded twice: in frames and in bytes (a few snapshots of a large state
weigh more than hundreds of small changes). A full queue or a timed-out
send makes the peer a slow consumer: `on_slow` is called once, the queue is
emptied (its memory released) and the writer stops.

A send that fails while the socket is still open (a frame the socket layer
cannot encode, a bug) is not a slow peer and not a closed socket: the
writer stops and raises, so the task's owner (the connection's watched
`OwnedTasks`) closes the connection with 1011 instead of leaving it open
with nobody writing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol


class Sender(Protocol):
    async def send(self, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One queued text frame; `label` names its type for metrics, `committed_at` (epoch
    seconds, 0 if none) times a change from commit to send."""

    text: str
    label: str
    committed_at: float = 0.0


def utf8_size(text: str) -> int:
    """Bytes of `text` on the wire (ASCII, the usual case, without encoding it)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


def _create_task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro)


class Outbound:
    """Bounded queue plus writer; `push` never blocks."""

    def __init__(
        self,
        sender: Sender,
        *,
        capacity: int,
        max_bytes: int,
        send_timeout: float,
        on_slow: Callable[[str], None],
        on_sent: Callable[[Frame], None] = lambda frame: None,
        spawn: Spawn = _create_task,
        gone: Callable[[], bool] = lambda: False,
    ) -> None:
        self._sender = sender
        self._queue: asyncio.Queue[tuple[Frame, int]] = asyncio.Queue(capacity)
        self._max_bytes = max_bytes
        self._bytes = 0
        self._send_timeout = send_timeout
        self._on_slow = on_slow
        self._on_sent = on_sent
        self._spawn = spawn
        # True once the socket is closing or closed: a failed send then is the end of
        # the connection (the reader side cleans up), not a fault of the writer.
        self._gone = gone
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._busy = False
        self.slow = False

    def start(self) -> None:
        self._task = self._spawn(self._write())

    def push(self, frame: Frame) -> bool:
        """Queues `frame`; False if it was dropped (stopped, or full: then the peer is slow).

        Full means `capacity` frames, or `max_bytes` with this frame added to a
        non-empty queue (a single frame larger than the bound still goes alone).
        """
        if self._stopped:
            return False
        size = utf8_size(frame.text)
        if self._bytes and self._bytes + size > self._max_bytes:
            self._give_up("outbound queue full (bytes)")
            return False
        try:
            self._queue.put_nowait((frame, size))
        except asyncio.QueueFull:
            self._give_up("outbound queue full")
            return False
        self._bytes += size
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    async def _write(self) -> None:
        while True:
            frame, size = await self._queue.get()
            self._bytes -= size
            self._busy = True
            try:
                await asyncio.wait_for(self._sender.send(frame.text), self._send_timeout)
            except TimeoutError:
                self._give_up("send timed out")
                return
            except Exception:
                self.stop()
                if self._gone():
                    return  # the socket is gone: the reader side notices and cleans up
                raise
            self._busy = False
            self._on_sent(frame)

    def _give_up(self, reason: str) -> None:
        if self.slow or self._stopped:
            return
        self.slow = True
        self.stop()
        self._on_slow(reason)

    async def flush(self, within: float) -> bool:
        """Waits until every queued frame was sent; False on timeout or if stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (self._queue.qsize() or self._busy) and not self._stopped:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return not self._stopped

    def stop(self) -> None:
        """Stops the writer and drops whatever is queued."""
        self._stopped = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._bytes = 0
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    async def wait_stopped(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
