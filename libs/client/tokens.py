"""The client's bearer token: kept between connects, refreshed before it expires.

A token source is either a fixed string (never refreshed: nothing new to ask
for) or an async callable returning a fresh token. The server says when the
token expires (`welcome` and each refresh's ack carry `token_expires_at`);
`TokenKeeper` sends a `refresh` `margin` seconds before that, again after
each success, and at once when the server warns `token_expiring`. A failed
refresh is logged, not raised: the server's close (4401) then makes the client
reconnect with a fresh token.

The one I/O is the `send` callable the client passes in (send `refresh` with
a token, return the ack); the clock is injectable, so tokens_test.py checks
these rules without a server. The timer is a task of the client's OwnedTasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from libs.tasks.owned import OwnedTasks

TokenSource = str | Callable[[], Awaitable[str]]
# Sends `{"type": "refresh", "token": token}` and returns the server's ack.
SendRefresh = Callable[[str], Awaitable[dict[str, Any]]]

log = logging.getLogger(__name__)


class TokenKeeper:
    """One client's token: what the next connect presents, and the refresh timer."""

    def __init__(
        self,
        source: TokenSource,
        *,
        send: SendRefresh,
        tasks: OwnedTasks,
        margin: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._send = send
        self._tasks = tasks
        self._margin = margin
        self._clock = clock
        self._token: str | None = None
        self.expires_at = 0.0
        self._timer: asyncio.Task[None] | None = None

    async def current(self) -> str:
        """The token to connect with: the last one, or a fresh one after `forget`."""
        if self._token is None:
            self._token = await self._fresh()
        return self._token

    def forget(self) -> None:
        """The server refused the token (expired): the next connect asks the source."""
        self._token = None

    def welcomed(self, expires_at: float) -> None:
        """A connection's `welcome` told when the token expires: (re)arm the timer."""
        self.expires_at = expires_at
        self._schedule()

    def refresh_delay(self) -> float | None:
        """Seconds until the next refresh is due; None when none is (fixed token, no expiry)."""
        if isinstance(self._source, str) or not self.expires_at:
            return None
        return max(0.0, self.expires_at - self._margin - self._clock())

    async def refresh(self, token: str | None = None) -> None:
        """Sends `token` (or a fresh one from the source); raises what the send raises."""
        self._token = token or await self._fresh()
        answer = await self._send(self._token)
        self.expires_at = float(answer.get("token_expires_at", 0))

    def refresh_soon(self) -> None:
        """The server warned `token_expiring`: refresh now, in the background."""
        self._tasks.spawn(self._refresh_quietly(), name="refresh")

    async def _fresh(self) -> str:
        if isinstance(self._source, str):
            return self._source
        return await self._source()

    def _schedule(self) -> None:
        # The timer reschedules itself after a refresh: it must not cancel itself.
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        delay = self.refresh_delay()
        if delay is None:
            return
        self._timer = self._tasks.spawn(self._refresh_after(delay), name="refresh-timer")

    async def _refresh_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._refresh_quietly()

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as error:
            log.info("token refresh failed", extra={"error": repr(error)})
            return
        self._schedule()
