"""The shared protocol vectors (libs/protocol_vectors) replayed against the Python client.

A real WebSocket server on loopback plays the edge's side of each vector;
clients/web/vectors_test.mts replays the same files against the TS client.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from libs.backoff.backoff import Backoff
from libs.client.client import Ack, SyncClient

pytestmark = pytest.mark.asyncio

VECTORS = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "")
VECTOR_FILES = sorted((VECTORS / "libs" / "protocol_vectors" / "vectors").glob("*.json"))
LOADED = {path.stem: json.loads(path.read_text()) for path in VECTOR_FILES}


def subset(actual: Any, expected: Any) -> bool:
    if not isinstance(expected, dict):
        return bool(json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True))
    return isinstance(actual, dict) and all(subset(actual.get(k), v) for k, v in expected.items())


def observed(client: SyncClient, key: str) -> Any:
    if key == "snapshots_unrecovered":
        return client.stats.snapshots_unrecovered
    return getattr(client, key)


async def expect_fields(client: SyncClient, want: dict[str, Any], where: str) -> None:
    """Until the client's fields are `want` (2 s at most)."""
    deadline = time.monotonic() + 2
    while not all(subset(observed(client, k), v) for k, v in want.items()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{where}: { ({k: observed(client, k) for k in want}) }")
        await asyncio.sleep(0.01)


def test_the_vectors_are_there() -> None:
    assert len(VECTOR_FILES) >= 9, VECTORS


@pytest.mark.parametrize("name", sorted(LOADED))
async def test_vector(name: str) -> None:
    vector = LOADED[name]
    connections: asyncio.Queue[tuple[ServerConnection, asyncio.Event]] = asyncio.Queue()

    async def handle(ws: ServerConnection) -> None:
        done = asyncio.Event()
        await connections.put((ws, done))
        await done.wait()

    async with serve(handle, "127.0.0.1", 0, subprotocols=[Subprotocol("syncbridge.v1")]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = SyncClient(
            f"ws://127.0.0.1:{port}/session/connect",
            device_id="tab",
            token="t0k3n",  # noqa: S106
            token_in_subprotocol=True,
            backoff=Backoff(base=0.01, cap=0.05),
            request_timeout=3,
        )
        acks: dict[str, asyncio.Future[Ack]] = {}
        tasks: list[asyncio.Task[Any]] = []
        ws: ServerConnection | None = None
        done: asyncio.Event | None = None
        ref: Any = None
        try:
            for index, step in enumerate(vector["steps"]):
                where = f"{vector['name']} step {index}: {json.dumps(step)}"
                app = step.get("app")
                if app == "open":
                    tasks.append(asyncio.create_task(client.open(step.get("session_id"))))
                elif app == "update":
                    acks[step["op_id"]] = client.update_nowait(step["patch"], op_id=step["op_id"])
                elif app == "handoff":
                    handoff = client.handoff(step["to_device"], op_id=step["op_id"])
                    acks[step["op_id"]] = asyncio.ensure_future(handoff)
                elif "client_connects" in step:
                    if done is not None:
                        done.set()
                    ws, done = await asyncio.wait_for(connections.get(), 3)
                    assert ws is not None and ws.request is not None
                    offered = ws.request.headers.get("Sec-WebSocket-Protocol", "")
                    assert offered == "syncbridge.v1, bearer.t0k3n", where
                elif "client_sends" in step:
                    assert ws is not None, where
                    message = json.loads(await asyncio.wait_for(ws.recv(), 3))
                    assert subset(message, step["client_sends"]), f"{where}: got {message}"
                    ref = message.get("ref")
                elif "server_sends" in step:
                    assert ws is not None, where
                    message = dict(step["server_sends"])
                    if message.get("ref") == "$ref":
                        message["ref"] = ref
                    await ws.send(json.dumps(message))
                elif "server_closes" in step:
                    assert ws is not None and done is not None, where
                    code = int(step["server_closes"])
                    if code == 1006:
                        assert ws.transport is not None
                        ws.transport.abort()
                    else:
                        await ws.close(code)
                    done.set()
                elif "client_closes" in step:
                    assert ws is not None, where
                    await asyncio.wait_for(ws.wait_closed(), 3)
                    assert ws.close_code == step["client_closes"], where
                elif "expect" in step:
                    await expect_fields(client, step["expect"], where)
                elif "expect_ack" in step:
                    want = step["expect_ack"]
                    ack = await asyncio.wait_for(asyncio.shield(acks[want["op_id"]]), 3)
                    for key, value in want.items():
                        assert getattr(ack, key) == value, where
                elif "expect_no_connection" in step:
                    await asyncio.sleep(float(step["expect_no_connection"]))
                    assert connections.empty(), f"{where}: the client reconnected"
                else:
                    raise AssertionError(f"{where}: unknown step")
        finally:
            if done is not None:
                done.set()
            await client.close(leave=False)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for future in acks.values():
                if future.done() and not future.cancelled():
                    future.exception()
