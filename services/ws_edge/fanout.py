"""This replica's RabbitMQ side: one queue, bound per connected user, and presence events.

core's relay publishes every committed change to the `syncbridge.changes`
topic exchange with routing key `user.<digest of the user id>` (libs/bus,
libs/identity: any user id gives a short key). Each replica declares
one exclusive queue of its own and binds it for a user when the first of
their devices connects here, unbinds when the last leaves (BindingCounts),
so it receives exactly its users' events. Delivery is at least once and, after
a broker reconnect, possibly with holes: consumers order, dedupe and
backfill (delivery.py), and `on_reconnect` asks them to check with core.

Presence is not a change (it has no version): edges publish it to the same
exchange and key, typed `syncbridge.edge.presence.v1`, so every replica
serving the user tells its devices. Exchange, keys and both message kinds are
the bus contract in libs/bus, shared with core's relay.

An event that cannot be decoded or handed on (poison) must not stall the
queue: it is set aside, a copy published to the `syncbridge.dead` exchange
with the reason and this replica in its headers, then acked; `on_lost` counts
it and resyncs the user its `x-syncbridge-user` header names (the routing key
is a digest and names nobody readable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from libs.bus import messages
from libs.bus.amqp import declare_dead_letter, declare_exchange
from libs.bus.topology import (
    EDGE_HEADER,
    REASON_HEADER,
    routing_key,
    user_headers,
    user_of_headers,
)
from services.ws_edge.bindings import Action, BindingCounts
from syncbridge.session.v1 import session_pb2

log = logging.getLogger(__name__)


class Fanout:
    """The replica's queue, its bindings, and the consumer that hands events on."""

    def __init__(
        self,
        amqp_url: str,
        edge_id: str,
        *,
        queue_max_length: int,
        on_change: Callable[[session_pb2.Change], object],
        on_presence: Callable[[str, str, list[dict[str, Any]]], None],
        on_reconnect: Callable[[], None],
        on_lost: Callable[[str | None], None] | None = None,
        prefetch: int = 512,
    ) -> None:
        self._url = amqp_url
        self.queue_name = f"syncbridge.edge.{edge_id}"
        self._max_length = queue_max_length
        self._on_change = on_change
        self._on_presence = on_presence
        self._on_reconnect = on_reconnect
        self._on_lost = on_lost or (lambda _user: on_reconnect())
        self._prefetch = prefetch
        self._counts = BindingCounts()
        self._locks: dict[str, list[Any]] = {}  # user -> [lock, holders and waiters]
        self._connection: Any = None
        self._exchange: Any = None
        self._dead: Any = None
        self._edge_id = edge_id
        self._queue: Any = None
        self.received = 0

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url, timeout=10)
        self._connection.reconnect_callbacks.add(self._reconnected)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        # Same declaration as core's relay, so whichever starts first creates it.
        self._exchange = await declare_exchange(channel)
        self._dead = await declare_dead_letter(channel)
        self._queue = await channel.declare_queue(
            self.queue_name,
            exclusive=True,
            auto_delete=True,
            arguments={"x-max-length": self._max_length, "x-overflow": "drop-head"},
        )
        await self._queue.consume(self._consume)

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _reconnected(self, *_: Any) -> None:
        log.warning("RabbitMQ reconnected: backfilling every open session")
        self._on_reconnect()

    @contextlib.asynccontextmanager
    async def _locked(self, user: str) -> AsyncIterator[None]:
        """The per-user lock, dropped only once nobody holds it or waits for it.

        Dropping it while a waiter is queued would let a later `subscribe` make a
        fresh lock and return before the waiter's bind exists.
        """
        entry = self._locks.get(user)
        if entry is None:
            entry = self._locks[user] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0 and self._counts.count(user) == 0:
                self._locks.pop(user, None)

    async def subscribe(self, user: str) -> None:
        """A device of `user` connected here; returns once events for `user` arrive."""
        async with self._locked(user):
            if self._counts.acquire(user) is Action.BIND:
                try:
                    await self._queue.bind(self._exchange, routing_key=routing_key(user))
                except BaseException:
                    self._counts.release(user)
                    raise

    async def unsubscribe(self, user: str) -> None:
        """A device of `user` left; the last one's leaving unbinds."""
        async with self._locked(user):
            if self._counts.release(user) is Action.UNBIND:
                try:
                    await self._queue.unbind(self._exchange, routing_key=routing_key(user))
                except Exception as error:  # a broken channel unbinds by itself on restore
                    log.warning("unbind failed", extra={"error": repr(error)})

    def bound_users(self) -> list[str]:
        return self._counts.users()

    async def publish_presence(
        self, user: str, session_id: str, devices: list[dict[str, Any]]
    ) -> None:
        presence = messages.Presence(
            user,
            session_id,
            tuple(messages.DeviceOnline(d["device_id"], d["online"]) for d in devices),
        )
        await self._exchange.publish(
            aio_pika.Message(
                messages.encode_presence(presence),
                content_type=messages.PRESENCE_CONTENT_TYPE,
                type=messages.PRESENCE_TYPE,
                headers=user_headers(user),
            ),
            routing_key=routing_key(user),
        )

    async def _consume(self, message: AbstractIncomingMessage) -> None:
        self.received += 1
        try:
            if message.type == messages.PRESENCE_TYPE:
                presence = messages.decode_presence(message.body)
                self._on_presence(presence.user_id, presence.session_id, presence.devices_json())
            else:
                self._on_change(messages.decode_change(message.body))
        except Exception as error:
            # A poison message must not stall the queue; core's log still has the change,
            # and the devices it was for check with core now rather than at their next one.
            log.exception("undeliverable event set aside", extra={"type": message.type})
            await self._set_aside(message, error)
            self._on_lost(user_of_headers(message.headers))
        await message.ack()

    async def _set_aside(self, message: AbstractIncomingMessage, error: Exception) -> None:
        """A copy of `message` on the dead-letter exchange, saying why and where."""
        headers = {
            **(message.headers or {}),
            REASON_HEADER: repr(error)[:1000],
            EDGE_HEADER: self._edge_id,
        }
        try:
            await self._dead.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type,
                    type=message.type,
                    message_id=message.message_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=message.routing_key or "",
            )
        except Exception as failure:
            # The copy is for an operator; the event itself is in core's change log,
            # and holding the queue for the copy would stall every user.
            log.warning("dead-letter copy failed", extra={"error": repr(failure)})
