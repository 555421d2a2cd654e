"""session-core against real PostgreSQL, Redis and RabbitMQ, over real gRPC.

One file (over 400 lines) on purpose: every test shares the servers this
target starts once; the rules behind the RPCs have server-free tests of their
own (transitions_test, rebase_test, store_sql_test, store_checks_test).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import grpc
import pytest
import pytest_asyncio
from redis import asyncio as aioredis

from libs.bus.amqp import declare_exchange
from libs.bus.messages import decode_change
from libs.bus.topology import routing_key
from services.session_core.harness import (
    as_user,
    core_config,
    refused_port,
    running_core,
    stub_for,
    token_for,
    wait_serving,
)
from services.session_core.server import Running
from services.session_core.store import Store
from syncbridge.session.v1 import session_pb2

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def core(pg_dsn: str, redis_url: str, amqp_url: str) -> AsyncIterator[Running]:
    config = core_config(pg_dsn, redis_url, amqp_url, max_devices_per_user=2)
    async with running_core(config) as running:
        yield running


@pytest_asyncio.fixture
async def stub(core: Running) -> AsyncIterator[Any]:
    async with stub_for(core.port) as client:
        yield client


async def open_session(stub: Any, user: str, device: str = "phone", state: Any = None) -> Any:
    response = await stub.OpenSession(
        session_pb2.OpenSessionRequest(
            device_id=device, initial_state_json=json.dumps(state or {})
        ),
        metadata=as_user(user),
    )
    return response.session


async def update(
    stub: Any,
    user: str,
    session: Any,
    patch: Any,
    *,
    base: int | None = None,
    op_id: str | None = None,
    device: str = "phone",
    lease: bool = False,
) -> Any:
    return await stub.ApplyUpdate(
        session_pb2.ApplyUpdateRequest(
            session_id=session.session_id,
            device_id=device,
            op_id=op_id or uuid.uuid4().hex,
            base_version=session.version if base is None else base,
            epoch=session.epoch,
            patch_json=json.dumps(patch),
            require_lease=lease,
        ),
        metadata=as_user(user),
    )


def error_code(error: grpc.aio.AioRpcError) -> str:
    return str(dict(error.trailing_metadata() or ()).get("syncbridge-error", ""))


async def test_open_get_update_round_trip(stub: Any) -> None:
    session = await open_session(stub, "alice", state={"page": 1})
    assert session.version == 1 and session.epoch == 1
    assert session.active_device == "phone"
    result = await update(stub, "alice", session, {"page": 2, "mode": "dark"})
    assert result.outcome == session_pb2.UPDATE_OUTCOME_APPLIED
    assert result.change.version == 2
    got = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
    )
    assert json.loads(got.state_json) == {"page": 2, "mode": "dark"}
    assert got.version == 2
    assert got.expires_at.seconds - got.updated_at.seconds == 7 * 24 * 3600


async def test_32_concurrent_writers_get_gap_free_versions(stub: Any) -> None:
    session = await open_session(stub, "alice")

    async def writer(n: int) -> int:
        # Disjoint paths: every stale write rebases instead of conflicting.
        result = await update(stub, "alice", session, {f"w{n}": n})
        return int(result.change.version)

    versions = await asyncio.gather(*(writer(n) for n in range(32)))
    assert sorted(versions) == list(range(2, 34))
    got = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
    )
    assert json.loads(got.state_json) == {f"w{n}": n for n in range(32)}
    replay = await stub.ChangesSince(
        session_pb2.ChangesSinceRequest(session_id=session.session_id, epoch=1, version=1),
        metadata=as_user("alice"),
    )
    assert replay.recovered
    assert [c.version for c in replay.changes] == list(range(2, 34))


async def test_same_op_id_applies_once(stub: Any) -> None:
    session = await open_session(stub, "alice", state={"n": 0})
    first = await update(stub, "alice", session, {"n": 1}, op_id="op-1")
    again = await update(stub, "alice", session, {"n": 1}, op_id="op-1")
    assert not first.replayed and again.replayed
    assert again.change.version == first.change.version == 2
    assert again.change.event_id == first.change.event_id
    got = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
    )
    assert got.version == 2


async def test_stale_overlapping_update_conflicts_with_current_version(stub: Any) -> None:
    session = await open_session(stub, "alice", state={"a": 0, "b": 0})
    await update(stub, "alice", session, {"a": 1})
    rebased = await update(stub, "alice", session, {"b": 1})  # base 1, disjoint
    assert rebased.outcome == session_pb2.UPDATE_OUTCOME_REBASED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await update(stub, "alice", session, {"a": 2})  # base 1, overlaps v2
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(refused.value) == "conflict"
    assert dict(refused.value.trailing_metadata())["syncbridge-version"] == "3"


async def test_the_user_travels_as_binary_metadata_whatever_its_shape(stub: Any) -> None:
    # No ASCII metadata could carry it; with its token, over gRPC's 8 KiB default
    # metadata size; yet its token stays within libs/auth's 8192 characters.
    user = "ünïcode\nline 😀 " + "x" * 4000
    session = await open_session(stub, user)
    read = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user(user)
    )
    assert read.user_id == user
    listed = await stub.ListSessions(session_pb2.ListSessionsRequest(), metadata=as_user(user))
    assert [s.session_id for s in listed.sessions] == [session.session_id]
    # The older ASCII header, which edges still send for older cores: a cross-check.
    bearer = ("authorization", f"Bearer {token_for('alice')}")
    legacy = await stub.OpenSession(
        session_pb2.OpenSessionRequest(device_id="phone"),
        metadata=(bearer, ("x-syncbridge-user", "alice")),
    )
    read = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=legacy.session.session_id),
        metadata=as_user("alice"),
    )
    assert read.user_id == "alice"
    # Without a token no header names the user: the token's `sub` is the user.
    for metadata in (
        (),
        (("x-syncbridge-user", "alice"),),
        (("x-syncbridge-user-bin", b"alice"),),
        (("x-syncbridge-user-bin", b"\xff\xfe"),),  # not UTF-8
        (("x-syncbridge-user-bin", b"nul\x00"),),  # no store can hold it
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListSessions(session_pb2.ListSessionsRequest(), metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # With alice's token, a header naming anyone else (or no one readable) is refused.
    for named in (
        ("x-syncbridge-user", "bob"),
        ("x-syncbridge-user-bin", b"bob"),
        ("x-syncbridge-user-bin", b"\xff\xfe"),
        ("x-syncbridge-user-bin", user.encode()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListSessions(session_pb2.ListSessionsRequest(), metadata=(bearer, named))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_code(refused.value) == "permission_denied"


async def test_another_users_session_is_not_found(stub: Any) -> None:
    session = await open_session(stub, "alice")
    sid = session.session_id
    mallory = as_user("mallory")
    for call in (
        stub.GetSession(session_pb2.GetSessionRequest(session_id=sid), metadata=mallory),
        update(stub, "mallory", session, {"x": 1}),
        stub.OpenSession(
            session_pb2.OpenSessionRequest(session_id=sid, device_id="evil"), metadata=mallory
        ),
        stub.Handoff(
            session_pb2.HandoffRequest(
                session_id=sid, device_id="phone", to_device="phone", op_id="h"
            ),
            metadata=mallory,
        ),
        stub.ChangesSince(
            session_pb2.ChangesSinceRequest(session_id=sid, epoch=1, version=0), metadata=mallory
        ),
        stub.EndSession(session_pb2.EndSessionRequest(session_id=sid), metadata=mallory),
        stub.GetPresence(session_pb2.GetPresenceRequest(session_id=sid), metadata=mallory),
        stub.UpdatePresence(
            session_pb2.UpdatePresenceRequest(
                session_id=sid, device_id="phone", action=session_pb2.PRESENCE_ACTION_JOIN
            ),
            metadata=mallory,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_code(refused.value) == "session_not_found"
    listed = await stub.ListSessions(session_pb2.ListSessionsRequest(), metadata=mallory)
    assert list(listed.sessions) == []
    # Alice's session is untouched by all of that.
    got = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=sid), metadata=as_user("alice")
    )
    assert got.version == 1


async def test_list_sessions_pages_newest_first(stub: Any) -> None:
    opened = [(await open_session(stub, "alice")).session_id for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListSessions(
            session_pb2.ListSessionsRequest(page_size=2, page_token=token),
            metadata=as_user("alice"),
        )
        assert len(page.sessions) <= 2
        seen += [s.session_id for s in page.sessions]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(opened))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListSessions(
            session_pb2.ListSessionsRequest(page_token="garbage"),  # noqa: S106 - not a secret
            metadata=as_user("alice"),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_missing_user_metadata_is_unauthenticated(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetSession(session_pb2.GetSessionRequest(session_id=str(uuid.uuid4())))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_bad_input_names_the_field(stub: Any) -> None:
    session = await open_session(stub, "alice")
    cases = [
        ({"patch_json": "not json"}, grpc.StatusCode.INVALID_ARGUMENT, "patch_json"),
        ({"patch_json": "[1, 2]"}, grpc.StatusCode.INVALID_ARGUMENT, "patch_json"),
        ({"op_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "op_id"),
        (
            {"patch_json": json.dumps({"blob": "x" * 70_000})},
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "patch_json",
        ),
    ]
    for fields, status, field in cases:
        request = session_pb2.ApplyUpdateRequest(
            session_id=session.session_id,
            device_id="phone",
            op_id="op",
            base_version=1,
            epoch=1,
            patch_json="{}",
        )
        for name, value in fields.items():
            setattr(request, name, value)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ApplyUpdate(request, metadata=as_user("alice"))
        assert refused.value.code() == status, fields
        assert field in (refused.value.details() or "")


async def test_state_size_limit(stub: Any) -> None:
    session = await open_session(stub, "alice")
    for n in range(4):  # 4 x 60 KB patches: the last one crosses 256 KiB of state
        try:
            result = await update(stub, "alice", session, {f"k{n}": "x" * 60_000}, base=1 + n)
            assert result.change.version == 2 + n
        except grpc.aio.AioRpcError as error:
            assert n == 3 or n == 4
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_code(error) == "too_large"
            break
    else:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await update(stub, "alice", session, {"k4": "x" * 60_000}, base=5)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_handoff_moves_lease_and_fences_old_device(stub: Any) -> None:
    session = await open_session(stub, "alice", device="phone")
    attached = await stub.OpenSession(
        session_pb2.OpenSessionRequest(session_id=session.session_id, device_id="laptop"),
        metadata=as_user("alice"),
    )
    assert not attached.created and attached.session.version == 2
    moved = await stub.Handoff(
        session_pb2.HandoffRequest(
            session_id=session.session_id, device_id="phone", to_device="laptop", op_id="h1"
        ),
        metadata=as_user("alice"),
    )
    assert moved.change.kind == session_pb2.CHANGE_KIND_HANDOFF
    assert moved.change.version == 3 and moved.change.active_device == "laptop"
    assert moved.change.lease_fence == session.lease_fence + 1
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await update(stub, "alice", session, {"x": 1}, base=3, device="phone", lease=True)
    assert error_code(refused.value) == "lease_required"
    ok = await update(stub, "alice", session, {"x": 1}, base=3, device="laptop", lease=True)
    assert ok.change.version == 4


async def test_resume_replays_or_snapshots_across_epoch_change(core: Running, stub: Any) -> None:
    session = await open_session(stub, "alice")
    for n in range(3):
        await update(stub, "alice", session, {"n": n}, base=1 + n)
    replay = await stub.ChangesSince(
        session_pb2.ChangesSinceRequest(session_id=session.session_id, epoch=1, version=2),
        metadata=as_user("alice"),
    )
    assert replay.recovered and [c.version for c in replay.changes] == [3, 4]

    # The admin path a restore from backup takes: history gone, new epoch.
    store = Store(
        core.pool, ttl=dt.timedelta(days=7), max_state_bytes=1 << 20, max_patch_bytes=1 << 20
    )
    reset = await store.reset_history("alice", session.session_id)
    assert reset.epoch == 2
    after = await stub.ChangesSince(
        session_pb2.ChangesSinceRequest(session_id=session.session_id, epoch=1, version=4),
        metadata=as_user("alice"),
    )
    assert not after.recovered
    assert after.snapshot.epoch == 2 and json.loads(after.snapshot.state_json) == {"n": 2}


async def test_redis_flushed_mid_run_loses_nothing(stub: Any, redis_url: str) -> None:
    session = await open_session(stub, "alice")
    for n in range(5):
        await update(stub, "alice", session, {f"k{n}": n}, base=1 + n)
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    for n in range(5, 10):
        await update(stub, "alice", session, {f"k{n}": n}, base=1 + n)
    got = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
    )
    assert got.version == 11 and got.epoch == 1  # history is in PostgreSQL: same epoch
    replay = await stub.ChangesSince(
        session_pb2.ChangesSinceRequest(session_id=session.session_id, epoch=1, version=1),
        metadata=as_user("alice"),
    )
    assert replay.recovered and [c.version for c in replay.changes] == list(range(2, 12))
    # op_id dedupe survives the flush: it lives in PostgreSQL.
    again = await update(stub, "alice", session, {"k0": 0}, base=1, op_id=replay.changes[0].op_id)
    assert again.replayed and again.change.version == 2


async def test_events_reach_rabbitmq_in_order(core: Running, stub: Any, amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await declare_exchange(channel)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key=routing_key("alice"))
    session = await open_session(stub, "alice")
    for n in range(5):
        await update(stub, "alice", session, {"n": n}, base=1 + n)
    seen: list[int] = []
    async with asyncio.timeout(15):
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                change = decode_change(message.body)
                assert change.session_id == session.session_id
                seen.append(change.version)
                if change.version == 6:
                    break
    await connection.close()
    assert seen == [1, 2, 3, 4, 5, 6]


async def test_health_and_metrics(core: Running) -> None:
    await wait_serving(core.port, within=10, service="syncbridge.session.v1.SessionService")
    reader, writer = await asyncio.open_connection("127.0.0.1", core.metrics_port)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    for name in (
        "syncbridge_core_rpc_latency_seconds",
        "syncbridge_core_outbox_backlog",
        "syncbridge_core_outbox_lag_seconds",
        "syncbridge_core_active_sessions",
        "syncbridge_core_cache_requests_total",
    ):
        assert name in body


async def test_deadline_is_honoured_and_nothing_commits(core: Running, stub: Any) -> None:
    session = await open_session(stub, "alice")
    async with core.pool.acquire() as blocker, blocker.transaction():
        # Another transaction holds the session row: the update must wait.
        await blocker.execute(
            "SELECT 1 FROM sessions WHERE session_id = $1 FOR UPDATE", uuid.UUID(session.session_id)
        )
        with pytest.raises(grpc.aio.AioRpcError) as expired:
            await stub.ApplyUpdate(
                session_pb2.ApplyUpdateRequest(
                    session_id=session.session_id,
                    device_id="phone",
                    op_id="late",
                    base_version=1,
                    epoch=1,
                    patch_json='{"x": 1}',
                ),
                metadata=as_user("alice"),
                timeout=0.5,
            )
        assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.sleep(0.2)
    got = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
    )
    assert got.version == 1 and json.loads(got.state_json) == {}


async def test_concurrent_retries_of_one_op_apply_once(stub: Any) -> None:
    session = await open_session(stub, "alice", state={"n": 0})
    for n in range(10):
        # Same op twice at once, on a path the op itself changes: a retry that
        # misses the first attempt would be refused as a conflict or fail.
        first, second = await asyncio.gather(
            update(stub, "alice", session, {"n": n + 1}, base=1 + n, op_id=f"dup-{n}"),
            update(stub, "alice", session, {"n": n + 1}, base=1 + n, op_id=f"dup-{n}"),
        )
        assert first.change.version == second.change.version == 2 + n
        assert first.change.event_id == second.change.event_id
        assert sorted([first.replayed, second.replayed]) == [False, True]


async def test_ended_session_is_gone_for_reads_and_retries(stub: Any) -> None:
    session = await open_session(stub, "alice")
    done = await update(stub, "alice", session, {"x": 1}, op_id="before-end")
    assert done.change.version == 2
    await stub.GetSession(  # warm the cache
        session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
    )
    await stub.EndSession(
        session_pb2.EndSessionRequest(session_id=session.session_id, device_id="phone"),
        metadata=as_user("alice"),
    )
    for call in (
        stub.GetSession(
            session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
        ),
        update(stub, "alice", session, {"x": 1}, op_id="before-end"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await call
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_stale_fence_is_refused_after_the_lease_comes_back(stub: Any) -> None:
    session = await open_session(stub, "alice", device="phone")
    await stub.OpenSession(
        session_pb2.OpenSessionRequest(session_id=session.session_id, device_id="laptop"),
        metadata=as_user("alice"),
    )
    fence = session.lease_fence
    for n, target in enumerate(("laptop", "phone")):
        await stub.Handoff(
            session_pb2.HandoffRequest(
                session_id=session.session_id,
                device_id="phone",
                to_device=target,
                op_id=f"h{n}",
            ),
            metadata=as_user("alice"),
        )

    def fenced(expected: int, op: str) -> Any:
        return stub.ApplyUpdate(
            session_pb2.ApplyUpdateRequest(
                session_id=session.session_id,
                device_id="phone",
                op_id=op,
                base_version=4,
                epoch=1,
                patch_json='{"x": 1}',
                require_lease=True,
                expected_fence=expected,
            ),
            metadata=as_user("alice"),
        )

    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await fenced(fence, "delayed")  # written before the phone lost the lease
    assert error_code(stale.value) == "lease_required"
    ok = await fenced(fence + 2, "current")
    assert ok.change.version == 5


async def test_pathological_json_is_invalid_argument(stub: Any) -> None:
    session = await open_session(stub, "alice")
    deep = "[" * 100_000 + "]" * 100_000
    for request in (
        session_pb2.OpenSessionRequest(device_id="d", initial_state_json='{"x": NaN}'),
        session_pb2.OpenSessionRequest(device_id="d", initial_state_json=deep),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.OpenSession(request, metadata=as_user("alice"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "initial_state_json" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyUpdate(
            session_pb2.ApplyUpdateRequest(
                session_id=session.session_id,
                device_id="phone",
                op_id="deep",
                base_version=1,
                epoch=1,
                patch_json='{"a": ' + deep + "}",
            ),
            metadata=as_user("alice"),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "patch_json" in (refused.value.details() or "")


async def test_presence_join_leave_and_expiry(pg_dsn: str, redis_url: str, amqp_url: str) -> None:
    config = dataclasses.replace(core_config(pg_dsn, redis_url, amqp_url), presence_ttl_seconds=1.0)
    async with running_core(config) as core, stub_for(core.port) as stub:
        session = await open_session(stub, "alice", device="phone")
        await stub.OpenSession(
            session_pb2.OpenSessionRequest(session_id=session.session_id, device_id="laptop"),
            metadata=as_user("alice"),
        )

        async def presence(
            device: str, action: session_pb2.PresenceAction.ValueType
        ) -> dict[str, bool]:
            reply = await stub.UpdatePresence(
                session_pb2.UpdatePresenceRequest(
                    session_id=session.session_id,
                    device_id=device,
                    edge_id="edge-a",
                    action=action,
                ),
                metadata=as_user("alice"),
            )
            return {d.device_id: d.online for d in reply.devices}

        assert await presence("phone", session_pb2.PRESENCE_ACTION_JOIN) == {
            "phone": True,
            "laptop": False,
        }
        assert (await presence("laptop", session_pb2.PRESENCE_ACTION_JOIN))["laptop"]
        assert await presence("laptop", session_pb2.PRESENCE_ACTION_LEAVE) == {
            "phone": True,
            "laptop": False,
        }
        # The edge stops refreshing (it crashed): the device expires on its own.
        await asyncio.sleep(1.3)
        reply = await stub.GetPresence(
            session_pb2.GetPresenceRequest(session_id=session.session_id), metadata=as_user("alice")
        )
        assert {d.device_id: d.online for d in reply.devices} == {"phone": False, "laptop": False}
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await presence("stranger", session_pb2.PRESENCE_ACTION_JOIN)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- per-user device cap (ClaimDevice) -----------------------------------------


async def claim(
    stub: Any,
    user: str,
    device: str,
    action: session_pb2.PresenceAction.ValueType = session_pb2.PRESENCE_ACTION_JOIN,
    *,
    edge: str = "edge-1",
) -> int:
    response = await stub.ClaimDevice(
        session_pb2.ClaimDeviceRequest(device_id=device, edge_id=edge, action=action),
        metadata=as_user(user),
    )
    return int(response.devices_online)


async def test_claim_device_caps_a_users_devices_across_edges(stub: Any) -> None:
    assert await claim(stub, "alice", "a", edge="edge-1") == 1
    assert await claim(stub, "alice", "b", edge="edge-2") == 2
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await claim(stub, "alice", "c", edge="edge-1")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_code(refused.value) == "device_cap"
    # The same device reconnecting (on any edge) is no new device.
    assert await claim(stub, "alice", "a", edge="edge-2") == 2
    # Another user has a cap of their own.
    assert await claim(stub, "bob", "c") == 1
    assert await claim(stub, "alice", "a", session_pb2.PRESENCE_ACTION_HEARTBEAT) == 2
    assert await claim(stub, "alice", "b", session_pb2.PRESENCE_ACTION_LEAVE) == 1
    assert await claim(stub, "alice", "c") == 2
    for bad in (
        session_pb2.ClaimDeviceRequest(action=session_pb2.PRESENCE_ACTION_JOIN),
        session_pb2.ClaimDeviceRequest(device_id="d"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await stub.ClaimDevice(bad, metadata=as_user("alice"))
        assert error_code(invalid.value) == "invalid_argument"
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await stub.ClaimDevice(
            session_pb2.ClaimDeviceRequest(device_id="a", action=session_pb2.PRESENCE_ACTION_JOIN)
        )
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_claimed_devices_expire_without_heartbeats(
    pg_dsn: str, redis_url: str, amqp_url: str
) -> None:
    config = core_config(
        pg_dsn, redis_url, amqp_url, presence_ttl_seconds=1.0, max_devices_per_user=2
    )
    async with running_core(config) as running, stub_for(running.port) as client:
        await claim(client, "alice", "a")
        await claim(client, "alice", "b")
        with pytest.raises(grpc.aio.AioRpcError):
            await claim(client, "alice", "c")
        await asyncio.sleep(1.2)  # a crashed edge's devices: no heartbeat, no LEAVE
        assert await claim(client, "alice", "c") == 1


async def test_claim_device_fails_open_when_redis_is_down(pg_dsn: str, amqp_url: str) -> None:
    with refused_port() as no_redis:
        config = core_config(
            pg_dsn, f"redis://127.0.0.1:{no_redis}/0", amqp_url, max_devices_per_user=1
        )
        async with running_core(config) as running, stub_for(running.port) as client:
            for device in ("a", "b", "c"):
                assert await claim(client, "alice", device) == 0


def user_update(
    user: str,
    session: Any,
    op_id: str,
    patch_json: str,
    base: int = 0,
    *,
    token: str | None = None,
) -> Any:
    """One ApplyUpdates item for `user`, with a token of `user` unless `token` is given."""
    return session_pb2.UserUpdate(
        user_id=user,
        token=token_for(user) if token is None else token,
        update=session_pb2.ApplyUpdateRequest(
            session_id=session.session_id,
            device_id="phone",
            op_id=op_id,
            base_version=base or session.version,
            epoch=session.epoch,
            patch_json=patch_json,
        ),
    )


async def test_apply_updates_answers_every_update_as_apply_update_would(stub: Any) -> None:
    one, two = await open_session(stub, "alice"), await open_session(stub, "alice")
    # Updates in one call are as concurrent as separate calls (no order among
    # them): "a" commits first so that "c" is stale against it.
    first = await update(stub, "alice", one, {"x": 1}, op_id="a")
    answer = await stub.ApplyUpdates(
        session_pb2.ApplyUpdatesRequest(
            updates=[
                user_update("mallory", one, "m", '{"x": 666}'),  # not mallory's session
                user_update("alice", two, "b", '{"y": 2}'),
                user_update("alice", one, "c", '{"x": 3}'),  # stale, overlaps "a"
                user_update("alice", two, "d", '{"y": 4}', token=""),  # no token
                user_update("alice", two, "e", "{not json"),
                user_update("alice", one, "a", '{"x": 1}'),  # "a" again
                # mallory's own token, naming alice: refused before any lookup
                user_update("alice", one, "f", '{"x": 7}', token=token_for("mallory")),
            ]
        ),
        timeout=10,
    )
    stolen, b, stale, anonymous, garbled, again, impostor = answer.results
    assert (stolen.refused.code, stolen.refused.status) == (
        "session_not_found",
        grpc.StatusCode.NOT_FOUND.value[0],
    )
    assert b.applied.change.version == 2 and b.applied.outcome == session_pb2.UPDATE_OUTCOME_APPLIED
    assert stale.refused.code == "conflict" and stale.refused.version == 2
    assert stale.refused.status == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert anonymous.refused.code == "unauthenticated"
    assert anonymous.refused.status == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert impostor.refused.code == "permission_denied"
    assert impostor.refused.status == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert garbled.refused.code == "invalid_argument"
    assert garbled.refused.message == "patch_json: not valid JSON"
    assert again.applied.replayed and again.applied.change.event_id == first.change.event_id
    got = await stub.GetSession(
        session_pb2.GetSessionRequest(session_id=one.session_id), metadata=as_user("alice")
    )
    assert got.version == 2 and json.loads(got.state_json) == {"x": 1}


async def test_apply_updates_refuses_an_oversized_call_whole(stub: Any) -> None:
    session = await open_session(stub, "alice")
    updates = [user_update("alice", session, f"op-{n}", "{}") for n in range(1001)]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ApplyUpdates(session_pb2.ApplyUpdatesRequest(updates=updates), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(refused.value) == "invalid_argument"
