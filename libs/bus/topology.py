"""Where session events travel on RabbitMQ: one topic exchange, one routing key per user.

core's outbox relay publishes every committed change to `EXCHANGE` with
`routing_key(user)`; each edge replica binds its own queue with the same key
for every user connected to it, and reads the user back with `user_of` when
an event cannot be delivered. Both directions live here so they cannot drift.
"""

from __future__ import annotations

EXCHANGE = "syncbridge.changes"
# Durable topic exchange: it outlives broker restarts, and edges bind per-user keys.
EXCHANGE_TYPE = "topic"

_USER_PREFIX = "user"


def routing_key(user_id: str) -> str:
    """Topic routing key of `user_id`'s events.

    User ids are opaque; dots and wildcards would split or match topic words,
    so they are hex-encoded.
    """
    return f"{_USER_PREFIX}.{user_id.encode().hex()}"


def user_of(key: str) -> str | None:
    """The user a routing key names (`routing_key`'s inverse); None if it names none."""
    prefix, _, encoded = key.partition(".")
    if prefix != _USER_PREFIX:
        return None
    try:
        return bytes.fromhex(encoded).decode()
    except ValueError:
        return None
