"""Redis: snapshot cache, recent change log, presence and op_id fast path.

Nothing here is the source of truth: every miss or Redis error falls back to
PostgreSQL, so a flushed or dead Redis costs latency, never data. All keys of
one session share the hash tag `{<session_id>}` and so one Redis Cluster slot.
Expected `maxmemory-policy`: volatile-lru (every key has a TTL; evicting one
is a cache miss). `noeviction` also works but turns memory pressure into errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from syncbridge.session.v1 import session_pb2

log = logging.getLogger(__name__)
T = TypeVar("T")

# Writes a snapshot only if it is newer than the cached one: concurrent
# writers finish out of order, and an older snapshot must not win.
_SET_IF_NEWER = """
local cur = redis.call('HMGET', KEYS[1], 'e', 'v')
local e, v = tonumber(ARGV[1]), tonumber(ARGV[2])
if cur[1] and (tonumber(cur[1]) > e or (tonumber(cur[1]) == e and tonumber(cur[2]) >= v)) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 0
end
redis.call('HSET', KEYS[1], 'e', e, 'v', v, 'p', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


def key(session_id: str, part: str) -> str:
    return f"sb:{{{session_id}}}:{part}"


class Cache:
    """Best-effort Redis layer; methods return None/False when Redis fails."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_seconds: float,
        log_length: int = 256,
        presence_seconds: float = 45.0,
        on_result: Callable[[str, bool], None] = lambda op, hit: None,
    ) -> None:
        self._redis = client
        self._ttl_ms = int(ttl_seconds * 1000)
        self._log_length = log_length
        self._presence = presence_seconds
        self._on_result = on_result
        self._set_if_newer = client.register_script(_SET_IF_NEWER)

    async def _safe(self, op: str, call: Awaitable[T]) -> T | None:
        try:
            return await call
        except (RedisError, OSError) as error:
            log.warning(
                "redis unavailable, using PostgreSQL", extra={"op": op, "error": repr(error)}
            )
            return None

    # -- snapshots --------------------------------------------------------

    async def get_snapshot(self, session_id: str) -> session_pb2.Session | None:
        async def read() -> bytes | None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hget(key(session_id, "snap"), "p")
            pipe.pexpire(key(session_id, "snap"), self._ttl_ms)  # sliding TTL
            payload, _ = await pipe.execute()
            return payload  # type: ignore[no-any-return]

        payload = await self._safe("get_snapshot", read())
        self._on_result("snapshot", payload is not None)
        return session_pb2.Session.FromString(payload) if payload else None

    async def put_snapshot(self, session: session_pb2.Session) -> None:
        await self._safe(
            "put_snapshot",
            self._set_if_newer(
                keys=[key(session.session_id, "snap")],
                args=[session.epoch, session.version, session.SerializeToString(), self._ttl_ms],
            ),
        )

    async def forget(self, session_id: str) -> None:
        await self._safe(
            "forget",
            self._redis.delete(
                key(session_id, "snap"), key(session_id, "log"), key(session_id, "presence")
            ),
        )

    # -- recent change log ------------------------------------------------

    async def record(
        self, change: session_pb2.Change, session: session_pb2.Session | None = None
    ) -> None:
        """After a commit: log the change, remember its op_id, refresh the snapshot.

        Every key shares the session's slot. The snapshot's compare-and-set
        script runs on its own: Redis Cluster clients refuse scripts in pipelines.
        """

        async def write() -> None:
            log_key = key(change.session_id, "log")
            pipe = self._redis.pipeline(transaction=False)
            pipe.zadd(log_key, {change.SerializeToString(): change.version})
            pipe.zremrangebyrank(log_key, 0, -(self._log_length + 1))
            pipe.pexpire(log_key, self._ttl_ms)
            if change.op_id:
                pipe.set(
                    key(change.session_id, f"op:{change.op_id}"),
                    change.SerializeToString(),
                    px=self._ttl_ms,
                )
            await pipe.execute()
            if session is not None:
                await self._set_if_newer(
                    keys=[key(session.session_id, "snap")],
                    args=[
                        session.epoch,
                        session.version,
                        session.SerializeToString(),
                        self._ttl_ms,
                    ],
                )

        await self._safe("record", write())

    async def changes_after(
        self, session_id: str, epoch: int, version: int, upto: int
    ) -> list[session_pb2.Change] | None:
        """Changes version+1..upto from Redis, or None unless complete and gap-free."""
        raw = await self._safe(
            "changes_after",
            self._redis.zrangebyscore(key(session_id, "log"), version + 1, upto),
        )
        items: list[bytes] = list(raw or [])  # type: ignore[arg-type]
        changes = [session_pb2.Change.FromString(item) for item in items]
        complete = [c.version for c in changes] == list(range(version + 1, upto + 1)) and all(
            c.epoch == epoch for c in changes
        )
        self._on_result("change_log", complete)
        return changes if complete else None

    async def op_result(self, session_id: str, op_id: str) -> session_pb2.Change | None:
        raw = await self._safe("op_result", self._redis.get(key(session_id, f"op:{op_id}")))
        payload = raw if isinstance(raw, bytes) else None
        self._on_result("op_id", payload is not None)
        return session_pb2.Change.FromString(payload) if payload else None

    # -- presence ---------------------------------------------------------

    async def touch_presence(self, session_id: str, device_id: str, online: bool) -> None:
        """Marks a device online until now + presence TTL (or removes it)."""
        presence = key(session_id, "presence")
        if online:
            call: Awaitable[Any] = self._redis.zadd(
                presence, {device_id: time.time() + self._presence}
            )
        else:
            call = self._redis.zrem(presence, device_id)
        await self._safe("presence", call)
        await self._safe("presence", self._redis.pexpire(presence, self._ttl_ms))

    async def online(self, session_id: str) -> dict[str, float] | None:
        """Devices whose edge refreshed them recently: {device: expiry}."""
        presence = key(session_id, "presence")
        now = time.time()
        await self._safe("presence", self._redis.zremrangebyscore(presence, "-inf", now))
        items = await self._safe(
            "presence", self._redis.zrangebyscore(presence, now, "+inf", withscores=True)
        )
        if items is None:
            return None
        pairs: list[tuple[bytes, float]] = items  # type: ignore[assignment]
        return {member.decode(): float(score) for member, score in pairs}
