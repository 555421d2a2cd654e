"""The edge's core client against a real core: updates coalesce, answers stay per update."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from libs.core_client.client import (
    LEGACY_USER_METADATA,
    Caller,
    CoreClient,
    CoreError,
    _legacy_metadata,
    _Update,
    chunks,
)
from libs.metrics.rpc import rpc_metrics
from services.session_core.harness import Running, core_config, running_core, token_for
from syncbridge.session.v1 import session_pb2

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio


def caller(user: str) -> Caller:
    """`user` with a token the harness's core accepts, as the edge forwards it."""
    return Caller(user, token_for(user))


@pytest_asyncio.fixture
async def core(pg_dsn: str, redis_url: str, amqp_url: str) -> AsyncIterator[Running]:
    async with running_core(core_config(pg_dsn, redis_url, amqp_url)) as running:
        yield running


def calls(registry: CollectorRegistry, method: str) -> float:
    value = registry.get_sample_value(
        "syncbridge_edge_core_latency_seconds_count", {"method": method, "code": "OK"}
    )
    return value or 0.0


def client_for(port: int, registry: CollectorRegistry, **options: Any) -> CoreClient:
    metrics = rpc_metrics(registry, "syncbridge_edge_core")
    return CoreClient(f"127.0.0.1:{port}", deadline=5, attempts=3, metrics=metrics, **options)


async def test_concurrent_updates_of_many_users_share_calls_and_keep_their_answers(
    core: Running,
) -> None:
    registry = CollectorRegistry()
    client = client_for(core.port, registry, max_inflight=1)
    try:
        users = [f"user-{n}" for n in range(40)]
        sessions = [(await client.open_session(caller(user), "phone")).session for user in users]
        answers = await asyncio.gather(
            *(
                client.apply_update(
                    caller(user),
                    session_id=session.session_id,
                    device_id="phone",
                    op_id="op-1",
                    base_version=session.version,
                    epoch=session.epoch,
                    patch={"n": n},
                )
                for n, (user, session) in enumerate(zip(users, sessions, strict=True))
            )
        )
        assert [a.change.version for a in answers] == [2] * 40
        assert [a.change.user_id for a in answers] == users
        assert [a.change.patch_json for a in answers] == [f'{{"n":{n}}}' for n in range(40)]
        # One call went out at once; the 39 that waited for it shared what followed.
        assert 2 <= calls(registry, "ApplyUpdates") < 10
    finally:
        await client.close()


async def test_a_refused_update_fails_as_apply_update_would_and_alone(core: Running) -> None:
    client = client_for(core.port, CollectorRegistry())
    try:
        session = (await client.open_session(caller("alice"), "phone")).session
        fields: dict[str, Any] = {
            "session_id": session.session_id,
            "device_id": "phone",
            "epoch": session.epoch,
        }
        first = await client.apply_update(
            caller("alice"), op_id="1", base_version=1, patch={"x": 1}, **fields
        )
        assert first.change.version == 2
        stale, stolen = await asyncio.gather(  # one call, two refusals
            client.apply_update(
                caller("alice"), op_id="2", base_version=1, patch={"x": 2}, **fields
            ),
            client.apply_update(
                caller("mallory"), op_id="3", base_version=2, patch={"y": 1}, **fields
            ),
            return_exceptions=True,
        )
        assert isinstance(stale, CoreError) and stale.code == "conflict"
        assert stale.status == "FAILED_PRECONDITION"
        assert stale.trailers["syncbridge-version"] == "2"
        assert stale.trailers["syncbridge-epoch"] == str(session.epoch)
        assert isinstance(stolen, CoreError) and stolen.code == "session_not_found"
    finally:
        await client.close()


@pytest.mark.parametrize("user", ["ünïcode 😀", "line\nbreak", " padded ", "ascii-alice"])
async def test_any_user_id_reaches_core_and_reads_back_as_itself(core: Running, user: str) -> None:
    client = client_for(core.port, CollectorRegistry())
    try:
        session = (await client.open_session(caller(user), "phone")).session
        read = await client.get_session(caller(user), session.session_id)
        assert read.user_id == user
        listed = await client.list_sessions(caller(user))
        assert [s.session_id for s in listed.sessions] == [session.session_id]
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("user", "sent"),
    [
        ("alice", True),
        ("bob smith@x.example", True),
        ("ünï", False),
        ("a\nb", False),
        (" padded", False),
        ("padded ", False),
        ("tab\there", False),
    ],
)
async def test_the_older_ascii_user_header_goes_only_with_an_id_it_carries_unchanged(
    user: str, sent: bool
) -> None:
    # An older core reads only this header (session.proto's deploy order: edges first).
    assert _legacy_metadata(user) == (((LEGACY_USER_METADATA, user),) if sent else ())


async def test_core_gone_is_unavailable_within_the_deadline(core: Running) -> None:
    client = client_for(core.port, CollectorRegistry())
    try:
        session = (await client.open_session(caller("alice"), "phone")).session
        await core.server.stop(0)  # core gone; the fixture still cleans up the rest
        started = asyncio.get_running_loop().time()
        with pytest.raises(CoreError) as gone:
            await client.apply_update(
                caller("alice"),
                session_id=session.session_id,
                device_id="phone",
                op_id="late",
                base_version=1,
                epoch=session.epoch,
                patch={"x": 1},
            )
        assert gone.value.code == "unavailable"
        assert asyncio.get_running_loop().time() - started < 5.5
    finally:
        await client.close()


async def test_chunks_keep_order_and_stay_under_the_limit() -> None:
    assert chunks([], 10) == []
    assert chunks([4, 4, 4, 4], 10) == [[0, 1], [2, 3]]
    assert chunks([3, 20, 3], 10) == [[0], [1], [2]]  # too big for any group: alone
    assert chunks([10, 1], 10) == [[0], [1]]


async def test_updates_too_big_for_one_call_together_go_in_several(core: Running) -> None:
    registry = CollectorRegistry()
    client = client_for(core.port, registry, max_inflight=1)
    try:
        users = [f"user-{n}" for n in range(30)]
        sessions = [(await client.open_session(caller(user), "phone")).session for user in users]
        big = "x" * 40_000  # 30 of these: 1.2 MB, above core's message limit for one call
        answers = await asyncio.gather(
            *(
                client.apply_update(
                    caller(user),
                    session_id=session.session_id,
                    device_id="phone",
                    op_id="big",
                    base_version=session.version,
                    epoch=session.epoch,
                    patch={"blob": big},
                )
                for user, session in zip(users, sessions, strict=True)
            )
        )
        assert [a.change.version for a in answers] == [2] * 30
        assert calls(registry, "ApplyUpdates") >= 1 + 29 * 40_000 // (256 * 1024)
    finally:
        await client.close()


async def test_each_update_of_a_call_keeps_its_own_deadline(core: Running) -> None:
    client = client_for(core.port, CollectorRegistry())
    try:
        held, free, late = [(await client.open_session(caller(u), "phone")).session for u in "abc"]

        def item(user: str, session: Any, seconds: float) -> _Update:
            request = session_pb2.ApplyUpdateRequest(
                session_id=session.session_id,
                device_id="phone",
                op_id="op",
                base_version=session.version,
                epoch=session.epoch,
                patch_json='{"x": 1}',
            )
            return _Update(caller(user), request, time.monotonic() + seconds)

        async with core.pool.acquire() as blocker, blocker.transaction():
            await blocker.execute(
                "SELECT 1 FROM sessions WHERE session_id = $1 FOR UPDATE", held.session_id
            )
            # One call: "a" waits on its locked row until its own 0.3 s run out;
            # "b" must not wait with it nor share its deadline; "c" is out of time.
            a, b, c = await client._apply_batch(
                [item("a", held, 0.3), item("b", free, 5.0), item("c", late, 0.01)]
            )
        assert isinstance(a, CoreError) and a.code == "deadline_exceeded"
        assert isinstance(b, session_pb2.ApplyUpdateResponse) and b.change.version == 2
        assert isinstance(c, CoreError) and c.status == "DEADLINE_EXCEEDED"
        assert await core.pool.fetchval("SELECT count(*) FROM changes WHERE op_id = 'op'") == 1
    finally:
        await client.close()
