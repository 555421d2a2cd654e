"""The HTTP API against a real core: same auth, same semantics as the socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.ws_edge.edge_testing import (
    Stack,
    api,
    expect,
    hello,
    http,
    raw,
    running_stack,
    send,
)

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def stack(pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(pg_dsn, redis_url, amqp_url, tmp_path) as built:
        yield built


def auth(stack: Stack, user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(user)}"}


async def test_crud_round_trip_and_devices_see_api_writes(stack: Stack) -> None:
    address = stack.http()
    status, created = await api(
        address,
        "POST",
        "/v1/sessions",
        {"initial_state": {"page": 1}},
        {**auth(stack), "X-Device-Id": "backend"},
    )
    assert status == 201 and created["created"] is True
    session = created["session"]
    sid = session["session_id"]
    assert session["active_device"] == "backend" and session["state"] == {"page": 1}

    device = await raw(stack)
    await hello(device, "phone")
    await send(device, {"type": "open", "session_id": sid})
    opened = (await expect(device, "snapshot"))["session"]

    body = {"base_version": opened["version"], "epoch": 1, "patch": {"page": 2}}
    status, updated = await api(
        address, "PATCH", f"/v1/sessions/{sid}", body, {**auth(stack), "Idempotency-Key": "k1"}
    )
    assert status == 200 and updated["op_id"] == "k1" and updated["outcome"] == "applied"
    change = await expect(device, "change")
    assert change["version"] == updated["version"] and change["patch"] == {"page": 2}
    status, again = await api(
        address, "PATCH", f"/v1/sessions/{sid}", body, {**auth(stack), "Idempotency-Key": "k1"}
    )
    assert status == 200 and again["replayed"] is True and again["version"] == updated["version"]

    # Core refuses a handoff from a device not attached to the session (09842c1).
    status, moved = await api(
        address,
        "POST",
        f"/v1/sessions/{sid}/handoff",
        {"to_device": "phone"},
        {**auth(stack), "X-Device-Id": "backend"},
    )
    assert status == 200 and moved["active_device"] == "phone"
    assert (await expect(device, "handoff"))["version"] == moved["version"]

    status, got = await api(address, "GET", f"/v1/sessions/{sid}", headers=auth(stack))
    assert status == 200 and got["state"] == {"page": 2} and got["version"] == moved["version"]
    status, listed = await api(address, "GET", "/v1/sessions?page_size=10", headers=auth(stack))
    assert status == 200 and [s["session_id"] for s in listed["sessions"]] == [sid]

    status, ended = await api(address, "DELETE", f"/v1/sessions/{sid}", headers=auth(stack))
    assert status == 200 and ended["ended"] is True
    assert (await expect(device, "change"))["kind"] == "ended"
    status, gone = await api(address, "GET", f"/v1/sessions/{sid}", headers=auth(stack))
    assert status == 404 and gone["error"]["code"] == "session_not_found"
    await device.close()


async def test_errors_have_codes_and_statuses(stack: Stack) -> None:
    address = stack.http()
    status, body = await api(address, "GET", "/v1/sessions")
    assert status == 401 and body["error"] == {"code": "unauthorized", "message": "token_missing"}
    status, body = await api(
        address, "GET", "/v1/sessions", headers={"Authorization": "Bearer x.y.z"}
    )
    assert status == 401
    _, created = await api(
        address, "POST", "/v1/sessions", {"initial_state": {"a": 0}}, auth(stack)
    )
    sid = created["session"]["session_id"]
    status, body = await api(address, "GET", f"/v1/sessions/{sid}", headers=auth(stack, "eve"))
    assert status == 404 and body["error"]["code"] == "session_not_found"
    status, body = await api(address, "PATCH", f"/v1/sessions/{sid}", {"epoch": 1}, auth(stack))
    assert status == 400 and body["error"]["details"] == {"field": "base_version"}
    base = {"base_version": 1, "epoch": 1}
    await api(address, "PATCH", f"/v1/sessions/{sid}", {**base, "patch": {"a": 1}}, auth(stack))
    status, body = await api(
        address, "PATCH", f"/v1/sessions/{sid}", {**base, "patch": {"a": 2}}, auth(stack)
    )
    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["details"]["version"] == 2
    status, body = await http(address, "GET", "/v1/openapi.json")
    assert status == 200 and "/v1/sessions/{session_id}/handoff" in body["paths"]
    status, text = await api(address, "POST", "/v1/sessions", None, auth(stack))
    assert status == 201, text


async def test_delete_takes_device_id_and_op_id_from_the_query(stack: Stack) -> None:
    address = stack.http()
    _, created = await api(address, "POST", "/v1/sessions", {"initial_state": {}}, auth(stack))
    sid = created["session"]["session_id"]
    device = await raw(stack)
    await hello(device, "phone")
    await send(device, {"type": "open", "session_id": sid, "ref": "o"})
    await expect(device, "snapshot")
    # The query's op_id is read and checked like a body's (core keeps no op_id for ends).
    too_long = f"/v1/sessions/{sid}?device_id=tablet&op_id={'x' * 200}"
    status, body = await api(address, "DELETE", too_long, headers=auth(stack))
    assert status == 400 and body["error"]["details"] == {"field": "op_id"}, body
    path = f"/v1/sessions/{sid}?device_id=tablet&op_id=end-1"
    status, ended = await api(address, "DELETE", path, headers=auth(stack))
    assert status == 200 and ended["ended"] is True, ended
    change = await expect(device, "change")
    assert (change["kind"], change["device_id"]) == ("ended", "tablet")
    await device.close()
