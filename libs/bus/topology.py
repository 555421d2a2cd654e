"""Where session events travel on RabbitMQ: one topic exchange, one routing key per user.

core's outbox relay publishes every committed change to `EXCHANGE` with
`routing_key(user)`; each edge replica binds its own queue with the same key
for every user connected to it. The key is derived from the user id
(libs/identity: a fixed-length digest), so no user id can exceed the 255-byte
limit or split topic words; it cannot be read back. Every message names its
user in the `USER_HEADER` header (and in its body), so an edge that cannot
decode a body still knows whose devices to resync (`user_of_headers`).

What an edge cannot consume is set aside on `DEAD_LETTER_EXCHANGE`, kept in
`DEAD_LETTER_QUEUE` (bounded) for an operator to look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.identity import identity

EXCHANGE = "syncbridge.changes"
# Durable topic exchange: it outlives broker restarts, and edges bind per-user keys.
EXCHANGE_TYPE = "topic"

# Poison set aside by the edges: a durable fanout exchange and its one queue,
# bounded (oldest dropped first) so a flood of poison cannot fill the broker.
DEAD_LETTER_EXCHANGE = "syncbridge.dead"
DEAD_LETTER_QUEUE = "syncbridge.dead"
DEAD_LETTER_MAX_LENGTH = 10_000
# Why a message was set aside, and by whom: headers on the dead-lettered copy.
REASON_HEADER = "x-syncbridge-dead-reason"
EDGE_HEADER = "x-syncbridge-dead-edge"

USER_HEADER = "x-syncbridge-user"

_USER_PREFIX = "user"


def routing_key(user_id: str) -> str:
    """Topic routing key of `user_id`'s events: `user.` and 64 hex digits, whatever the id."""
    return f"{_USER_PREFIX}.{identity.tag(user_id)}"


def user_headers(user_id: str) -> dict[str, Any]:
    """The headers naming the user a message is for."""
    return {USER_HEADER: user_id}


def user_of_headers(headers: Mapping[str, Any] | None) -> str | None:
    """The user a message's headers name; None if they name none (or not as text)."""
    value = (headers or {}).get(USER_HEADER)
    if isinstance(value, bytes):  # AMQP long strings may arrive undecoded
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) and value else None
