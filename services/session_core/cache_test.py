"""The cache against a real Redis: tombstones, expiry, and a failed write-back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from redis import asyncio as aioredis

from services.session_core.cache import Cache, key
from services.session_core.harness import refused_port
from syncbridge.session.v1 import session_pb2

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio


def snapshot(version: int, *, expires_in: float = 3600) -> session_pb2.Session:
    expires = Timestamp()
    expires.FromMilliseconds(int((time.time() + expires_in) * 1000))
    return session_pb2.Session(
        session_id="s1", user_id="alice", epoch=1, version=version, expires_at=expires
    )


def change(version: int, op_id: str = "") -> session_pb2.Change:
    return session_pb2.Change(session_id="s1", epoch=1, version=version, op_id=op_id)


@pytest_asyncio.fixture
async def cache(redis_url: str) -> AsyncIterator[Cache]:
    client = aioredis.Redis.from_url(redis_url)
    yield Cache(client, ttl_seconds=3600)
    await client.aclose()


async def test_an_older_snapshot_never_replaces_a_newer_one(cache: Cache) -> None:
    await cache.record(change(3), snapshot(3))
    await cache.record(change(2), snapshot(2))  # a write-back that finished late
    cached = await cache.get_snapshot("s1")
    assert cached is not None and cached.version == 3


async def test_keys_expire_with_the_session(cache: Cache, redis_url: str) -> None:
    await cache.record(change(2, "op"), snapshot(2, expires_in=100))
    client = aioredis.Redis.from_url(redis_url)
    ttl = await client.pttl(key("s1", "snap"))
    await client.aclose()
    assert 90_000 < ttl <= 100_000


async def test_an_ended_session_stays_ended(cache: Cache) -> None:
    await cache.record(change(2, "op-2"), snapshot(2))
    assert await cache.op_result("s1", "op-2") is not None
    await cache.end(snapshot(3))
    await cache.record(change(2), snapshot(2))  # late write-back of the last snapshot
    assert await cache.get_snapshot("s1") is None
    assert await cache.op_result("s1", "op-2") is None


async def test_failed_write_back_bypasses_the_cache_until_healed(redis_url: str) -> None:
    good = aioredis.Redis.from_url(redis_url)
    cache = Cache(good, ttl_seconds=3600)
    await cache.record(change(2), snapshot(2))
    # Same cache, Redis unreachable for one write-back: the cached v2 is now stale.
    with refused_port() as no_redis:
        dead = aioredis.Redis(host="127.0.0.1", port=no_redis, socket_connect_timeout=0.2)
        cache._redis, cache._set_if_newer = dead, dead.register_script("return 0")
        await cache.record(change(3), snapshot(3))
        assert await cache.get_snapshot("s1") is None  # dirty: read PostgreSQL instead
        assert await cache.heal() == 0  # still unreachable
    cache._redis = good
    assert await cache.heal() == 1
    assert await good.exists(key("s1", "snap")) == 0  # the stale v2 is gone
    await dead.aclose()
    await good.aclose()
