"""The HTTP API against a real core: same auth, same semantics as the socket."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from services.ws_edge.edge_testing import (
    Stack,
    api,
    error_body_errors,
    expect,
    hello,
    http,
    openapi_errors,
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


async def exchange(address: tuple[str, int], request: bytes) -> tuple[int, dict[str, str], Any]:
    """One raw HTTP/1.1 exchange: (status, headers by lower-case name, parsed JSON or text)."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:])
    )
    try:
        return int(lines[0].split()[1]), headers, json.loads(content)
    except ValueError:
        return int(lines[0].split()[1]), headers, content.decode(errors="replace")


def request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: edge", "Connection: close", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def http_errors(address: tuple[str, int]) -> dict[tuple[str, str], float]:
    """syncbridge_edge_http_errors_total by (status, code)."""
    _, text = await http(address, "GET", "/metrics")
    counts = {}
    for line in str(text).splitlines():
        found = re.match(r"syncbridge_edge_http_errors_total\{([^}]*)\} (\S+)", line)
        if found:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
            counts[(labels["status"], labels["code"])] = float(found.group(2))
    return counts


async def test_bad_input_gets_a_documented_4xx_never_a_5xx(stack: Stack) -> None:
    address = stack.http()
    bearer = f"Authorization: Bearer {stack.token()}"
    crafted = base64.urlsafe_b64encode(json.dumps(["2026-01-01", "\u0000"]).encode()).decode()
    cases = [
        # (method, target, extra header, body, status, code)
        ("GET", "/v1/sessions?page_size=%D9%A3", None, b"", 400, "invalid_field"),
        ("GET", "/v1/sessions?page_size=99999", None, b"", 400, "invalid_field"),
        ("GET", "/v1/sessions?page_size=" + "9" * 5000, None, b"", 400, "invalid_field"),
        ("GET", "/v1/sessions?page_size=-1", None, b"", 400, "invalid_field"),
        ("GET", f"/v1/sessions?page_token={crafted}", None, b"", 400, "invalid_field"),
        ("GET", "/v1/sessions?page_token=%ff", None, b"", 400, "invalid_field"),
        ("POST", "/v1/sessions", None, b"[" * 100_000, 400, "malformed_json"),
        (
            "POST",
            "/v1/sessions",
            None,
            b'{"initial_state": {"a": "\\u0000"}}',
            400,
            "invalid_field",
        ),
        (
            "POST",
            "/v1/sessions",
            None,
            b'{"initial_state": {"a": "\\ud800"}}',
            400,
            "malformed_json",
        ),
        ("POST", "/v1/sessions", None, b'{"initial_state": {"a": NaN}}', 400, "malformed_json"),
        ("POST", "/v1/sessions", "X-Device-Id: a\x7fb", b"", 400, "invalid_field"),
        ("POST", "/v1/sessions", "X-Device-Id: \xe9", b"", 400, "invalid_field"),
        ("GET", "/v1/sessions/%00", None, b"", 400, "invalid_field"),
        ("GET", "/v1/sessions", "Authorization: Bearer \xe9.e30.x", b"", 401, "unauthorized"),
        ("GET", "/v1/sessions/not-a-uuid", None, b"", 404, "session_not_found"),
    ]
    for method, target, header, body, status, code in cases:
        sent = [header] if header else []
        if not (header or "").startswith("Authorization"):
            sent.insert(0, bearer)
        got, _, answer = await exchange(address, request(method, target, *sent, body=body))
        assert (got, answer["error"]["code"]) == (status, code), (target, answer)
        assert openapi_errors(method, target, got, answer) == [], (target, answer)
    # Any token of the documented shape is a position, even one after every session.
    status, page = await api(
        address, "GET", f"/v1/sessions?page_token={'9' * 18}-{'0' * 32}", headers=auth(stack)
    )
    assert status == 200 and page["sessions"] == []


async def test_the_frameworks_own_errors_use_the_error_shape_and_are_counted(
    stack: Stack,
) -> None:
    address = stack.http()
    bearer = f"Authorization: Bearer {stack.token()}"
    before = await http_errors(address)
    bodies = []
    status, headers, body = await exchange(address, request("TRACE", "/v1/sessions", bearer))
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in headers["allow"].split(",")} >= {"GET", "POST"}
    bodies.append(body)
    status, _, body = await exchange(address, request("GET", "/v1/no-such-route", bearer))
    assert status == 404 and body["error"]["code"] == "not_found"
    bodies.append(body)
    status, _, body = await exchange(
        address, request("POST", "/v1/sessions", bearer, "Content-Length: 999999999")
    )
    assert status == 413 and body["error"]["code"] == "too_large"
    bodies.append(body)
    status, _, body = await exchange(
        address, request("POST", "/v1/sessions", bearer, "Content-Length: x")
    )
    assert status == 400 and body["error"]["code"] == "bad_request"
    bodies.append(body)
    assert [error_body_errors(answer) for answer in bodies] == [[]] * len(bodies), bodies
    after = await http_errors(address)
    for key in (
        ("405", "method_not_allowed"),
        ("404", "not_found"),
        ("413", "too_large"),
        ("400", "bad_request"),
    ):
        assert after.get(key, 0) == before.get(key, 0) + 1, key
    # The API's own refusals and refused upgrades count the same way.
    await api(address, "GET", "/v1/sessions")
    assert (await http_errors(address))[("401", "unauthorized")] >= 1


async def test_405_on_a_path_with_parameters_lists_the_documented_methods(stack: Stack) -> None:
    address = stack.http()
    bearer = f"Authorization: Bearer {stack.token()}"
    status, headers, body = await exchange(address, request("PUT", "/v1/sessions/x", bearer))
    assert status == 405 and error_body_errors(body) == []
    assert {m.strip() for m in headers["allow"].split(",")} == {"GET", "PATCH", "DELETE"}


async def test_a_handoff_from_a_device_not_attached_is_a_409(stack: Stack) -> None:
    address = stack.http()
    _, created = await api(address, "POST", "/v1/sessions", {}, auth(stack))
    sid = created["session"]["session_id"]
    status, body = await api(
        address, "POST", f"/v1/sessions/{sid}/handoff", {"to_device": "phone"}, auth(stack)
    )
    assert status == 409 and body["error"]["code"] == "invalid_field", body
