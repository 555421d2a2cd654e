"""The outbox relay: publishes committed changes to RabbitMQ, at least once.

One relay at a time is leader (a PostgreSQL advisory lock), so events leave
in commit order. Rows are deleted only after the broker confirmed them; a
crash in between re-publishes, and consumers drop duplicates by event id.

A row that cannot be published must not hold back every row behind it. When
a batch fails while the broker connection is still up (the broker or the
client library refused something in it, not an outage), its rows go one at a
time; the one that fails is retried `max_attempts` times with libs/backoff
and then moved to `outbox_dead` (counted, alerted on), and the rest flow.
Its user's devices still converge: the change is in the change log, and the
next event of that session shows them the gap, which they backfill from core.
A lost connection or a confirm timeout is an outage, never the row's fault:
it never counts as an attempt, and everything waits for the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aio_pika
import asyncpg

from libs.backoff.backoff import Backoff, BackoffPolicy
from libs.bus import messages
from libs.bus.amqp import declare_exchange
from libs.bus.topology import user_headers
from services.session_core import pg

log = logging.getLogger(__name__)

# Reconnects wait 0.2 s doubling to 5 s, the second half of each wait random: a
# broker restart does not bring every core replica's relay back in one instant.
RECONNECT_JITTER = 0.5

# Retries of one row the broker refused: 0.1 s doubling to 1 s, five tries in
# about 2 s, well inside the edges' 15 s position check.
POISON_RETRY = BackoffPolicy(base=0.1, cap=1.0, jitter=0.5)
MAX_ATTEMPTS = 5

_LEADER_LOCK = 0x5B0B0C5  # advisory lock key shared by every core replica

_SELECT = "SELECT id, event_id, routing_key, payload, user_id FROM outbox ORDER BY id LIMIT $1"
_DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
# Moves one row aside, in one statement: it is in exactly one of the tables.
_DEAD_LETTER = """
WITH gone AS (DELETE FROM outbox WHERE id = $1 RETURNING *)
INSERT INTO outbox_dead (id, event_id, routing_key, payload, user_id, created_at, attempts, reason)
SELECT id, event_id, routing_key, payload, user_id, created_at, $2, $3 FROM gone
ON CONFLICT (id) DO NOTHING
"""


class Outage(Exception):
    """The broker is unreachable or not confirming: wait for it, blame no row."""


class _Publisher:
    """One AMQP connection and a confirming channel, reopened after a channel-level refusal.

    A refused publish can leave the channel closed by the broker, or (a frame the
    client cannot encode) with its confirm numbering out of step with the
    broker's: after any refusal the channel is dropped and the next publish
    opens a fresh one.
    """

    def __init__(self, connection: aio_pika.abc.AbstractConnection) -> None:
        self._connection = connection
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def exchange(self) -> aio_pika.abc.AbstractExchange:
        if self._exchange is None or self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await declare_exchange(self._channel)
        return self._exchange

    async def reset(self) -> None:
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                await channel.close()

    @property
    def connected(self) -> bool:
        # aio-pika marks a connection closed only when it is closed from this side;
        # a broker that went away shows in the transport (None, or its own state).
        transport: Any = getattr(self._connection, "transport", None)
        return (
            not self._connection.is_closed
            and transport is not None
            and not transport.connection.is_closed
        )

    def classify(self, error: BaseException) -> BaseException:
        """`error` as an Outage when it says the broker is away, else as it is (the rows')."""
        if isinstance(error, Outage):
            return error
        if (
            not self.connected
            # TimeoutError is an OSError: a confirm that never came. A nack
            # (DeliveryError): RabbitMQ sends one only for an internal error of a queue.
            or isinstance(
                error,
                OSError
                | aio_pika.exceptions.AMQPConnectionError
                | aio_pika.exceptions.DeliveryError,
            )
        ):
            return Outage(repr(error))
        return error


class OutboxRelay:
    """Moves outbox rows to the `syncbridge.changes` topic exchange."""

    def __init__(
        self,
        dsn: str,
        amqp_url: str,
        *,
        batch: int = 500,
        poll_seconds: float = 1.0,
        on_published: Callable[[int], None] = lambda n: None,
        on_dead_lettered: Callable[[], None] = lambda: None,
        confirm_timeout: float = 15.0,
        max_attempts: int = MAX_ATTEMPTS,
        retry: BackoffPolicy = POISON_RETRY,
    ) -> None:
        self._confirm_timeout = confirm_timeout
        self._dsn = dsn
        self._amqp_url = amqp_url
        self._batch = batch
        self._poll = poll_seconds
        self._on_published = on_published
        self._on_dead_lettered = on_dead_lettered
        self._max_attempts = max_attempts
        self._retry = retry
        self._wake = asyncio.Event()
        self.published = 0
        self.dead_lettered = 0
        self.interruptions = 0  # runs ended by an outage or error, for tests and logs

    async def run(self, stop: asyncio.Event) -> None:
        """Relays until `stop` is set, reconnecting to either side after failures."""
        backoff = Backoff(base=0.2, cap=5.0, jitter=RECONNECT_JITTER)
        while not stop.is_set():
            try:
                await self._lead(stop)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Broker restarts surface as assorted aiormq errors (some are
                # RuntimeErrors); whatever it was, rows stay in the outbox.
                self.interruptions += 1
                log.warning("outbox relay interrupted, retrying", extra={"error": repr(error)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.next_delay())

    async def _lead(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_LOCK):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll)
                if stop.is_set():
                    return
            await conn.add_listener("syncbridge_outbox", lambda *_: self._wake.set())
            amqp = await aio_pika.connect(self._amqp_url, timeout=10)
            try:
                publisher = _Publisher(amqp)
                while not stop.is_set():
                    self._wake.clear()
                    if await self._drain(conn, publisher, stop) < self._batch:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), self._poll)
            finally:
                await amqp.close()
        finally:
            await conn.close()

    async def _drain(
        self, conn: asyncpg.Connection, publisher: _Publisher, stop: asyncio.Event
    ) -> int:
        """Publishes the oldest batch; how many rows left the outbox (published or set aside)."""
        rows = await conn.fetch(_SELECT, self._batch)
        if not rows:
            return 0
        try:
            await self._publish(publisher, rows)
        except Exception as error:
            failure = publisher.classify(error)
            if isinstance(failure, Outage):
                raise failure from error
            await publisher.reset()
            log.warning(
                "outbox batch refused; publishing its rows one by one",
                extra={"error": repr(error), "rows": len(rows)},
            )
            return await self._one_by_one(conn, publisher, rows, stop)
        await self._published(conn, [row["id"] for row in rows])
        return len(rows)

    async def _publish(self, publisher: _Publisher, rows: Sequence[asyncpg.Record]) -> None:
        for row in rows:  # before anything leaves: a batch refused here sends nothing twice
            _check(row)
        exchange = await publisher.exchange()
        # Publishes are pipelined on one channel: frames leave in order and
        # gather waits for every confirm before any row is deleted. A broker
        # that dies mid-batch may never confirm: the timeout turns that into a retry.
        async with asyncio.timeout(self._confirm_timeout):
            await asyncio.gather(
                *(
                    exchange.publish(
                        _message(row),
                        routing_key=row["routing_key"],
                        # No queue bound for the key: none of the user's
                        # devices is connected to any edge, so nobody is
                        # waiting for it (they resume from the change log).
                        mandatory=False,
                    )
                    for row in rows
                )
            )

    async def _one_by_one(
        self,
        conn: asyncpg.Connection,
        publisher: _Publisher,
        rows: Sequence[asyncpg.Record],
        stop: asyncio.Event,
    ) -> int:
        """Each row alone, in order: the refused one is retried, then set aside."""
        for row in rows:
            attempt = 0
            while True:
                try:
                    await self._publish(publisher, [row])
                except Exception as error:
                    failure = publisher.classify(error)
                    if isinstance(failure, Outage):
                        raise failure from error
                    await publisher.reset()
                    attempt += 1
                    if attempt >= self._max_attempts:
                        await self._set_aside(conn, row, attempt, error)
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._retry.delay(attempt - 1))
                    if stop.is_set():
                        return 0
                    continue
                await self._published(conn, [row["id"]])
                break
        return len(rows)

    async def _published(self, conn: asyncpg.Connection, ids: list[int]) -> None:
        await conn.execute(_DELETE, ids)
        self.published += len(ids)
        self._on_published(len(ids))

    async def _set_aside(
        self, conn: asyncpg.Connection, row: asyncpg.Record, attempts: int, error: BaseException
    ) -> None:
        reason = repr(error)[:1000]
        await conn.execute(_DEAD_LETTER, row["id"], attempts, reason)
        self.dead_lettered += 1
        self._on_dead_lettered()
        log.error(
            "outbox row set aside after repeated refusals",
            extra={
                "outbox_id": row["id"],
                "event_id": str(row["event_id"]),
                "attempts": attempts,
                "error": reason,
            },
        )


class Unpublishable(ValueError):
    """A row no broker can take as it is."""


# AMQP's short string: a routing key is at most 255 bytes.
_MAX_ROUTING_KEY_BYTES = 255


def _check(row: asyncpg.Record | Mapping[str, Any]) -> None:
    if len(row["routing_key"].encode()) > _MAX_ROUTING_KEY_BYTES:
        raise Unpublishable(f"routing key longer than {_MAX_ROUTING_KEY_BYTES} bytes")


def _message(row: asyncpg.Record) -> aio_pika.Message:
    user = row["user_id"]
    headers: dict[str, Any] = user_headers(user) if user else {}
    return aio_pika.Message(
        bytes(row["payload"]),
        message_id=str(row["event_id"]),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        content_type=messages.CHANGE_CONTENT_TYPE,
        type=messages.CHANGE_TYPE,
        headers=headers,
    )


async def backlog(pool: asyncpg.Pool) -> tuple[int, float]:
    """(rows waiting, age in seconds of the oldest): the relay's lag metrics."""
    row = pg.one(
        await pool.fetchrow(
            "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
            " FROM outbox"
        )
    )
    return int(row["n"]), float(row["age"])


async def dead_letters(pool: asyncpg.Pool) -> int:
    """Outbox rows set aside and not yet dealt with by an operator."""
    return int(await pool.fetchval("SELECT count(*) FROM outbox_dead"))
