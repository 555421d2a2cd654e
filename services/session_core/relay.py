"""The outbox relay: publishes committed changes to RabbitMQ, at least once.

One relay at a time is leader (a PostgreSQL advisory lock), so events leave
in commit order. Rows are deleted only after the broker confirmed them; a
crash in between re-publishes, and consumers drop duplicates by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aio_pika
import asyncpg

from libs.backoff.backoff import Backoff
from libs.bus import messages
from libs.bus.amqp import declare_exchange
from services.session_core import pg

log = logging.getLogger(__name__)

# Reconnects wait 0.2 s doubling to 5 s, the second half of each wait random: a
# broker restart does not bring every core replica's relay back in one instant.
RECONNECT_JITTER = 0.5

_LEADER_LOCK = 0x5B0B0C5  # advisory lock key shared by every core replica


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
        confirm_timeout: float = 15.0,
    ) -> None:
        self._confirm_timeout = confirm_timeout
        self._dsn = dsn
        self._amqp_url = amqp_url
        self._batch = batch
        self._poll = poll_seconds
        self._on_published = on_published
        self._wake = asyncio.Event()
        self.published = 0

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
                channel = await amqp.channel(publisher_confirms=True)
                exchange = await declare_exchange(channel)
                while not stop.is_set():
                    self._wake.clear()
                    if await self._drain(conn, exchange) < self._batch:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), self._poll)
            finally:
                await amqp.close()
        finally:
            await conn.close()

    async def _drain(
        self, conn: asyncpg.Connection, exchange: aio_pika.abc.AbstractExchange
    ) -> int:
        rows = await conn.fetch(
            "SELECT id, event_id, routing_key, payload FROM outbox ORDER BY id LIMIT $1",
            self._batch,
        )
        if not rows:
            return 0
        # Publishes are pipelined on one channel: frames leave in order and
        # gather waits for every confirm before any row is deleted. A broker
        # that dies mid-batch may never confirm: the timeout turns that into a retry.
        async with asyncio.timeout(self._confirm_timeout):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            bytes(row["payload"]),
                            message_id=str(row["event_id"]),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            content_type=messages.CHANGE_CONTENT_TYPE,
                            type=messages.CHANGE_TYPE,
                        ),
                        routing_key=row["routing_key"],
                        # No queue bound for the key: none of the user's
                        # devices is connected to any edge, so nobody is
                        # waiting for it (they resume from the change log).
                        mandatory=False,
                    )
                    for row in rows
                )
            )
        await conn.execute(
            "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
        )
        self.published += len(rows)
        self._on_published(len(rows))
        return len(rows)


async def backlog(pool: asyncpg.Pool) -> tuple[int, float]:
    """(rows waiting, age in seconds of the oldest): the relay's lag metrics."""
    row = pg.one(
        await pool.fetchrow(
            "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
            " FROM outbox"
        )
    )
    return int(row["n"]), float(row["age"])
