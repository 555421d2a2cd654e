"""ws-edge against a real core, PostgreSQL, Redis and RabbitMQ.

Each bad input gets its documented error or close code while a well-behaved
device on the same replica keeps being served. One file (over 400 lines) on
purpose: its sections share the servers this target starts once; the pure
parts of the edge (connection_state, delivery, protocol, ratelimit, outbound)
have server-free tests of their own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import json
import os
import socket
import struct
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from libs.auth import testing
from libs.bus import messages, topology
from libs.bus.amqp import declare_exchange
from libs.client.client import SyncClient
from libs.core_client.client import Caller
from services.session_core.harness import as_user, core_config, running_core, stub_for
from services.ws_edge import app
from services.ws_edge.edge_testing import (
    Stack,
    expect,
    hello,
    http,
    metric,
    raw,
    running_stack,
    send,
    wait_until,
)
from syncbridge.session.v1 import session_pb2
from tools.servers import servers
from tools.servers.servers import Config

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

Make = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def make(pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path) -> Make:
    """`async with make(edges=2, max_frame_bytes=4096) as stack:` — a stack for this test."""
    return functools.partial(running_stack, pg_dsn, redis_url, amqp_url, tmp_path)


@pytest_asyncio.fixture
async def stack(make: Make) -> AsyncIterator[Stack]:
    async with make() as built:
        yield built


class Steady:
    """A well-behaved device updating its own session the whole time."""

    def __init__(self, stack: Stack, user: str = "bystander") -> None:
        self.client = SyncClient(stack.url(), device_id="steady", token=stack.token(user, 600))
        self.acked = 0
        self._first_ack = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Steady:
        await self.client.open(initial_state={"n": 0})
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._first_ack.wait(), 10)
        return self

    async def _run(self) -> None:
        while True:
            await self.client.update({"n": self.acked + 1})
            self.acked += 1
            self._first_ack.set()
            await asyncio.sleep(0.02)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        assert not self._task.done(), self._task  # it kept going the whole time
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.client.update({"n": -1})  # and is still served after everything else
        assert self.client.stats.close_codes == [], self.client.stats
        await self.client.close()


def new_op() -> str:
    return uuid.uuid4().hex


async def opened(stack: Stack, user: str = "alice", device: str = "phone") -> tuple[Any, Any]:
    ws = await raw(stack, user)
    await hello(ws, device)
    await send(ws, {"type": "open", "initial_state": {"page": 1}, "ref": "o"})
    return ws, (await expect(ws, "snapshot"))["session"]


async def test_the_edge_reaches_a_core_that_requires_mtls(make: Make) -> None:
    # Core admits only the certificate identities it is configured to: the edge
    # presents ws-edge's, on the unary path (open) and the batched one (update).
    async with make(mtls=True) as stack:
        ws, session = await opened(stack)
        update = {"op_id": new_op(), "base_version": session["version"], "epoch": session["epoch"]}
        await send(ws, {"type": "update", **update, "patch": {"x": 1}, "ref": "u"})
        assert (await expect(ws, "ack"))["version"] == session["version"] + 1
        status, _ = await http(stack.http(), "GET", "/health/ready")
        assert status == 200
        await ws.close()


# -- fan-out, resume ---------------------------------------------------------


async def test_devices_on_two_replicas_see_every_update_in_order(make: Make) -> None:
    async with make(edges=2) as stack:
        await _test_devices_on_two_replicas_see_every_update_in_order(stack)


async def _test_devices_on_two_replicas_see_every_update_in_order(stack: Stack) -> None:
    token = stack.token()
    phone = SyncClient(stack.url(0), device_id="phone", token=token)
    laptop = SyncClient(stack.url(1), device_id="laptop", token=token)
    session = await phone.open(initial_state={"page": 0})
    await laptop.open(session["session_id"])
    seen: list[int] = []
    laptop.on_change(lambda m: seen.append(m["version"]) if m["type"] == "change" else None)
    acks = [await phone.update({"page": n}) for n in range(1, 21)]
    await laptop.wait_for_version(acks[-1].version)
    assert seen == list(range(acks[0].version, acks[-1].version + 1))
    assert laptop.state == phone.state == {"page": 20}
    moved = await laptop.handoff("laptop")
    await phone.wait_for_version(moved.version)
    await laptop.wait_for_version(moved.version)
    assert phone.active_device == laptop.active_device == "laptop"
    await phone.close()
    await laptop.close()


async def test_lost_event_without_later_change_is_caught_up(make: Make) -> None:
    async with make(presence_interval_seconds=0.3) as stack:
        await _test_lost_event_without_later_change_is_caught_up(stack)


async def _test_lost_event_without_later_change_is_caught_up(stack: Stack) -> None:
    ws, session = await opened(stack)
    bus = stack.edges[0].replica.fanout
    deliver = bus._on_change
    lost: list[int] = []

    def drop_once(change: Any) -> object:
        # The event never reaches the device (as if dropped from the replica's queue),
        # and no later change of the session will reveal the hole. Older events
        # (the session's creation, relayed late) pass.
        if change.version <= session["version"]:
            return deliver(change)
        bus._on_change = deliver
        lost.append(change.version)
        return None

    bus._on_change = drop_once
    update = {"op_id": new_op(), "base_version": session["version"], "patch": {"page": 2}}
    await send(ws, {"type": "update", "epoch": session["epoch"], "ref": "u", **update})
    ack = await expect(ws, "ack")
    await wait_until(lambda: _true(lost), 5)
    assert lost == [ack["version"]]
    # No further writes: the periodic position check finds the device behind.
    change = await expect(ws, "change", within=3.0)
    assert change["version"] == ack["version"]
    await ws.close()


async def _true(items: list[Any]) -> bool:
    return bool(items)


async def test_a_poison_event_is_set_aside_and_the_stream_goes_on(stack: Stack) -> None:
    phone, session = await opened(stack, device="phone")
    laptop = await raw(stack)
    await hello(laptop, "laptop")
    await send(laptop, {"type": "open", "session_id": session["session_id"], "ref": "o"})
    await expect(laptop, "snapshot")
    connection = await aio_pika.connect(stack.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await declare_exchange(channel)
        await exchange.publish(
            aio_pika.Message(
                b"\xff not a change",
                type=messages.CHANGE_TYPE,
                headers=topology.user_headers("alice"),
            ),
            routing_key=topology.routing_key("alice"),
        )
        dead = await channel.declare_queue(topology.DEAD_LETTER_QUEUE, passive=True)
        copy = None
        async with asyncio.timeout(10):
            while copy is None:
                copy = await dead.get(fail=False)
                await asyncio.sleep(0.02)
        await copy.ack()
    assert copy.body == b"\xff not a change"
    assert copy.headers[topology.USER_HEADER] == "alice"
    assert copy.headers[topology.EDGE_HEADER] == stack.edges[0].replica.edge_id
    assert "not a Change" in str(copy.headers[topology.REASON_HEADER])
    assert await metric(stack.http(), "syncbridge_edge_undeliverable_events_total") == 1
    # The queue did not stall: the next change of the session reaches the other device.
    update = {"op_id": new_op(), "base_version": session["version"], "patch": {"page": 2}}
    await send(laptop, {"type": "update", "epoch": session["epoch"], "ref": "u", **update})
    ack = await expect(laptop, "ack")
    seen = [(await expect(phone, "change"))["version"]]
    while seen[-1] < ack["version"]:  # the laptop's attach comes first
        seen.append((await expect(phone, "change"))["version"])
    assert seen[-1] == ack["version"]
    await phone.close()
    await laptop.close()


async def test_resume_replays_what_was_missed_or_sends_a_snapshot(stack: Stack) -> None:
    ws, session = await opened(stack)
    sid = session["session_id"]
    for n in range(5):
        await send(
            ws,
            {
                "type": "update",
                "op_id": new_op(),
                "base_version": session["version"] + n,
                "epoch": 1,
                "patch": {"n": n},
            },
        )
        await expect(ws, "ack")
    await ws.close()
    again = await raw(stack)
    await hello(again, "phone")
    await send(
        again,
        {
            "type": "resume",
            "session_id": sid,
            "epoch": 1,
            "version": session["version"],
            "ref": "r",
        },
    )
    replayed = [await expect(again, "change") for _ in range(5)]
    assert [c["version"] for c in replayed] == list(
        range(session["version"] + 1, session["version"] + 6)
    )
    done = await expect(again, "ack")
    assert done == {
        "type": "ack",
        "of": "resume",
        "ref": "r",
        "session_id": sid,
        "epoch": 1,
        "version": session["version"] + 5,
        "changes": 5,
    }
    await again.close()
    other_epoch = await raw(stack)
    await hello(other_epoch, "phone")
    await send(other_epoch, {"type": "resume", "session_id": sid, "epoch": 7, "version": 3})
    snapshot = await expect(other_epoch, "snapshot")
    assert snapshot["recovered"] is False and snapshot["session"]["state"] == {"page": 1, "n": 4}
    await other_epoch.close()
    address = stack.http()
    assert await metric(address, "syncbridge_edge_resumes_total") == 2


async def test_resume_far_behind_gets_a_snapshot_not_a_slow_consumer_close(
    stack: Stack,
) -> None:
    # More missed changes than the outbound queue holds (256): replaying them all in
    # one pass overflowed it (4008) and the device resumed from the same place forever.
    ws, session = await opened(stack)
    sid = session["session_id"]
    await ws.close()
    core = stack.edges[0].replica.core
    missed = 600
    for n in range(missed):
        await core.apply_update(
            Caller("alice", stack.token("alice")),
            session_id=sid,
            device_id="laptop",
            op_id=new_op(),
            base_version=session["version"] + n,
            epoch=session["epoch"],
            patch={"n": n},
        )
    again = await raw(stack)
    await hello(again, "phone")
    await send(
        again,
        {
            "type": "resume",
            "session_id": sid,
            "epoch": session["epoch"],
            "version": session["version"],
            "ref": "r",
        },
    )
    snapshot = await expect(again, "snapshot", within=10)
    assert snapshot["recovered"] is False
    assert snapshot["session"]["version"] == session["version"] + missed
    assert snapshot["session"]["state"] == {"page": 1, "n": missed - 1}
    # Still connected and served from there on.
    await send(
        again,
        {
            "type": "update",
            "op_id": new_op(),
            "base_version": session["version"] + missed,
            "epoch": session["epoch"],
            "patch": {"n": missed},
        },
    )
    assert (await expect(again, "ack"))["version"] == session["version"] + missed + 1
    await again.close()


async def test_replica_queue_is_bound_for_connected_users_only(
    stack: Stack, amqp_url: str, server_config: Config
) -> None:
    vhost = amqp_url.rsplit("/", 1)[1]
    queue = urllib.parse.quote(stack.edges[0].replica.fanout.queue_name, safe="")

    async def bound_keys() -> set[str]:
        status, body = servers.management_request(
            "GET",
            f"queues/{vhost}/{queue}/bindings",
            port=server_config.rabbitmq_management_port,
        )
        assert status == 200, body
        return {b["routing_key"] for b in json.loads(body) if b["source"] == topology.EXCHANGE}

    alice = topology.routing_key("alice")
    phone, laptop = await raw(stack), await raw(stack)
    await hello(phone, "phone")
    assert await bound_keys() == {alice}  # bound before the welcome: nothing is missed
    await hello(laptop, "laptop")
    await phone.close()
    await asyncio.sleep(0.3)
    assert await bound_keys() == {alice}  # a device of alice is still here

    async def unbound() -> bool:
        return await bound_keys() == set()

    await laptop.close()
    await wait_until(unbound)


# -- bad input -----------------------------------------------------------------


async def test_bad_messages_get_stable_error_codes(stack: Stack) -> None:
    async with Steady(stack):
        ws = await raw(stack)
        await send(ws, {"type": "open"})
        assert (await expect(ws, "error"))["code"] == "hello_required"
        await hello(ws)
        await send(ws, {"type": "update", "op_id": "o", "base_version": 1, "epoch": 1, "patch": {}})
        assert (await expect(ws, "error"))["code"] == "no_session"
        cases: list[tuple[str, str]] = [
            ("{not json", "malformed_json"),
            ("[1,2,3]", "malformed_json"),
            ('{"type":"subscribe","ref":"x"}', "unknown_type"),
            ('{"type":"update","op_id":"o","epoch":1,"patch":{}}', "missing_field"),
            ('{"type":"resume","session_id":"s","epoch":"1","version":0}', "invalid_field"),
            ('{"type":"hello","device_id":"again"}', "already_hello"),
        ]
        for frame, code in cases:
            await ws.send(frame)
            error = await expect(ws, "error")
            assert error["code"] == code, frame
        await ws.send(b"\x00binary")
        assert (await expect(ws, "error"))["code"] == "malformed_json"
        # Still a working connection after all that.
        await send(ws, {"type": "open", "ref": "ok"})
        assert (await expect(ws, "snapshot"))["ref"] == "ok"
        await ws.close()


async def test_another_users_session_is_not_found(stack: Stack) -> None:
    async with Steady(stack):
        alice, session = await opened(stack, "alice")
        mallory = await raw(stack, "mallory")
        await hello(mallory, "evil")
        for attempt in (
            {"type": "open", "session_id": session["session_id"], "ref": "a"},
            {"type": "resume", "session_id": session["session_id"], "epoch": 1, "version": 0},
        ):
            await send(mallory, attempt)
            error = await expect(mallory, "error")
            assert error["code"] == "session_not_found"
        _, listed = await http(
            stack.http(),
            "GET",
            "/v1/sessions",
            headers={"Authorization": f"Bearer {stack.token('mallory')}"},
        )
        assert listed["sessions"] == []
        await mallory.close()
        await alice.close()


async def test_oversize_frame_closes_1009(make: Make) -> None:
    async with make(max_frame_bytes=4096) as stack:
        await _test_oversize_frame_closes_1009(stack)


async def _test_oversize_frame_closes_1009(stack: Stack) -> None:
    async with Steady(stack):
        ws, _ = await opened(stack)
        await ws.send(json.dumps({"type": "update", "blob": "x" * 8000}))
        with pytest.raises(ConnectionClosed) as closed:
            await expect(ws, "never")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_refused_upgrades(make: Make) -> None:
    async with make(allowed_origins=("https://app.harmonyflow.io",)) as stack:
        await _test_refused_upgrades(stack)


async def _test_refused_upgrades(stack: Stack) -> None:
    async with Steady(stack):
        url = stack.url()
        good = stack.token()
        forged = testing.sign(testing.claims(sub="alice"), testing.ec_key(), "ES256")
        expired = stack.token(lifetime=-60)
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"origin": "https://evil.example", "token": good}, 403, "Origin not allowed"),
            ({}, 401, "token_missing"),
            ({"token": forged}, 401, "token_invalid"),
            ({"token": expired}, 401, "token_expired"),
        ]
        # Sanic routes the trailing-slash spelling to the same handler: same checks.
        for target in (url, url + "/", url.replace("/session/", "//session/")):
            for case, status, reason in cases:
                headers = {"Authorization": f"Bearer {case['token']}"} if "token" in case else {}
                with pytest.raises(InvalidStatus) as refused:
                    await SyncConnect(target, headers, case.get("origin")).open()
                assert refused.value.response.status_code == status, (target, case)
                body = json.loads(refused.value.response.body or b"{}")
                assert body["error"]["message"] == reason
        # A browser on the allowlist, token in the subprotocol list.
        ok = await SyncConnect(
            url, {}, "https://app.harmonyflow.io", ["syncbridge.v1", f"bearer.{good}"]
        ).open()
        assert ok.subprotocol == "syncbridge.v1"
        await ok.close()


class SyncConnect:
    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        origin: str | None = None,
        subprotocols: list[str] | None = None,
    ) -> None:
        self.url, self.headers, self.origin, self.subprotocols = url, headers, origin, subprotocols

    async def open(self) -> Any:
        from websockets.asyncio.client import connect

        return await connect(
            self.url,
            additional_headers=self.headers,
            origin=None if self.origin is None else Origin(self.origin),
            subprotocols=None
            if self.subprotocols is None
            else [Subprotocol(name) for name in self.subprotocols],
            proxy=None,
        )


async def test_update_flood_is_refused_then_closed_4029(make: Make) -> None:
    async with make(rate_per_second=20.0, rate_burst=10, rate_max_refused=20) as stack:
        await _test_update_flood_is_refused_then_closed_4029(stack)


async def _test_update_flood_is_refused_then_closed_4029(stack: Stack) -> None:
    async with Steady(stack):
        ws, session = await opened(stack)
        for n in range(200):
            await send(
                ws,
                {
                    "type": "update",
                    "op_id": f"flood-{n}",
                    "base_version": session["version"],
                    "epoch": 1,
                    "patch": {f"k{n}": n},
                },
            )
        codes: list[str] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["type"] == "error":
                    codes.append(message["code"])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029
        assert "rate_limited" in codes
        assert await metric(stack.http(), 'syncbridge_edge_closes_total{code="4029"}') == 1


async def test_device_cap_closes_4409(make: Make) -> None:
    async with make(max_devices_per_user=2) as stack:
        await _test_device_cap_closes_4409(stack)


async def _test_device_cap_closes_4409(stack: Stack) -> None:
    first, second, third = [await raw(stack) for _ in range(3)]
    await hello(first, "a")
    await hello(second, "b")
    await hello(third, "a")  # the same device again is no new device (it replaces `first`)
    fourth = await raw(stack)
    await send(fourth, {"type": "hello", "device_id": "c"})
    with pytest.raises(ConnectionClosed) as closed:
        await expect(fourth, "welcome")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
    for ws in (first, second, third):
        await ws.close()


async def test_device_cap_holds_across_replicas(make: Make) -> None:
    async with make(edges=2, max_devices_per_user=2) as stack:
        user = f"cap-{uuid.uuid4().hex[:8]}"
        a = await raw(stack, user, 0)
        await hello(a, "a")
        b = await raw(stack, user, 1)
        await hello(b, "b")
        third = await raw(stack, user, 1)  # a third device, on the other replica
        await send(third, {"type": "hello", "device_id": "c"})
        with pytest.raises(ConnectionClosed) as closed:
            await expect(third, "welcome")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
        # A device already online, reconnecting through the other replica, is let in.
        again = await raw(stack, user, 1)
        await hello(again, "a")
        # LEAVE on close frees the slot for a new device, on any replica.
        await b.close()

        async def admitted() -> bool:
            ws = await raw(stack, user, 0)
            await send(ws, {"type": "hello", "device_id": "c"})
            try:
                await expect(ws, "welcome")
            except ConnectionClosed:
                return False
            await ws.close()
            return True

        await wait_until(admitted, 5, 0.2)
        for ws in (a, again):
            await ws.close()


async def test_same_device_again_replaces_the_older_connection_4010(make: Make) -> None:
    async with make(send_timeout_seconds=1.5) as stack:
        await _test_same_device_again_replaces_the_older_connection_4010(stack)


async def _test_same_device_again_replaces_the_older_connection_4010(stack: Stack) -> None:
    tablet, session = await opened(stack, "alice", "tablet")
    address = stack.http()
    # The older connection never reads and has frames queued: its close (flush, then
    # handshake) and so its cleanup come well after the newer connection has joined
    # the session's presence, and must not then report the device as gone.
    older = await stalled_device(stack, session["session_id"], device="phone")
    await wait_until(lambda: _count(address, "syncbridge_edge_open_connections", 2))
    replica = stack.edges[0].replica

    def older_stuck() -> bool:
        return any(
            conn.device_id == "phone" and conn._outbound.pending for conn in replica.connections
        )

    async with stub_for(stack.core.port) as stub:

        async def attached() -> bool:
            got = await stub.GetSession(
                session_pb2.GetSessionRequest(session_id=session["session_id"]),
                metadata=as_user("alice"),
            )
            return bool(got.version > session["version"])

        await wait_until(attached)
    version, blob = session["version"] + 1, "x" * 50_000  # +1: the phone attached
    for n in range(400):
        update = {"op_id": new_op(), "base_version": version, "epoch": session["epoch"]}
        await send(tablet, {"type": "update", **update, "patch": {"blob": f"{n}{blob}"}})
        version = (await expect(tablet, "ack", within=10))["version"]
        if older_stuck() and n >= 5:
            break
    else:
        raise AssertionError("the stalled device never stopped taking frames")
    newer = await raw(stack, "alice")
    await hello(newer, "phone")
    await send(newer, {"type": "open", "session_id": session["session_id"], "ref": "o"})
    current = (await expect(newer, "snapshot"))["session"]

    async def replaced() -> bool:
        return await metric(address, 'syncbridge_edge_closes_total{code="4010"}') == 1

    await wait_until(replaced)
    await wait_until(lambda: _count(address, "syncbridge_edge_open_connections", 2), 10)
    await asyncio.sleep(0.5)  # the older connection's cleanup has run: no presence LEAVE
    async with stub_for(stack.core.port) as stub:
        presence = await stub.GetPresence(
            session_pb2.GetPresenceRequest(session_id=session["session_id"]),
            metadata=as_user("alice"),
        )
    assert {d.device_id: d.online for d in presence.devices} == {"tablet": True, "phone": True}
    older.close()
    # Still served.
    await send(
        newer,
        {
            "type": "update",
            "op_id": new_op(),
            "base_version": current["version"],
            "epoch": current["epoch"],
            "patch": {"page": 2},
        },
    )
    assert (await expect(newer, "ack"))["version"] == current["version"] + 1
    await newer.close()
    await tablet.close()


async def test_no_hello_closes_4408(make: Make) -> None:
    async with make(hello_timeout_seconds=0.3) as stack:
        await _test_no_hello_closes_4408(stack)


async def _test_no_hello_closes_4408(stack: Stack) -> None:
    ws = await raw(stack)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


# -- tokens --------------------------------------------------------------------


async def test_token_refresh_expiry_and_another_users_token(make: Make) -> None:
    async with make(token_grace_seconds=0.5) as stack:
        await _test_token_refresh_expiry_and_another_users_token(stack)


async def _test_token_refresh_expiry_and_another_users_token(stack: Stack) -> None:
    refreshed = await raw_with(stack, stack.token("alice", lifetime=2))
    lapsed = await raw_with(stack, stack.token("alice", lifetime=2))
    hijack = await raw_with(stack, stack.token("alice", lifetime=60))
    for ws, device in ((refreshed, "a"), (lapsed, "b"), (hijack, "c")):
        await hello(ws, device)

    forged = testing.sign(testing.claims(sub="alice"), testing.ec_key(), "ES256")
    await send(refreshed, {"type": "refresh", "token": forged, "ref": "f"})
    assert (await expect(refreshed, "error"))["code"] == "token_invalid"
    await send(refreshed, {"type": "refresh", "token": stack.token("alice", 60), "ref": "r"})
    ack = await expect(refreshed, "ack")
    assert ack["of"] == "refresh" and ack["token_expires_at"] > 0

    await send(hijack, {"type": "refresh", "token": stack.token("mallory", 60)})
    with pytest.raises(ConnectionClosed) as forbidden:
        await expect(hijack, "ack")
    assert forbidden.value.rcvd is not None and forbidden.value.rcvd.code == 4403

    warning = await expect(lapsed, "error", within=5)
    assert warning["code"] == "token_expiring"
    with pytest.raises(ConnectionClosed) as expired:
        await expect(lapsed, "ack", within=5)
    assert expired.value.rcvd is not None and expired.value.rcvd.code == 4001

    # The first token has expired by now (the lapsed one, as old, was closed 4001):
    # core verifies the token itself, so these pass only with the refreshed one
    # forwarded, on the unary path (open) and the batched one (update).
    await send(refreshed, {"type": "open", "ref": "still"})
    snapshot = await expect(refreshed, "snapshot")
    assert snapshot["ref"] == "still"
    session = snapshot["session"]
    update = {"op_id": new_op(), "base_version": session["version"], "epoch": session["epoch"]}
    await send(refreshed, {"type": "update", **update, "patch": {"x": 1}, "ref": "u"})
    assert (await expect(refreshed, "ack"))["of"] == "update"
    await refreshed.close()


async def test_in_the_grace_period_core_refuses_the_expired_token_until_refresh(
    make: Make,
) -> None:
    # The edge keeps an expired connection open for a refresh; core, verifying the
    # token itself, does not accept the expired one meanwhile: the device is told
    # to refresh, and after the refresh the same request passes.
    async with make(token_grace_seconds=10.0) as stack:
        ws = await raw_with(stack, stack.token("alice", lifetime=1))
        await hello(ws, "phone")
        assert (await expect(ws, "error", within=5))["code"] == "token_expiring"
        await send(ws, {"type": "open", "ref": "late"})
        refused = await expect(ws, "error")
        assert (refused["code"], refused["ref"]) == ("token_expiring", "late")
        await send(ws, {"type": "refresh", "token": stack.token("alice", 60), "ref": "r"})
        assert (await expect(ws, "ack"))["of"] == "refresh"
        await send(ws, {"type": "open", "ref": "again"})
        assert (await expect(ws, "snapshot"))["ref"] == "again"
        await ws.close()


async def raw_with(stack: Stack, token: str) -> Any:
    from websockets.asyncio.client import connect

    return await connect(
        stack.url(), additional_headers={"Authorization": f"Bearer {token}"}, proxy=None
    )


# -- peers that stop reading or answering ---------------------------------------


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (RFC 6455 §5.3)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _close_codes(stream: bytes) -> list[int]:
    """Close codes of the server frames in `stream` (stops at a truncated frame)."""
    codes, offset = [], 0
    while offset + 2 <= len(stream):
        opcode, length = stream[offset] & 0x0F, stream[offset + 1] & 0x7F
        offset += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", stream, offset)
            offset += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", stream, offset)
            offset += 8
        if offset + length > len(stream):
            break
        if opcode == 0x8 and length >= 2:
            codes.append(struct.unpack_from("!H", stream, offset)[0])
        offset += length
    return codes


async def stalled_device(stack: Stack, session_id: str, device: str | None = None) -> socket.socket:
    """A device that opens the session, then never reads again (tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, stack.http())
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /session/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {stack.token()}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    # A device id of its own: a second connection of one device would replace the first.
    device = device or f"stalled-{uuid.uuid4().hex[:8]}"
    hello_frame = json.dumps({"type": "hello", "device_id": device})
    await loop.sock_sendall(sock, _frame(hello_frame.encode()))
    await loop.sock_sendall(
        sock, _frame(json.dumps({"type": "open", "session_id": session_id}).encode())
    )
    return sock


async def read_all(sock: socket.socket, within: float = 10.0) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(within):
            while chunk := await loop.sock_recv(sock, 1 << 20):
                data += chunk
                if 4008 in _close_codes(data[-64:]) or data.endswith(b"slow consumer"):
                    break
    return data


async def test_reader_that_stops_reading_is_closed_4008(make: Make) -> None:
    async with make(outbound_queue=8, send_timeout_seconds=2.0, rate_per_second=1000.0) as stack:
        await _test_reader_that_stops_reading_is_closed_4008(stack)


async def _test_reader_that_stops_reading_is_closed_4008(stack: Stack) -> None:
    address = stack.http()
    # The writer's own echoes are big too: it writes through a replica with the
    # default queue, so only the stalled device meets the tiny one.
    await stack.add_edge()
    writer = SyncClient(stack.url(1), device_id="writer", token=stack.token())
    session = await writer.open()
    async with Steady(stack):
        stalled = await stalled_device(stack, session["session_id"])
        await wait_until(lambda: _count(address, "syncbridge_edge_active_sessions", 2))
        await asyncio.sleep(0.3)
        blob = "x" * 50_000
        for n in range(200):
            await writer.update({"blob": f"{n}{blob}"})
            if await metric(address, "syncbridge_edge_slow_consumer_disconnects_total") >= 1:
                break
        else:
            raise AssertionError("the stalled device was never found slow")
        stream = await read_all(stalled)
        stalled.close()
        assert 4008 in _close_codes(stream)
        # Its memory is released: only the bystander stays connected here.
        await wait_until(lambda: _count(address, "syncbridge_edge_open_connections", 1), 10)
    await writer.update({"after": True})
    assert writer.stats.close_codes == []
    await writer.close()


async def _count(address: tuple[str, int], name: str, expected: float) -> bool:
    return await metric(address, name) == expected


async def test_silent_peer_is_dropped(make: Make) -> None:
    async with make(ping_interval_seconds=0.3, ping_timeout_seconds=0.3) as stack:
        await _test_silent_peer_is_dropped(stack)


async def _test_silent_peer_is_dropped(stack: Stack) -> None:
    address = stack.http()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, address)
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        (
            "GET /session/connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {stack.token()}\r\n\r\n"
        ).encode(),
    )
    await loop.sock_sendall(sock, _frame(b'{"type":"hello","device_id":"mute"}'))
    await wait_until(lambda: _count(address, "syncbridge_edge_open_connections", 1))
    # Never answers the server's pings: dropped within ping interval + timeout.
    await wait_until(lambda: _count(address, "syncbridge_edge_open_connections", 0), 5)
    sock.close()


# -- drain, health, metrics --------------------------------------------------------


async def test_health_shapes_and_metrics(stack: Stack) -> None:
    address = stack.http()
    status, live = await http(address, "GET", "/health/live")
    assert status == 200 and list(live) == ["status", "uptime"] and live["status"] == "alive"
    assert live["uptime"].endswith("s") and live["uptime"][:-1].isdigit()
    await wait_until(lambda: _ready(address, 200))
    _, ready = await http(address, "GET", "/health/ready")
    assert list(ready) == ["status", "timestamp"] and ready["status"] == "healthy"
    assert ready["timestamp"].endswith("Z") and len(ready["timestamp"]) == 20
    ws, _ = await opened(stack)
    _, text = await http(address, "GET", "/metrics")
    for name in (
        "syncbridge_edge_open_connections 1.0",
        "syncbridge_edge_active_sessions 1.0",
        'syncbridge_edge_messages_total{direction="in",type="hello"} 1.0',
        'syncbridge_edge_messages_total{direction="out",type="snapshot"} 1.0',
        "syncbridge_edge_update_ack_latency_seconds_bucket",
        "syncbridge_edge_fanout_latency_seconds_bucket",
        "syncbridge_edge_slow_consumer_disconnects_total 0.0",
        "syncbridge_edge_core_rpc_latency_seconds_bucket",
        "process_resident_memory_bytes",
    ):
        assert name in text, name
    await ws.close()


async def test_fanout_latency_counts_live_changes_only(stack: Stack) -> None:
    registry = stack.edges[0].replica.registry

    def observed() -> float:
        return registry.get_sample_value("syncbridge_edge_fanout_latency_seconds_count") or 0.0

    ws, session = await opened(stack, "alice", "phone")
    for n in range(3):
        await send(
            ws,
            {
                "type": "update",
                "op_id": new_op(),
                "base_version": session["version"] + n,
                "epoch": session["epoch"],
                "patch": {"n": n},
            },
        )
    seen = {"ack": 0, "change": 0}
    async with asyncio.timeout(5):
        while seen != {"ack": 3, "change": 3}:  # changes: live fan-out to the writer itself
            kind = json.loads(await ws.recv())["type"]
            if kind in seen:
                seen[kind] += 1

    async def three_live() -> bool:
        return observed() == 3

    await wait_until(three_live)
    live = observed()
    # Another device resumes from the start: three changes replayed from core.
    late = await raw(stack, "alice")
    await hello(late, "tablet")
    await send(
        late,
        {
            "type": "resume",
            "session_id": session["session_id"],
            "epoch": session["epoch"],
            "version": session["version"],
        },
    )
    assert (await expect(late, "ack"))["changes"] == 3
    assert observed() == live
    await late.close()
    await ws.close()


async def test_ready_is_503_while_core_is_unreachable(
    make: Make, pg_dsn: str, redis_url: str, amqp_url: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        core_port = int(probe.getsockname()[1])
    config = dataclasses.replace(core_config(pg_dsn, redis_url, amqp_url), grpc_port=core_port)
    async with make(edges=0) as stack:
        edge = await app.start(
            dataclasses.replace(stack.config(), core_target=f"127.0.0.1:{core_port}")
        )
        stack.edges.append(edge)
        address = stack.http()
        async with running_core(config):
            await wait_until(lambda: _ready(address, 200), 10)
        await wait_until(lambda: _ready(address, 503), 10)
        status, body = await http(address, "GET", "/health/ready")
        assert status == 503
        assert list(body) == ["status", "timestamp", "checks"]
        assert body["status"] == "unhealthy" and body["checks"] == {"core": False}
        assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == 20
        async with running_core(config):
            await wait_until(lambda: _ready(address, 200), 10)
            _, body = await http(address, "GET", "/health/ready")
            assert list(body) == ["status", "timestamp"] and body["status"] == "healthy"


async def _ready(address: tuple[str, int], status: int) -> bool:
    return (await http(address, "GET", "/health/ready"))[0] == status


async def test_drain_closes_1001_and_refuses_new_upgrades(stack: Stack) -> None:
    address = stack.http()
    clients = [await raw(stack, f"user{n}") for n in range(6)]
    for n, ws in enumerate(clients):
        await hello(ws, f"d{n}")
    edge = stack.edges[0]
    draining = asyncio.create_task(edge.replica.drain())
    await wait_until(lambda: _ready(address, 503), 2)
    _, body = await http(address, "GET", "/health/ready")
    assert body["status"] == "draining"
    with pytest.raises(InvalidStatus) as refused:
        await raw(stack)
    assert refused.value.response.status_code == 503
    codes = []
    for ws in clients:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        codes.append(closed.value.rcvd.code if closed.value.rcvd else 1006)
    await draining
    assert codes == [1001] * 6


async def test_drain_with_stalled_readers_ends_within_the_grace(make: Make) -> None:
    async with make(edges=2, outbound_queue=2000, drain_batches=10) as stack:
        await _test_drain_with_stalled_readers_ends_within_the_grace(stack)


async def _test_drain_with_stalled_readers_ends_within_the_grace(stack: Stack) -> None:
    edge = stack.edges[0]
    writer = SyncClient(stack.url(1), device_id="writer", token=stack.token())
    session = await writer.open()
    stalled = [await stalled_device(stack, session["session_id"]) for _ in range(2)]
    clients = [await raw(stack, f"user{n}") for n in range(6)]
    for n, ws in enumerate(clients):
        await hello(ws, f"d{n}")

    def stuck() -> int:
        return sum(
            1
            for conn in edge.replica.connections
            if conn.user_id == "alice" and (conn._outbound.pending or conn._outbound._busy)
        )

    blob = "x" * 50_000
    for n in range(400):
        await writer.update({"blob": f"{n}{blob}"})
        if stuck() == 2 and n >= 20:
            break
    else:
        raise AssertionError("the stalled devices never stopped taking frames")
    assert await metric(stack.http(), "syncbridge_edge_slow_consumer_disconnects_total") == 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    shutdown = asyncio.create_task(edge.shutdown())
    codes = []
    for ws in clients:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        codes.append(closed.value.rcvd.code if closed.value.rcvd else 1006)
    await asyncio.wait_for(shutdown, 10)
    took = loop.time() - started
    assert codes == [1001] * 6
    assert took <= edge.replica.config.grace_seconds, took
    for sock in stalled:
        sock.close()
    await writer.close()
