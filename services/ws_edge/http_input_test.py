"""Request input against the OpenAPI document: what the schemas allow passes, nothing else does."""

from __future__ import annotations

import functools
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.protocol import page_token
from libs.protocol.codes import ErrorCode
from libs.protocol.ids import MAX_ID_LENGTH, is_valid_id
from services.ws_edge import openapi
from services.ws_edge.http_input import MAX_BODY_DEPTH, BadInput, Input, Operation

DOCUMENT = openapi.document()
LIST = Operation(DOCUMENT, "/v1/sessions", "get")
CREATE = Operation(DOCUMENT, "/v1/sessions", "post")
UPDATE = Operation(DOCUMENT, "/v1/sessions/{session_id}", "patch")
DELETE = Operation(DOCUMENT, "/v1/sessions/{session_id}", "delete")
HANDOFF = Operation(DOCUMENT, "/v1/sessions/{session_id}/handoff", "post")
SID = "4e315571-06cb-4a49-9390-cc7c948ae831"


def read(
    operation: Operation,
    *,
    query: str = "",
    headers: dict[str, list[str]] | None = None,
    body: Any = None,
    session_id: str = SID,
) -> Input:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return operation.read(
        path={"session_id": session_id}, query=query, headers=headers or {}, body=raw
    )


def refusal(call: Callable[[], Any]) -> BadInput:
    with pytest.raises(BadInput) as refused:
        call()
    return refused.value


# --- page_size --------------------------------------------------------------


@given(st.integers(min_value=1, max_value=500))
def test_every_documented_page_size_is_taken(size: int) -> None:
    assert read(LIST, query=f"page_size={size}").params == {"page_size": size}


@given(st.text(max_size=30))
def test_any_other_page_size_is_invalid_field(text: str) -> None:
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 500:
        return
    query = urllib.parse.urlencode({"page_size": text})
    bad = refusal(lambda: read(LIST, query=query))
    assert (bad.code, bad.field) == (ErrorCode.INVALID_FIELD, "page_size")


def test_page_size_edges() -> None:
    for text in ("0", "501", "-1", "+5", " 5", "5.0", "٣", "1_0", "9" * 5000, ""):
        query = urllib.parse.urlencode({"page_size": text})
        bad = refusal(functools.partial(read, LIST, query=query))
        assert bad.code is ErrorCode.INVALID_FIELD, text
    bad = refusal(lambda: read(LIST, query="page_size=1&page_size=2"))
    assert bad.message == "page_size: given more than once"
    assert read(LIST).params == {}


# --- page_token -------------------------------------------------------------


@given(st.from_regex(page_token.PATTERN, fullmatch=True))
def test_every_token_of_the_documented_shape_is_taken(token: str) -> None:
    query = urllib.parse.urlencode({"page_token": token})
    assert read(LIST, query=query).params == {"page_token": token}
    page_token.decode(token)  # and core takes it too


@given(st.text(max_size=60))
def test_a_token_core_would_refuse_never_passes(token: str) -> None:
    query = urllib.parse.urlencode({"page_token": token})
    try:
        taken = read(LIST, query=query)
    except BadInput as bad:
        assert (bad.code, bad.field) == (ErrorCode.INVALID_FIELD, "page_token")
        return
    page_token.decode(taken.params["page_token"])


def test_undecodable_query_bytes_are_invalid() -> None:
    bad = refusal(lambda: read(LIST, query="page_token=%ff%fe"))
    assert bad.field == "page_token" and "UTF-8" in bad.message


# --- ids: path, headers, query, body ------------------------------------------


@given(st.text(max_size=MAX_ID_LENGTH + 4))
def test_ids_pass_exactly_when_the_id_rule_says(value: str) -> None:
    checks: list[Callable[[], Input]] = [
        lambda: read(UPDATE, session_id=value, body={"base_version": 0, "epoch": 1, "patch": {}}),
        lambda: read(DELETE, headers={"x-device-id": [value]}),
        lambda: read(DELETE, headers={"idempotency-key": [value]}),
        lambda: read(DELETE, query=urllib.parse.urlencode({"device_id": value})),
        lambda: read(HANDOFF, body={"to_device": value}),
        lambda: read(CREATE, body={"device_id": value}),
    ]
    for check in checks:
        if is_valid_id(value):
            check()
        else:
            assert refusal(check).code is ErrorCode.INVALID_FIELD


def test_null_is_not_absent() -> None:
    bad = refusal(lambda: read(CREATE, body={"session_id": None}))
    assert (bad.code, bad.field) == (ErrorCode.INVALID_FIELD, "session_id")


# --- bodies -------------------------------------------------------------------


def test_the_first_missing_field_in_the_schemas_order_is_named() -> None:
    bad = refusal(lambda: read(UPDATE, body={"epoch": 1}))
    assert (bad.code, bad.field) == (ErrorCode.MISSING_FIELD, "base_version")
    bad = refusal(lambda: read(UPDATE, body={"base_version": "1", "epoch": 1, "patch": {}}))
    assert (bad.code, bad.field) == (ErrorCode.INVALID_FIELD, "base_version")
    assert refusal(lambda: read(HANDOFF, body={})).field == "to_device"


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b"null", b"\xff", b"[" * 100_000, b'{"epoch": NaN}', b'{"a": Infinity}'],
)
def test_what_is_not_a_json_object_is_malformed_json(raw: bytes) -> None:
    assert refusal(lambda: read(UPDATE, body=raw)).code is ErrorCode.MALFORMED_JSON


def test_lone_surrogates_are_malformed_json() -> None:
    for raw in (b'{"patch": {"a": "\\ud800"}}', b'{"patch": {"\\udc00": 1}}'):
        assert refusal(functools.partial(read, UPDATE, body=raw)).code is ErrorCode.MALFORMED_JSON


def test_depth_numbers_and_nul_in_a_state_or_patch() -> None:
    deep: Any = 1
    for _ in range(MAX_BODY_DEPTH - 1):
        deep = {"a": deep}
    ok = {"base_version": 0, "epoch": 1}
    read(UPDATE, body={**ok, "patch": deep})
    bad = refusal(lambda: read(UPDATE, body={**ok, "patch": {"a": deep}}))
    assert (bad.code, bad.field) == (ErrorCode.INVALID_FIELD, "patch")
    bad = refusal(lambda: read(UPDATE, body=b'{"base_version": 0, "epoch": 1e999, "patch": {}}'))
    assert (bad.code, bad.field) == (ErrorCode.INVALID_FIELD, "epoch")
    for patch in ({"a": "x\x00"}, {"a\x00": 1}, {"a": ["\x00"]}):
        bad = refusal(functools.partial(read, UPDATE, body={**ok, "patch": patch}))
        assert (bad.code, bad.field) == (ErrorCode.INVALID_FIELD, "patch"), patch
    huge = {**ok, "base_version": 2**63}
    assert refusal(lambda: read(UPDATE, body={**huge, "patch": {}})).field == "base_version"


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text().filter(lambda t: "\x00" not in t),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text().filter(lambda t: "\x00" not in t), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_json_without_nul_is_a_patch(value: Any) -> None:
    body = {"base_version": 0, "epoch": 1, "patch": {"v": value}}
    assert read(UPDATE, body=body).body == body


def test_every_documented_parameter_is_read() -> None:
    names = {(p.name, p.location) for p in DELETE.parameters}
    assert names == {
        ("session_id", "path"),
        ("X-Device-Id", "header"),
        ("Idempotency-Key", "header"),
        ("device_id", "query"),
        ("op_id", "query"),
    }
