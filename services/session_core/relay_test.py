"""The relay against real PostgreSQL and RabbitMQ: a row that can never be published is
set aside after bounded retries while the rows behind it flow; an outage sets nothing aside."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aio_pika
import asyncpg
import pytest
import pytest_asyncio

from libs.backoff.backoff import BackoffPolicy
from libs.bus.amqp import declare_exchange
from libs.bus.topology import USER_HEADER, routing_key
from services.session_core.migrate import migrate
from services.session_core.relay import OutboxRelay

if TYPE_CHECKING:
    from libs.testing.fixtures import ServerControl

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

# What edges do when an event does not arrive: check their position with core
# every 15 s (SYNCBRIDGE_EDGE_POSITION_CHECK_SECONDS). Live delivery has to beat it.
POSITION_CHECK_SECONDS = 15.0
# The key the relay of issue #15 wrote for a 126-character `sub`: over AMQP's 255 bytes.
POISON_KEY = "user." + "ab" * 126

FAST_RETRY = BackoffPolicy(base=0.05, cap=0.2, jitter=0.5)


@pytest_asyncio.fixture
async def pg(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn)
    await migrate(conn)
    try:
        yield conn
    finally:
        await conn.close()


async def insert(conn: asyncpg.Connection, user: str, body: bytes, key: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO outbox (event_id, routing_key, payload, user_id) VALUES ($1, $2, $3, $4)",
        uuid.uuid4(),
        key or routing_key(user),
        body,
        user,
    )
    await conn.execute("SELECT pg_notify('syncbridge_outbox', '')")


@contextlib.asynccontextmanager
async def listening(amqp_url: str, *users: str) -> AsyncIterator[Any]:
    """A queue bound to `users`' keys, bound before anything is published."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await declare_exchange(channel)
        queue = await channel.declare_queue(exclusive=True)
        for user in users:
            await queue.bind(exchange, routing_key=routing_key(user))
        yield queue


async def receive(queue: Any, count: int, within: float) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(within):
        while len(got) < count:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.02)
                continue
            await message.ack()
            got.append(message)
    return got


async def wait_for(condition: Any, within: float = 30) -> None:
    """Polls `condition` (the relay's counters have no event to wait on)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def receive_body(queue: Any, body: bytes, within: float) -> Any:
    """The first message with `body`; duplicates of earlier ones (at least once) are skipped."""
    async with asyncio.timeout(within):
        while True:
            (message,) = await receive(queue, 1, within)
            if message.body == body:
                return message


@contextlib.asynccontextmanager
async def relaying(relay: OutboxRelay) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_a_poison_row_is_set_aside_and_other_users_changes_still_arrive(
    pg: asyncpg.Connection, pg_dsn: str, amqp_url: str
) -> None:
    dead: list[int] = []
    relay = OutboxRelay(
        pg_dsn,
        amqp_url,
        poll_seconds=0.2,
        retry=FAST_RETRY,
        on_dead_lettered=lambda: dead.append(1),
    )
    async with listening(amqp_url, "bob", "carol") as queue, relaying(relay):
        await insert(pg, "bob", b"warm-up")
        assert [m.body for m in await receive(queue, 1, 10)] == [b"warm-up"]
        # The poison row first, then other users' changes queued behind it.
        await insert(pg, "mallory", b"poison", key=POISON_KEY)
        started = time.monotonic()
        for n in range(5):
            await insert(pg, "bob" if n % 2 else "carol", f"after-{n}".encode())
        arrived = await receive(queue, 5, POSITION_CHECK_SECONDS)
        took = time.monotonic() - started
        await wait_for(lambda: relay.dead_lettered == 1)
        # Once it is aside, nothing of it remains in the way.
        await insert(pg, "carol", b"later")
        later = await receive_body(queue, b"later", POSITION_CHECK_SECONDS)
    assert took < POSITION_CHECK_SECONDS
    assert later.headers[USER_HEADER] == "carol"
    assert [m.body for m in arrived] == [f"after-{n}".encode() for n in range(5)]  # in order
    assert [m.headers[USER_HEADER] for m in arrived] == ["carol", "bob"] * 2 + ["carol"]
    assert relay.interruptions == 0  # a refused row is no outage
    assert dead == [1] and relay.dead_lettered == 1
    assert await pg.fetchval("SELECT count(*) FROM outbox") == 0
    row = await pg.fetchrow("SELECT * FROM outbox_dead")
    assert row is not None
    assert (row["routing_key"], bytes(row["payload"]), row["user_id"]) == (
        POISON_KEY,
        b"poison",
        "mallory",
    )
    assert row["attempts"] == 5  # bounded retries, then set aside
    assert "255" in row["reason"]


async def test_a_broker_outage_sets_nothing_aside(
    pg: asyncpg.Connection, pg_dsn: str, amqp_url: str, servers: ServerControl
) -> None:
    dead: list[int] = []
    relay = OutboxRelay(
        pg_dsn,
        amqp_url,
        poll_seconds=0.2,
        retry=FAST_RETRY,
        confirm_timeout=2.0,
        on_dead_lettered=lambda: dead.append(1),
    )
    async with relaying(relay):
        async with listening(amqp_url, "bob") as queue:
            await insert(pg, "bob", b"before")
            await receive(queue, 1, 10)
        assert relay.interruptions == 0
        servers.stop("rabbitmq")
        try:
            for n in range(3):
                await insert(pg, "bob", f"during-{n}".encode())
            # The connected relay found the broker gone when it published them, then
            # failed to reconnect: an outage, twice over, and no row was blamed.
            await wait_for(lambda: relay.interruptions >= 2)
            assert await pg.fetchval("SELECT count(*) FROM outbox") == 3
        finally:
            servers.start("rabbitmq")
        # Back: the rows of the outage go out (the test's queue died with the broker),
        # then a new one reaches a new queue.
        await wait_for(lambda: relay.published == 4)
        async with listening(amqp_url, "bob") as queue:
            await insert(pg, "bob", b"after")
            bodies = [m.body for m in await receive(queue, 1, 30)]
    assert bodies == [b"after"]
    assert dead == [] and relay.dead_lettered == 0
    assert await pg.fetchval("SELECT count(*) FROM outbox_dead") == 0
    assert await pg.fetchval("SELECT count(*) FROM outbox") == 0
