"""Batched updates against a real PostgreSQL: one transaction, answers one by one."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from libs.batching.group_commit import RETRY
from services.session_core import migrate
from services.session_core.records import (
    Conflict,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    SessionRecord,
    TooLarge,
    UpdateRequest,
)
from services.session_core.store import Store, Written

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await migrate.migrate(conn)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> Store:
    return Store(pool, ttl=dt.timedelta(days=7), max_state_bytes=10_000, max_patch_bytes=1_000)


async def new_session(store: Store, user: str) -> SessionRecord:
    _, session, _ = await store.open(user, "", "phone", {})
    return session


def update(session: SessionRecord, op_id: str, patch: Any, **fields: Any) -> UpdateRequest:
    return UpdateRequest(
        user_id=fields.pop("user_id", session.user_id),
        session_id=session.session_id,
        device_id=fields.pop("device_id", "phone"),
        op_id=op_id,
        base_version=fields.pop("base_version", session.version),
        epoch=session.epoch,
        patch=patch,
        **fields,
    )


async def test_one_batch_applies_many_sessions_in_order_with_every_rule(
    store: Store, pool: asyncpg.Pool
) -> None:
    a, b = await new_session(store, "alice"), await new_session(store, "alice")
    answers = await store.apply_updates(
        [
            update(a, "a1", {"x": 1}),
            update(b, "b1", {"y": 1}),
            update(a, "a2", {"z": 2}),  # stale base (a1 came first), other path: rebased
            update(a, "a3", {"x": 3}),  # stale base overlapping a1's path: refused
            update(a, "a1", {"x": 9}),  # a1 again in the same batch: its first result
            update(b, "b2", {"y": 2}, user_id="mallory"),  # someone else's session
        ]
    )
    a1, b1, a2, a3, again, stolen = answers
    assert isinstance(a1, Written) and a1.change.version == 2 and a1.change.outcome == "applied"
    assert isinstance(b1, Written) and b1.change.version == 2
    assert isinstance(a2, Written) and a2.change.version == 3 and a2.change.outcome == "rebased"
    assert isinstance(a3, Conflict) and a3.version == 3
    assert (
        isinstance(again, Written)
        and again.replayed
        and again.change.event_id == (a1.change.event_id)
    )
    assert isinstance(stolen, NotFound)
    rows = await pool.fetch("SELECT session_id, version, state FROM sessions ORDER BY version")
    assert {(str(r["session_id"]), r["version"]) for r in rows} == {
        (a.session_id, 3),
        (b.session_id, 2),
    }
    assert (
        await pool.fetchval(
            "SELECT state FROM sessions WHERE session_id = $1", a1.change.session_id
        )
        == '{"x": 1, "z": 2}'
    )
    # Every committed change has its log row and its outbox event (created ones included).
    assert await pool.fetchval("SELECT count(*) FROM changes") == 5
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 5
    # Retried later, in another batch, the op still applies once.
    (later,) = await store.apply_updates([update(a, "a2", {"z": 2})])
    assert isinstance(later, Written) and later.replayed and later.change.version == 3


async def test_a_row_held_elsewhere_delays_only_its_own_update(
    store: Store, pool: asyncpg.Pool
) -> None:
    held, free = await new_session(store, "alice"), await new_session(store, "bob")
    async with pool.acquire() as other, other.transaction():
        await other.execute(
            "SELECT 1 FROM sessions WHERE session_id = $1 FOR UPDATE", held.session_id
        )
        waiting, done = await store.apply_updates(
            [update(held, "h", {"x": 1}), update(free, "f", {"y": 1})]
        )
        assert waiting is RETRY
        assert isinstance(done, Written)
        # Committed while the other row is still locked: no head-of-line blocking.
        async with pool.acquire() as reader:
            assert (
                await reader.fetchval(
                    "SELECT version FROM sessions WHERE session_id = $1", free.session_id
                )
                == 2
            )
    (retried,) = await store.apply_updates([update(held, "h", {"x": 1})])
    assert isinstance(retried, Written) and retried.change.version == 2


async def test_an_update_postgresql_refuses_fails_alone(store: Store, pool: asyncpg.Pool) -> None:
    # A value the database refuses that no check upstream knows of.
    await pool.execute("ALTER TABLE changes ADD CONSTRAINT no_poison CHECK (device_id <> 'poison')")
    a, b = await new_session(store, "alice"), await new_session(store, "alice")
    good, bad, also_good = await store.apply_updates(
        [
            update(a, "1", {"x": 1}),
            update(b, "2", {"x": 1}, device_id="poison"),
            update(b, "3", {"y": 1}),
        ]
    )
    assert isinstance(good, Written) and isinstance(also_good, Written)
    assert isinstance(bad, asyncpg.CheckViolationError)
    assert await pool.fetchval("SELECT count(*) FROM changes WHERE kind = 1") == 2


async def test_an_update_past_its_deadline_is_not_written(store: Store, pool: asyncpg.Pool) -> None:
    a = await new_session(store, "alice")
    late, timely = await store.apply_updates(
        [
            update(a, "late", {"x": 1}, deadline=time.monotonic() - 0.001),
            update(a, "timely", {"y": 1}, deadline=time.monotonic() + 60),
        ]
    )
    assert isinstance(late, DeadlineExceeded)
    assert isinstance(timely, Written) and timely.change.version == 2
    assert await pool.fetchval("SELECT count(*) FROM changes WHERE op_id = 'late'") == 0


@pytest.mark.parametrize(
    ("op_id", "patch", "message"),
    [
        ("", {"a": 1}, "op_id: required"),
        ("x" * 129, {"a": 1}, "op_id: longer than 128 characters"),
        ("op", {"a": "nul\x00"}, "patch_json: the string at /a contains U\\+0000"),
        ("op\x00", {"a": 1}, "op_id: contains U\\+0000"),
    ],
)
async def test_malformed_updates_are_refused_before_any_batch(
    store: Store, op_id: str, patch: Any, message: str
) -> None:
    a = await new_session(store, "alice")
    with pytest.raises(InvalidArgument, match=message):
        store.check_update(update(a, op_id, patch))


async def test_a_session_takes_a_bounded_number_of_devices(pool: asyncpg.Pool) -> None:
    store = Store(
        pool, ttl=dt.timedelta(days=7), max_state_bytes=10_000, max_patch_bytes=1_000, max_devices=3
    )
    session = await new_session(store, "devices")
    for device in ("tablet", "laptop"):
        await store.open("devices", session.session_id, device, {})
    with pytest.raises(TooLarge, match="3 devices"):
        await store.open("devices", session.session_id, "one-too-many", {})
    # Devices already attached still open it; the list did not grow.
    _, again, _ = await store.open("devices", session.session_id, "phone", {})
    assert again.devices == ("phone", "tablet", "laptop")
