"""One device's stream of one session: every change once, in version order, never a silent gap.

Changes reach a replica from RabbitMQ at least once and, after a reconnect or
a queue overflow, possibly with holes. `Delivery` runs libs/ordering's `Sequencer`:
a duplicate is dropped; a hole is backfilled from core (ChangesSince) before
anything after it is sent; a newer epoch, or a hole core can no longer fill,
becomes a snapshot flagged `recovered: false`. While the device's starting
position is being read, or a backfill runs, arriving changes are stashed
(bounded) and replayed through the sequencer afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from libs.core_client.client import CoreError
from libs.ordering.resume import Deliver, Duplicate, Sequencer
from syncbridge.session.v1 import session_pb2

log = logging.getLogger(__name__)
R = TypeVar("R")

FetchSince = Callable[[int, int], Awaitable[session_pb2.ChangesSinceResponse]]
FetchSnapshot = Callable[[], Awaitable[session_pb2.Session]]
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


def _create_task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro)


class Delivery:
    """Orders one session's changes for one connection; emits are synchronous."""

    def __init__(
        self,
        session_id: str,
        *,
        emit_change: Callable[[session_pb2.Change], None],
        emit_snapshot: Callable[[session_pb2.Session, str], None],
        fetch_since: FetchSince,
        fetch_snapshot: FetchSnapshot,
        on_failure: Callable[[CoreError], None],
        on_duplicate: Callable[[], None] = lambda: None,
        emit_backfilled: Callable[[session_pb2.Change], None] | None = None,
        max_stash: int = 1024,
        max_rounds: int = 3,
        retry_seconds: float = 0.5,
        spawn: Spawn = _create_task,
    ) -> None:
        self.session_id = session_id
        self._emit_change = emit_change
        # Changes read from core (resume replay, backfill) rather than live from the
        # bus: the same frames, told apart so fan-out latency counts live ones only.
        self._emit_backfilled = emit_backfilled or emit_change
        self._emit_snapshot = emit_snapshot
        self._fetch_since = fetch_since
        self._fetch_snapshot = fetch_snapshot
        self._on_duplicate = on_duplicate
        self._on_failure = on_failure
        self._max_stash = max_stash
        self._max_rounds = max_rounds
        self._retry_seconds = retry_seconds
        # The connection passes its watched tasks: a backfill failing with anything but a
        # CoreError (on_failure's) then closes the connection instead of stalling it.
        self._spawn = spawn
        self._seq: Sequencer | None = None
        self._stash: dict[tuple[int, int], session_pb2.Change] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._overflowed = False

    @property
    def position(self) -> tuple[int, int] | None:
        """(epoch, version) last delivered; None until `start`."""
        return None if self._seq is None else (self._seq.epoch, self._seq.version)

    @property
    def syncing(self) -> bool:
        return self._seq is None or self._task is not None

    def start(self, epoch: int, version: int, replay: Sequence[session_pb2.Change] = ()) -> int:
        """The device holds (epoch, version): deliver `replay` (what it missed, read from
        core), then stashed changes, then live ones. Returns how many of `replay` were sent."""
        self._seq = Sequencer(epoch, version)
        sent = 0
        for change in replay:
            if isinstance(self._seq.offer(change.epoch, change.version), Deliver):
                self._emit_backfilled(change)
                sent += 1
        if not self._replay_stash():
            self._begin_backfill()
        return sent

    def offer(self, change: session_pb2.Change) -> None:
        """A change from the bus (any order, maybe repeated)."""
        if self._closed:
            return
        if self.syncing:
            self._stash_add(change)
            return
        self._offer(change, may_backfill=True)

    def resync(self) -> None:
        """Check with core for anything missed (after the bus reconnected)."""
        if self._seq is not None and self._task is None and not self._closed:
            self._begin_backfill()

    def check(self, epoch: int, version: int) -> bool:
        """Core says the session is at (epoch, version): if this stream is behind and no
        backfill runs, fetch what it missed (events lost with no later change to reveal
        the hole). True if a backfill was started."""
        position = self.position
        if position is None or self._task is not None or self._closed:
            return False
        if (epoch, version) <= position:
            return False
        self._begin_backfill()
        return True

    def close(self) -> None:
        self._closed = True
        self._stash.clear()
        if self._task is not None:
            self._task.cancel()

    async def wait_idle(self) -> None:
        """Until no backfill runs (tests, drain)."""
        while self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    # -- internals ----------------------------------------------------------

    def _stash_add(self, change: session_pb2.Change) -> None:
        # Overflow drops, and is remembered: what was dropped is fetched from core.
        if len(self._stash) < self._max_stash:
            self._stash[(change.epoch, change.version)] = change
        else:
            self._overflowed = True

    def _offer(self, change: session_pb2.Change, *, may_backfill: bool) -> bool:
        """True if the stream can go on; False if a backfill is needed first."""
        assert self._seq is not None
        verdict = self._seq.offer(change.epoch, change.version)
        if isinstance(verdict, Deliver):
            self._emit_change(change)
            return True
        if isinstance(verdict, Duplicate):
            self._on_duplicate()
            return True
        self._stash_add(change)  # Gap or Resync: keep it for after the backfill
        if may_backfill:
            self._begin_backfill()
        return False

    def _replay_stash(self) -> bool:
        """Offers stashed changes in order; False if a hole remains (or may: overflow)."""
        for key in sorted(self._stash):
            change = self._stash.pop(key)
            if not self._offer(change, may_backfill=False):
                return False
        if self._overflowed:
            self._overflowed = False
            return False
        return True

    def _begin_backfill(self) -> None:
        self._task = self._spawn(self._backfill())

    async def _backfill(self) -> None:
        try:
            for _ in range(self._max_rounds):
                await self._fill_once()
                if self._replay_stash():
                    return
            # Still holes after several rounds: the cheapest sure thing is a snapshot.
            session = await self._retrying(self._fetch_snapshot)
            self._take_snapshot(session, "gap")
            self._replay_stash()
        except CoreError as error:
            # e.g. the session ended or expired meanwhile: the connection decides.
            self._on_failure(error)
        finally:
            self._task = None

    async def _fill_once(self) -> None:
        assert self._seq is not None
        epoch, version = self._seq.epoch, self._seq.version
        response = await self._retrying(lambda: self._fetch_since(epoch, version))
        if response.recovered:
            for change in response.changes:
                verdict = self._seq.offer(change.epoch, change.version)
                if isinstance(verdict, Deliver):
                    self._emit_backfilled(change)
        else:
            self._take_snapshot(response.snapshot, "history_unavailable")

    def _take_snapshot(self, session: session_pb2.Session, reason: str) -> None:
        assert self._seq is not None
        self._seq.reset(session.epoch, session.version)
        self._emit_snapshot(session, reason)

    async def _retrying(self, call: Callable[[], Awaitable[R]]) -> R:
        delay = self._retry_seconds
        while True:
            try:
                return await call()
            except CoreError as error:
                if error.code != "unavailable":
                    raise
                log.warning("backfill: core unavailable, retrying", extra={"delay": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
