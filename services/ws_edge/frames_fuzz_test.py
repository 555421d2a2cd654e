"""Any frame against a real edge: an answer or a documented close, never silence.

Hypothesis draws frames (JSON messages with wrong types, unknown fields,
duplicate keys, huge numbers and deep nesting; arbitrary text; binary
frames; text frames that are not UTF-8) with a fixed seed and a bounded
count. Each goes to a fresh connection, greeted or not. The frame must get
a message that matches the protocol's schemas (the edge_testing helpers
validate every one), or a close with a code of libs/protocol's table. When
the connection stays open (an `error` leaves it open) the next valid
message is answered too. Failures inside a connection (a writer that cannot
send, a task that raises) close it with 1011, logged and counted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from libs.protocol.codes import CloseCode, ErrorCode
from libs.protocol.validation import server_message_errors
from services.ws_edge import protocol
from services.ws_edge.edge_testing import (
    Stack,
    expect,
    hello,
    http,
    metric,
    raw,
    running_stack,
    send,
)

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

DOCUMENTED_CLOSES = {int(code) for code in CloseCode}
ERROR_CODES = {code.value for code in ErrorCode}


@pytest_asyncio.fixture
async def stack(pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(pg_dsn, redis_url, amqp_url, tmp_path, max_frame_bytes=64 * 1024) as s:
        yield s


# -- frames ------------------------------------------------------------------

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)
# Per field: a value of the right shape (so some messages are valid) or anything.
fields = {
    "device_id": ids | json_values,
    "session_id": ids | st.just(str(uuid.UUID(int=0))) | json_values,
    "initial_state": st.dictionaries(st.text(max_size=6), json_values, max_size=3) | json_values,
    "epoch": st.integers(min_value=-1, max_value=2**64) | json_values,
    "version": st.integers(min_value=-1, max_value=2**64) | json_values,
    "op_id": st.sampled_from(["op-1", "op-1", "op-2"]) | json_values,  # duplicates
    "base_version": st.integers(min_value=0, max_value=3) | json_values,
    "patch": st.dictionaries(st.text(max_size=6), json_values, max_size=3) | json_values,
    "require_lease": st.booleans() | json_values,
    "to_device": ids | json_values,
    "token": st.text(max_size=20) | json_values,
    "ref": st.text(max_size=70) | json_values,
    "unknown_field": json_values,
}
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(protocol.CLIENT_TYPES) | st.text(max_size=8) | json_values},
    optional=fields,
)
NUMBERS = ["1e999", "-1e999", "NaN", "Infinity", "-0", "9" * 400, "9" * 5000, "1.0e-400"]

Frame = tuple[str, Any]  # ("text", str) | ("binary", bytes) | ("raw-text", bytes)

frames: st.SearchStrategy[Frame] = st.one_of(
    messages.map(lambda m: ("text", json.dumps(m))),
    # Duplicate keys: the last one wins in the parser, whatever the first said.
    st.tuples(messages, st.sampled_from(protocol.CLIENT_TYPES)).map(
        lambda pair: ("text", json.dumps(pair[0])[:-1] + f',"type":"{pair[1]}"}}')
    ),
    st.sampled_from(NUMBERS).map(
        lambda n: (
            "text",
            '{"type":"update","op_id":"o","base_version":0,"epoch":1,"patch":{"n":' + n + "}}",
        )
    ),
    st.sampled_from(NUMBERS).map(
        lambda n: ("text", '{"type":"resume","session_id":"s","epoch":' + n + ',"version":0}')
    ),
    st.integers(min_value=1, max_value=3000).map(
        lambda n: ("text", '{"type":"open","initial_state":' + '{"a":' * n + "1" + "}" * (n + 1))
    ),
    st.integers(min_value=1, max_value=3000).map(lambda n: ("text", "[" * n + "]" * n)),
    st.text(max_size=200).map(lambda t: ("text", t)),
    st.binary(max_size=200).map(lambda b: ("binary", b)),
    st.binary(min_size=1, max_size=64).map(lambda b: ("raw-text", b)),
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def _send_frame(ws: ClientConnection, frame: Frame) -> None:
    kind, payload = frame
    if kind == "raw-text":
        await ws.send(payload, text=True)  # bytes in a text frame, UTF-8 or not
    else:
        await ws.send(payload)


async def _answer_or_close(ws: ClientConnection, ref: str | None = None) -> dict[str, Any] | int:
    """The next message (with `ref`, if given), or the close code the server sent."""
    try:
        async with asyncio.timeout(5):
            while True:
                message = await _next(ws)
                if ref is None or message.get("ref") == ref:
                    return message
    except TimeoutError:
        raise AssertionError("no answer and no close: the frame was dropped") from None
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the edge dropped the socket without a close frame"
        return closed.rcvd.code


async def _next(ws: ClientConnection) -> dict[str, Any]:
    """The next message that answers something (presence and changes are unsolicited)."""
    while True:
        raw_message = await ws.recv()
        message: dict[str, Any] = json.loads(raw_message)
        assert server_message_errors(message) == [], message
        if message["type"] not in ("presence", "change", "handoff"):
            return message


async def _check(stack: Stack, frame: Frame, greeted: bool) -> None:
    ws = await raw(stack, f"fuzz-{uuid.uuid4().hex[:8]}")
    try:
        if greeted:
            await hello(ws, "fuzzer")
        await _send_frame(ws, frame)
        answer = await _answer_or_close(ws)
        if frame[0] == "raw-text" and not _is_utf8(frame[1]):
            assert answer == CloseCode.INVALID_PAYLOAD, (frame, answer)
            return
        if isinstance(answer, int):
            assert answer in DOCUMENTED_CLOSES, (frame, answer)
            return
        if answer["type"] == "error":
            assert answer["code"] in ERROR_CODES, answer
        # Still open: the next valid message is served (answered by its ref).
        await send(ws, {"type": "leave", "ref": "probe"})
        probe = await _answer_or_close(ws, ref="probe")
        if isinstance(probe, int):
            # Only a frame that itself ended the connection (e.g. a valid leave) may.
            assert probe in DOCUMENTED_CLOSES and answer.get("of") == "leave", (frame, probe)
        else:
            assert probe["type"] in ("ack", "error"), probe
    finally:
        await ws.close()


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=frames, greeted=st.booleans())
# The crafted frame of issue 15: an invalid ref was echoed and killed the writer.
@example(frame=("text", '{"type":"hello","device_id":"d","ref":"\\ud800"}'), greeted=False)
@example(frame=("text", '{"type":"open","initial_state":{"\\udc00":1},"ref":"r"}'), greeted=True)
@example(frame=("raw-text", b'{"type":"hello","device_id":"\xff"}'), greeted=False)
@example(frame=("raw-text", b'{"type":"open","ref":"\xed\xa0\x80"}'), greeted=True)
@example(frame=("binary", b'{"type":"hello","device_id":"d"}'), greeted=False)
@example(frame=("text", '{"type":"hello","device_id":"a","device_id":"b","x":[]}'), greeted=False)
async def test_every_frame_gets_an_answer_or_a_documented_close(
    stack: Stack, frame: Frame, greeted: bool
) -> None:
    await _check(stack, frame, greeted)


# -- the same op_id twice, the same device twice -----------------------------------


async def test_duplicate_ids_are_answered_as_the_protocol_says(stack: Stack) -> None:
    ws = await raw(stack, "dupes")
    await hello(ws, "phone")
    await send(ws, {"type": "open", "initial_state": {"n": 0}, "ref": "o"})
    session = (await expect(ws, "snapshot"))["session"]
    update = {
        "type": "update",
        "op_id": "same",
        "base_version": session["version"],
        "epoch": session["epoch"],
        "patch": {"n": 1},
    }
    await send(ws, {**update, "ref": "first"})
    first = await expect(ws, "ack")
    await send(ws, {**update, "ref": "again"})
    again = await expect(ws, "ack")
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["version"] == first["version"]
    # The same device on a second connection replaces the first (4010), which is told.
    newer = await raw(stack, "dupes")
    await hello(newer, "phone")
    with pytest.raises(ConnectionClosed) as closed:
        await expect(ws, "never")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.REPLACED
    await newer.close()


# -- failures inside a connection ------------------------------------------------


def _connection_of(stack: Stack, user: str) -> Any:
    [connection] = [c for c in stack.edges[0].replica.connections if c.user_id == user]
    return connection


async def test_a_writer_that_cannot_send_closes_1011_logged_and_counted(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    address = stack.http()
    before = await metric(address, "syncbridge_edge_connection_failures_total")
    ws = await raw(stack, "victim")
    await hello(ws, "phone")
    connection = _connection_of(stack, "victim")
    real_send = connection._ws.send

    async def send_that_breaks(message: str) -> None:
        if '"ref":"poison"' in message:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        await real_send(message)

    connection._ws.send = send_that_breaks
    await send(ws, {"type": "refresh", "token": "x", "ref": "poison"})
    with pytest.raises(ConnectionClosed) as closed:
        await expect(ws, "never")
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.INTERNAL_ERROR
    assert await metric(address, "syncbridge_edge_connection_failures_total") == before + 1
    assert any(r.getMessage() == "background task failed" for r in caplog.records)


async def test_a_task_that_raises_closes_1011(stack: Stack) -> None:
    ws = await raw(stack, "victim2")
    await hello(ws, "phone")
    connection = _connection_of(stack, "victim2")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in a handler")

    connection._host.core.open_session = broken  # the replica's client: this test's stack only
    await send(ws, {"type": "open", "ref": "o"})
    with pytest.raises(ConnectionClosed) as closed:
        await expect(ws, "never")
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.INTERNAL_ERROR


async def test_invalid_utf8_closes_1007_and_is_counted(stack: Stack) -> None:
    address = stack.http()
    ws = await raw(stack, "bytes")
    await hello(ws, "phone")
    await ws.send(b'{"type":"leave","ref":"\xc3\x28"}', text=True)
    with pytest.raises(ConnectionClosed) as closed:
        await expect(ws, "never")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    _, text = await http(address, "GET", "/metrics")
    assert 'syncbridge_edge_closes_total{code="1007"} 1.0' in str(text)


async def test_a_reply_that_cannot_be_encoded_closes_1011(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = stack.http()
    ws = await raw(stack, "unencodable")
    await hello(ws, "phone")
    real_encode = protocol.encode

    def encode_that_breaks(message: dict[str, Any]) -> str:
        if message.get("ref") == "boom":
            raise ValueError("Out of range float values are not JSON compliant")
        return real_encode(message)

    monkeypatch.setattr(protocol, "encode", encode_that_breaks)
    await send(ws, {"type": "refresh", "token": "x", "ref": "boom"})
    with pytest.raises(ConnectionClosed) as closed:
        await expect(ws, "never")
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.INTERNAL_ERROR
    _, text = await http(address, "GET", "/metrics")
    assert 'syncbridge_edge_connection_failures_total{task="encode"} 1.0' in str(text)
