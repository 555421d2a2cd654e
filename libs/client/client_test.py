"""The client against a scripted server: resume, re-sent op_ids, gaps, fatal closes, refresh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from libs.backoff.backoff import Backoff
from libs.client.client import ClientClosed, ClientError, SyncClient

pytestmark = pytest.mark.asyncio

Script = Callable[[ServerConnection, int], Awaitable[None]]


class FakeEdge:
    """Runs `script(ws, n)` for the n-th connection (from 0); records what clients sent."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.received: list[dict[str, Any]] = []
        self.server: Server | None = None

    async def _handle(self, ws: ServerConnection) -> None:
        n = self.connections
        self.connections += 1
        await self.script(ws, n)

    async def recv(self, ws: ServerConnection) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await ws.recv())
        self.received.append(message)
        return message

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/session/connect"


@pytest_asyncio.fixture
async def edge_factory() -> AsyncIterator[Callable[[Script], Awaitable[FakeEdge]]]:
    servers: list[Server] = []

    async def start(script: Script) -> FakeEdge:
        edge = FakeEdge(script)
        edge.server = await serve(
            edge._handle, "127.0.0.1", 0, subprotocols=[Subprotocol("syncbridge.v1")]
        )
        servers.append(edge.server)
        return edge

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def session(version: int, state: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "session_id": "s1",
        "epoch": 1,
        "version": version,
        "state": state or {},
        "active_device": "phone",
        "lease_fence": 1,
        "devices": [],
        "updated_at": "2026-02-11T20:55:00Z",
        "expires_at": "2026-02-18T20:55:00Z",
    }


async def greet(edge: FakeEdge, ws: ServerConnection, expires_at: int = 0) -> None:
    hello = await edge.recv(ws)
    assert hello["type"] == "hello"
    await ws.send(
        json.dumps(
            {"type": "welcome", "ref": hello["ref"], "token_expires_at": expires_at, "limits": {}}
        )
    )


def snapshot(
    ref: Any, version: int, state: dict[str, Any] | None = None, *, recovered: bool = True
) -> str:
    """The edge's answer to open/resume: the session as it stands."""
    return json.dumps(
        {"type": "snapshot", "ref": ref, "recovered": recovered, "session": session(version, state)}
    )


def change(version: int, patch: dict[str, Any], op_id: str = "") -> str:
    return json.dumps(
        {
            "type": "change",
            "session_id": "s1",
            "epoch": 1,
            "version": version,
            "kind": "update",
            "device_id": "phone",
            "committed_at": "2026-02-11T20:55:00Z",
            "patch": patch,
            "op_id": op_id,
        }
    )


def fast() -> Backoff:
    return Backoff(base=0.01, cap=0.05)


async def test_unacked_update_is_resent_with_its_op_id_after_a_resume(
    edge_factory: Callable[[Script], Awaitable[FakeEdge]],
) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await greet(edge, ws)
        if n == 0:
            opened = await edge.recv(ws)
            await ws.send(snapshot(opened["ref"], 1, {"page": 1}))
            await edge.recv(ws)  # the update: cut the line before answering
            ws.transport.abort()
            return
        resume = await edge.recv(ws)
        assert (resume["type"], resume["version"]) == ("resume", 1)
        await ws.send(
            json.dumps(
                {
                    "type": "ack",
                    "of": "resume",
                    "ref": resume["ref"],
                    "session_id": "s1",
                    "epoch": 1,
                    "version": 1,
                    "changes": 0,
                }
            )
        )
        again = await edge.recv(ws)
        await ws.send(
            json.dumps(
                {
                    "type": "ack",
                    "of": "update",
                    "op_id": again["op_id"],
                    "session_id": "s1",
                    "epoch": 1,
                    "version": 2,
                    "outcome": "applied",
                    "replayed": True,
                }
            )
        )
        await ws.send(change(2, {"page": 2}, again["op_id"]))
        await ws.wait_closed()

    edge = await edge_factory(script)
    client = SyncClient(edge.url, device_id="phone", token="t", backoff=fast())  # noqa: S106
    await client.open()
    ack = await client.update({"page": 2})
    assert ack.version == 2 and ack.replayed
    await client.wait_for_version(2)
    assert client.state == {"page": 2}
    updates = [m for m in edge.received if m["type"] == "update"]
    assert len(updates) == 2 and updates[0]["op_id"] == updates[1]["op_id"]
    assert updates[0]["base_version"] == updates[1]["base_version"] == 1
    assert client.stats.close_codes == [1006]
    await client.close(leave=False)


async def test_duplicates_are_dropped_and_a_gap_triggers_a_resume(
    edge_factory: Callable[[Script], Awaitable[FakeEdge]],
) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await greet(edge, ws)
        request = await edge.recv(ws)
        if n == 0:
            await ws.send(snapshot(request["ref"], 1))
            await ws.send(change(2, {"a": 1}))
            await ws.send(change(2, {"a": 1}))  # duplicate
            await ws.send(change(4, {"c": 1}))  # 3 is missing
            await ws.wait_closed()
            return
        assert (request["type"], request["version"]) == ("resume", 2)
        await ws.send(change(3, {"b": 1}))
        await ws.send(change(4, {"c": 1}))
        await ws.send(json.dumps({"type": "ack", "of": "resume", "ref": request["ref"]}))
        await ws.wait_closed()

    edge = await edge_factory(script)
    client = SyncClient(edge.url, device_id="phone", token="t", backoff=fast())  # noqa: S106
    await client.open()
    await client.wait_for_version(4)
    assert client.state == {"a": 1, "b": 1, "c": 1}
    await client.close(leave=False)


async def test_refused_update_fails_and_fatal_close_stops_reconnecting(
    edge_factory: Callable[[Script], Awaitable[FakeEdge]],
) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await greet(edge, ws)
        opened = await edge.recv(ws)
        await ws.send(snapshot(opened["ref"], 1))
        update = await edge.recv(ws)
        await ws.send(
            json.dumps(
                {
                    "type": "error",
                    "code": "conflict",
                    "message": "stale",
                    "details": {"op_id": update["op_id"], "version": 5},
                }
            )
        )
        await edge.recv(ws)
        await ws.close(4403, "token of another user")

    edge = await edge_factory(script)
    client = SyncClient(edge.url, device_id="phone", token="t", backoff=fast())  # noqa: S106
    await client.open()
    with pytest.raises(ClientError) as refused:
        await client.update({"x": 1})
    assert refused.value.code == "conflict" and refused.value.details["version"] == 5
    with pytest.raises(ClientClosed):
        await client.update({"y": 1})
    await asyncio.sleep(0.2)
    assert edge.connections == 1
    assert client.stats.close_codes == [4403]
    await client.close()


async def test_token_is_refreshed_when_the_server_asks(
    edge_factory: Callable[[Script], Awaitable[FakeEdge]],
) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await greet(edge, ws)
        opened = await edge.recv(ws)
        await ws.send(snapshot(opened["ref"], 1))
        await ws.send(
            json.dumps(
                {
                    "type": "error",
                    "code": "token_expiring",
                    "message": "x",
                    "details": {"grace_seconds": 5},
                }
            )
        )
        refresh = await edge.recv(ws)
        await ws.send(
            json.dumps(
                {
                    "type": "ack",
                    "of": "refresh",
                    "ref": refresh["ref"],
                    "token_expires_at": 2_000_000_000,
                }
            )
        )
        await ws.wait_closed()

    tokens = iter(["first", "second"])

    async def source() -> str:
        return next(tokens)

    edge = await edge_factory(script)
    client = SyncClient(edge.url, device_id="phone", token=source, backoff=fast())
    await client.open()
    for _ in range(100):
        if any(m["type"] == "refresh" for m in edge.received):
            break
        await asyncio.sleep(0.02)
    refreshes = [m for m in edge.received if m["type"] == "refresh"]
    assert refreshes and refreshes[0]["token"] == "second"  # noqa: S105
    await client.close(leave=False)


@pytest.mark.parametrize("code", ["unavailable", "internal", "rate_limited"])
async def test_open_refused_for_now_is_retried_on_a_new_connection(
    edge_factory: Callable[[Script], Awaitable[FakeEdge]], code: str
) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await greet(edge, ws)
        opened = await edge.recv(ws)
        if n == 0:
            await ws.send(
                json.dumps({"type": "error", "code": code, "message": "x", "ref": opened["ref"]})
            )
            await ws.wait_closed()
            return
        await ws.send(snapshot(opened["ref"], 3))
        await ws.wait_closed()

    edge = await edge_factory(script)
    client = SyncClient(edge.url, device_id="phone", token="t", backoff=fast())  # noqa: S106
    opened = await client.open()
    assert opened["version"] == 3 and client.version == 3
    assert edge.connections == 2
    assert client.stats.transient_refusals == [code]
    await client.close(leave=False)


async def test_resume_of_a_missing_session_is_fatal(
    edge_factory: Callable[[Script], Awaitable[FakeEdge]],
) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await greet(edge, ws)
        request = await edge.recv(ws)
        if n == 0:
            await ws.send(snapshot(request["ref"], 1))
            ws.transport.abort()
            return
        assert request["type"] == "resume"
        await ws.send(
            json.dumps(
                {
                    "type": "error",
                    "code": "session_not_found" if n == 2 else "unavailable",
                    "message": "x",
                    "ref": request["ref"],
                }
            )
        )
        await ws.wait_closed()

    edge = await edge_factory(script)
    client = SyncClient(edge.url, device_id="phone", token="t", backoff=fast())  # noqa: S106
    await client.open()
    await asyncio.sleep(0.5)
    # resume: unavailable (retried), then session_not_found (given up for good)
    assert edge.connections == 3
    assert client.stats.transient_refusals == ["unavailable"]
    with pytest.raises(ClientClosed):
        await client.update({"x": 1})
    await client.close(leave=False)
