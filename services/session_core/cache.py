"""Redis: snapshot cache, recent change log, presence and op_id fast path.

Nothing here is the source of truth: every miss or Redis error falls back to
PostgreSQL, so a flushed or dead Redis costs latency, never data. All keys of
one session share the hash tag `{<session_id>}` and so one Redis Cluster slot.
Keys expire when the session does (PEXPIREAT its `expires_at`, moved by every
write: the 7-day sliding TTL); reads never extend them.
Expected `maxmemory-policy`: volatile-lru (every key has a TTL; evicting one
is a cache miss). `noeviction` also works but turns memory pressure into errors.

Staleness: a snapshot is only replaced by a newer (epoch, version); an ended
session leaves a tombstone a version above its last, so a late write-back of an
older snapshot cannot resurrect it. When a write-back fails, the session is
marked dirty in this process: its reads bypass Redis until `heal()` has
deleted the possibly stale snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from libs.identity import identity
from syncbridge.session.v1 import session_pb2

log = logging.getLogger(__name__)
T = TypeVar("T")

# Writes a snapshot (or a tombstone: empty payload, dead = 1) only if it is
# newer than the cached one: concurrent writers finish out of order, and an
# older snapshot must not win. ARGV: epoch, version, payload, expire-at (ms), dead.
_SET_IF_NEWER_FN = """
local function set_if_newer(snap, e, v, payload, expire_at, dead)
  local cur = redis.call('HMGET', snap, 'e', 'v')
  e, v = tonumber(e), tonumber(v)
  if cur[1] and (tonumber(cur[1]) > e or (tonumber(cur[1]) == e and tonumber(cur[2]) >= v)) then
    return 0
  end
  redis.call('HSET', snap, 'e', e, 'v', v, 'p', payload, 'x', expire_at, 'dead', dead)
  redis.call('PEXPIREAT', snap, expire_at)
  return 1
end
"""
_SET_IF_NEWER = (
    _SET_IF_NEWER_FN + "return set_if_newer(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])"
)

# One committed change, in one call (a batch pipelines one call per change):
# add it to the session's change log (trimmed to the newest ARGV[3]), expire
# the log with the session, remember its op_id, and with a snapshot, set it
# if newer. KEYS: log, op key, snapshot. ARGV: change, version, log length,
# expire-at ms, op ttl ms, has op_id (1|0), then snapshot epoch, version,
# payload (none: no snapshot to write).
_RECORD = (
    _SET_IF_NEWER_FN
    + """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if ARGV[6] == '1' then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[5])
end
if ARGV[9] ~= '' then
  set_if_newer(KEYS[3], ARGV[7], ARGV[8], ARGV[9], ARGV[4], 0)
end
return 1
"""
)

# The change an op_id made, only while its session's snapshot is alive and
# unexpired (an ended or expired session answers nothing from Redis).
# KEYS: op key, snapshot. ARGV: now (ms).
_OP_RESULT = """
local payload = redis.call('GET', KEYS[1])
if not payload then return false end
local snap = redis.call('HMGET', KEYS[2], 'dead', 'x')
if snap[1] ~= '0' or not snap[2] or tonumber(snap[2]) <= tonumber(ARGV[1]) then
  return false
end
return payload
"""


# A user's online devices (sorted set: member device_id, score its expiry in
# epoch seconds): prune the expired, then JOIN admits a device already there or
# a new one below the cap, HEARTBEAT refreshes (re-adds), LEAVE removes.
# ARGV: now, expiry, device, action (join|heartbeat|leave), max devices (0: no
# cap), key TTL (ms). Returns {allowed (1|0), devices online}.
_CLAIM_DEVICE = """
local now, expiry, device, action = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local cap = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if action == 'leave' then
  redis.call('ZREM', KEYS[1], device)
  return {1, redis.call('ZCARD', KEYS[1])}
end
if action == 'join' and cap > 0 and not redis.call('ZSCORE', KEYS[1], device)
    and redis.call('ZCARD', KEYS[1]) >= cap then
  return {0, redis.call('ZCARD', KEYS[1])}
end
redis.call('ZADD', KEYS[1], expiry, device)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {1, redis.call('ZCARD', KEYS[1])}
"""


def user_key(user: str, part: str) -> str:
    """A per-user key; its hash tag is the user's tag (libs/identity: 64 hex digits, any id)."""
    return f"sb:u:{{{identity.tag(user)}}}:{part}"


_PLAIN_TAG = re.compile(r"[0-9A-Za-z-]+")


def key(session_id: str, part: str) -> str:
    """A session's key: its id is the hash tag, so all its keys share one slot.

    Session ids are UUIDs; any other text a caller sends (an empty id, braces)
    is hex-encoded, so the tag is never empty and never ends early.
    """
    tag = session_id if _PLAIN_TAG.fullmatch(session_id) else "x" + session_id.encode().hex()
    return f"sb:{{{tag}}}:{part}"


def _expire_at_ms(session: session_pb2.Session) -> int:
    return int(session.expires_at.ToMilliseconds())


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
        self._record = client.register_script(_RECORD)
        self._op_result = client.register_script(_OP_RESULT)
        self._cluster = isinstance(client, RedisCluster)
        self._claim_device = client.register_script(_CLAIM_DEVICE)
        self._dirty: set[str] = set()

    async def _safe(self, op: str, call: Awaitable[T]) -> T | None:
        try:
            return await call
        except (RedisError, RedisClusterException, OSError) as error:
            log.warning(
                "redis unavailable, using PostgreSQL", extra={"op": op, "error": repr(error)}
            )
            return None

    async def _scripts(
        self, op: str, script: Any, calls: Sequence[tuple[list[str], list[Any]]]
    ) -> list[Any] | None:
        """Runs `script` once per (keys, args), in one pipeline; None when Redis fails.

        Redis Cluster clients refuse scripts in pipelines; there the calls go
        side by side instead (each call's keys share one slot: a hash tag).
        """
        if self._cluster:
            calls_alone = (script(keys=keys, args=args) for keys, args in calls)
            return await self._safe(op, asyncio.gather(*calls_alone))
        pipe = self._redis.pipeline(transaction=False)
        for keys, args in calls:
            await script(keys=keys, args=args, client=pipe)  # on a pipeline: only queues it
        replies: list[Any] | None = await self._safe(op, pipe.execute())
        return replies

    # -- snapshots --------------------------------------------------------

    async def get_snapshot(self, session_id: str) -> session_pb2.Session | None:
        """The cached live snapshot, or None (miss, tombstone, dirty, Redis down)."""
        if session_id in self._dirty:
            self._on_result("snapshot", False)
            return None
        fields = await self._safe(
            "get_snapshot", self._redis.hmget(key(session_id, "snap"), "p", "dead")
        )
        payload, dead = fields if fields else (None, None)
        if not isinstance(payload, bytes) or not payload or dead == b"1":
            self._on_result("snapshot", False)
            return None
        self._on_result("snapshot", True)
        return session_pb2.Session.FromString(payload)

    async def put_snapshot(self, session: session_pb2.Session) -> None:
        if session.session_id in self._dirty:
            return
        await self._safe("put_snapshot", self._write_snapshot(session, dead=False))

    def _write_snapshot(self, session: session_pb2.Session, *, dead: bool) -> Awaitable[Any]:
        return self._set_if_newer(
            keys=[key(session.session_id, "snap")],
            args=[
                session.epoch,
                session.version,
                b"" if dead else session.SerializeToString(),
                _expire_at_ms(session),
                1 if dead else 0,
            ],
        )

    async def end(self, session: session_pb2.Session) -> None:
        """An ended session: tombstone its snapshot, drop its log and presence."""

        async def write() -> bool:
            await self._write_snapshot(session, dead=True)
            await self._redis.delete(
                key(session.session_id, "log"), key(session.session_id, "presence")
            )
            return True

        if await self._safe("end", write()) is None:
            self._dirty.add(session.session_id)

    async def invalidate(self, session_id: str) -> None:
        """Drops a session's snapshot and log (after an epoch reset, say)."""
        done = await self._safe(
            "invalidate", self._redis.delete(key(session_id, "snap"), key(session_id, "log"))
        )
        if done is None:
            self._dirty.add(session_id)

    async def heal(self) -> int:
        """Deletes the snapshots of dirty sessions; returns how many are healed."""
        healed = 0
        for session_id in list(self._dirty):
            if await self._safe("heal", self._redis.delete(key(session_id, "snap"))) is not None:
                self._dirty.discard(session_id)
                healed += 1
        return healed

    # -- recent change log ------------------------------------------------

    async def record(
        self, change: session_pb2.Change, session: session_pb2.Session | None = None
    ) -> None:
        """After a commit: log the change, remember its op_id, refresh the snapshot."""
        await self.record_many([(change, session)])

    async def record_many(
        self, items: Sequence[tuple[session_pb2.Change, session_pb2.Session | None]]
    ) -> None:
        """`record` for a batch of committed changes: one script call each (see _scripts)."""
        if not items:
            return
        calls = [
            (
                [
                    key(change.session_id, "log"),
                    key(change.session_id, f"op:{change.op_id}"),
                    key(change.session_id, "snap"),
                ],
                self._record_args(change, snapshot),
            )
            for change, snapshot in items
        ]
        if await self._scripts("record", self._record, calls) is None:
            # The cached snapshots may now be older than what just committed.
            self._dirty.update(change.session_id for change, snapshot in items if snapshot)

    def _record_args(
        self, change: session_pb2.Change, snapshot: session_pb2.Session | None
    ) -> list[Any]:
        payload = change.SerializeToString()
        write_snapshot = snapshot is not None and change.session_id not in self._dirty
        return [
            payload,
            change.version,
            self._log_length,
            _expire_at_ms(snapshot)
            if snapshot is not None
            else int(time.time() * 1000) + self._ttl_ms,
            self._ttl_ms,
            1 if change.op_id else 0,
            snapshot.epoch if snapshot is not None else 0,
            snapshot.version if snapshot is not None else 0,
            snapshot.SerializeToString() if write_snapshot and snapshot is not None else b"",
        ]

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
        """The change an op_id made, while its session is cached alive and unexpired."""
        return (await self.op_results([(session_id, op_id)]))[0]

    async def op_results(self, ops: Sequence[tuple[str, str]]) -> list[session_pb2.Change | None]:
        """`op_result` for a batch of (session_id, op_id): one script call each."""
        if not ops:
            return []
        now_ms = int(time.time() * 1000)
        calls = [([key(sid, f"op:{op}"), key(sid, "snap")], [now_ms]) for sid, op in ops]
        found = await self._scripts("op_result", self._op_result, calls)
        results: list[session_pb2.Change | None] = []
        for i, (session_id, _) in enumerate(ops):
            raw = found[i] if found is not None and session_id not in self._dirty else None
            payload = raw if isinstance(raw, bytes) and raw else None
            self._on_result("op_id", payload is not None)
            results.append(session_pb2.Change.FromString(payload) if payload else None)
        return results

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

    # -- per-user device cap ----------------------------------------------

    async def claim_device(
        self, user: str, device_id: str, action: str, max_devices: int
    ) -> tuple[bool, int] | None:
        """(allowed, devices online) for a join/heartbeat/leave; None when Redis fails."""
        now = time.time()
        result = await self._safe(
            "claim_device",
            self._claim_device(
                keys=[user_key(user, "devices")],
                args=[
                    repr(now),
                    repr(now + self._presence),
                    device_id,
                    action,
                    max_devices,
                    int(self._presence * 2000),
                ],
            ),
        )
        if result is None:
            return None
        allowed, online = result
        return bool(int(allowed)), int(online)
