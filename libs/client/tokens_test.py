"""The client's token: cached, forgotten, refreshed before expiry or when warned; no server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from libs.client.tokens import TokenKeeper, TokenSource
from libs.tasks.owned import OwnedTasks

pytestmark = pytest.mark.asyncio

NOW = 1_000_000.0
log = logging.getLogger(__name__)


class FakeServer:
    """Records each refresh it is sent and answers with the next expiry (or raises)."""

    def __init__(self, expires_at: float = NOW + 3600, error: Exception | None = None) -> None:
        self.sent: list[str] = []
        self.expires_at = expires_at
        self.error = error
        self.got = asyncio.Event()

    async def send(self, token: str) -> dict[str, Any]:
        self.sent.append(token)
        self.got.set()
        if self.error is not None:
            raise self.error
        return {"type": "ack", "of": "refresh", "token_expires_at": self.expires_at}


def counting_source(prefix: str = "t") -> tuple[Callable[[], Awaitable[str]], list[str]]:
    minted: list[str] = []

    async def source() -> str:
        minted.append(f"{prefix}{len(minted) + 1}")
        return minted[-1]

    return source, minted


def running(tasks: OwnedTasks) -> list[asyncio.Task[Any]]:
    return [task for task in tasks if not task.done()]


def keeper(source: TokenSource, server: FakeServer, tasks: OwnedTasks) -> TokenKeeper:
    return TokenKeeper(source, send=server.send, tasks=tasks, margin=30.0, clock=lambda: NOW)


async def test_the_token_is_kept_until_forgotten() -> None:
    source, minted = counting_source()
    tokens = keeper(source, FakeServer(), OwnedTasks(log, "test"))
    assert await tokens.current() == "t1"
    assert await tokens.current() == "t1"
    tokens.forget()  # the server said the token expired
    assert await tokens.current() == "t2"
    assert minted == ["t1", "t2"]


async def test_refresh_is_due_margin_seconds_before_expiry() -> None:
    source, _ = counting_source()
    tokens = keeper(source, FakeServer(), OwnedTasks(log, "test"))
    assert tokens.refresh_delay() is None  # no expiry known yet
    tokens.expires_at = NOW + 100
    assert tokens.refresh_delay() == 70.0
    tokens.expires_at = NOW + 10  # already inside the margin: at once
    assert tokens.refresh_delay() == 0.0


async def test_a_fixed_token_is_never_refreshed() -> None:
    server = FakeServer()
    tasks = OwnedTasks(log, "test")
    tokens = keeper("fixed", server, tasks)
    tokens.welcomed(NOW + 10)
    assert tokens.refresh_delay() is None
    assert running(tasks) == []
    assert await tokens.current() == "fixed"


async def test_a_due_refresh_sends_a_fresh_token_and_rearms() -> None:
    source, _ = counting_source()
    server = FakeServer(expires_at=NOW + 7200)
    tasks = OwnedTasks(log, "test")
    tokens = keeper(source, server, tasks)
    assert await tokens.current() == "t1"
    tokens.welcomed(NOW + 10)  # due at once
    await asyncio.wait_for(server.got.wait(), 10)
    assert server.sent == ["t2"]
    assert await tokens.current() == "t2"  # a reconnect presents the refreshed one
    await asyncio.sleep(0)  # the timer task rearms after the ack
    assert tokens.expires_at == NOW + 7200
    assert tokens.refresh_delay() == 7200 - 30
    live = running(tasks)
    assert [task.get_name() for task in live] == ["refresh-timer"]  # the next one, owned
    await tasks.aclose()


async def test_a_new_welcome_replaces_the_pending_timer() -> None:
    source, _ = counting_source()
    tasks = OwnedTasks(log, "test")
    tokens = keeper(source, FakeServer(), tasks)
    tokens.welcomed(NOW + 3600)
    first = next(iter(tasks))
    tokens.welcomed(NOW + 7200)
    await asyncio.sleep(0)
    assert first.cancelled()
    assert len(running(tasks)) == 1
    await tasks.aclose()


async def test_a_warning_refreshes_now_and_a_failure_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, _ = counting_source()
    server = FakeServer(error=ConnectionError("connection lost"))
    tasks = OwnedTasks(log, "test")
    tokens = keeper(source, server, tasks)
    with caplog.at_level(logging.INFO, logger="libs.client.tokens"):
        tokens.refresh_soon()
        await tasks.wait(10)
    assert server.sent == ["t1"]
    assert any(record.message == "token refresh failed" for record in caplog.records)
    assert not any(record.message == "background task failed" for record in caplog.records)
    assert running(tasks) == []  # a failed refresh arms no timer: the server's close decides


async def test_an_explicit_token_is_sent_as_given() -> None:
    source, minted = counting_source()
    server = FakeServer(expires_at=NOW + 60)
    tokens = keeper(source, server, OwnedTasks(log, "test"))
    await tokens.refresh("from-the-app")
    assert server.sent == ["from-the-app"] and minted == []
    assert tokens.expires_at == NOW + 60
    assert await tokens.current() == "from-the-app"
