"""Parsing client frames: typed messages or a stable error code, never another exception."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.protocol.codes import ErrorCode
from services.ws_edge import protocol


def parse_error(frame: str | bytes) -> protocol.ProtocolError:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse(frame)
    return caught.value


def test_each_client_message_parses() -> None:
    assert protocol.parse('{"type":"hello","device_id":"phone","ref":"r1"}') == protocol.Hello(
        "phone", "r1"
    )
    assert protocol.parse('{"type":"open"}') == protocol.Open(None, None)
    assert protocol.parse('{"type":"open","session_id":"s","initial_state":{"a":1}}') == (
        protocol.Open("s", {"a": 1})
    )
    assert protocol.parse('{"type":"resume","session_id":"s","epoch":1,"version":0}') == (
        protocol.Resume("s", 1, 0)
    )
    update = protocol.parse(
        '{"type":"update","op_id":"o","base_version":3,"epoch":1,"patch":{"x":null},'
        '"require_lease":true}'
    )
    assert update == protocol.Update("o", 3, 1, {"x": None}, True)
    assert protocol.parse('{"type":"handoff","op_id":"o","to_device":"d"}') == (
        protocol.Handoff("o", "d")
    )
    assert protocol.parse('{"type":"refresh","token":"t"}') == protocol.Refresh("t")
    assert protocol.parse('{"type":"leave","extra":"ignored"}') == protocol.Leave()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", ErrorCode.MALFORMED_JSON),
        ("[1, 2]", ErrorCode.MALFORMED_JSON),
        ('"hello"', ErrorCode.MALFORMED_JSON),
        (b'{"type":"hello"}', ErrorCode.MALFORMED_JSON),
        ('{"device_id":"x"}', ErrorCode.MISSING_FIELD),
        ('{"type":"subscribe"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":7}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":"hello"}', ErrorCode.MISSING_FIELD),
        ('{"type":"hello","device_id":""}', ErrorCode.INVALID_FIELD),
        ('{"type":"hello","device_id":"a\\nb"}', ErrorCode.INVALID_FIELD),
        ('{"type":"update","op_id":"o","base_version":1,"epoch":1}', ErrorCode.MISSING_FIELD),
        (
            '{"type":"update","op_id":"o","base_version":1,"epoch":1,"patch":[1]}',
            ErrorCode.INVALID_FIELD,
        ),
        (
            '{"type":"update","op_id":"o","base_version":true,"epoch":1,"patch":{}}',
            ErrorCode.INVALID_FIELD,
        ),
        (
            '{"type":"update","op_id":"o","base_version":-1,"epoch":1,"patch":{}}',
            ErrorCode.INVALID_FIELD,
        ),
        ('{"type":"resume","session_id":"s","epoch":1,"version":"3"}', ErrorCode.INVALID_FIELD),
        ('{"type":"leave","ref":5}', ErrorCode.INVALID_FIELD),
        ("[" * 100_000, ErrorCode.MALFORMED_JSON),
    ],
)
def test_bad_frames_get_stable_codes(frame: str | bytes, code: ErrorCode) -> None:
    assert parse_error(frame).code is code


def test_error_names_the_field_and_echoes_ref() -> None:
    problem = parse_error('{"type":"handoff","op_id":"o","ref":"r7"}')
    assert problem.field == "to_device"
    assert problem.ref == "r7"
    message = protocol.from_protocol_error(problem)
    assert message == {
        "type": "error",
        "code": "missing_field",
        "message": "to_device: required",
        "details": {"field": "to_device"},
        "ref": "r7",
    }


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_parse_never_raises_anything_else(frame: str | bytes) -> None:
    with contextlib.suppress(protocol.ProtocolError):
        protocol.parse(frame)


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=10,
    )
)
def test_any_json_value_either_parses_or_is_refused(value: object) -> None:
    for candidate in (
        value,
        {"type": "update", "patch": value},
        {"type": "hello", "device_id": value},
    ):
        try:
            protocol.parse(json.dumps(candidate))
        except protocol.ProtocolError as problem:
            assert problem.code in ErrorCode


def test_encode_is_compact_utf8() -> None:
    text = protocol.encode(protocol.presence("s", [{"device_id": "é", "online": True}]))
    assert (
        text == '{"type":"presence","session_id":"s","devices":[{"device_id":"é","online":true}]}'
    )


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"update","op_id":"o","base_version":1,"epoch":1,"patch":{"n":NaN}}',
        '{"type":"update","op_id":"o","base_version":1,"epoch":1,"patch":{"n":-Infinity}}',
        '{"type":"update","op_id":"o","base_version":1,"epoch":1,"patch":{"n":1e999}}',
        '{"type":"update","op_id":"o","base_version":1,"epoch":1,"patch":{"n":' + "9" * 5000 + "}}",
        '{"type":"open","initial_state":{"s":"\\ud800"}}',
        '{"type":"open","initial_state":{"\\udfff":1}}',
        '{"type":"open","initial_state":' + '{"a":' * 70 + "1" + "}" * 70 + "}",
        '{"type":"open","initial_state":{"a":' + "[" * 70 + "]" * 70 + "}}",
    ],
)
def test_what_could_not_be_sent_back_is_malformed(frame: str) -> None:
    assert parse_error(frame).code is ErrorCode.MALFORMED_JSON


def test_paired_surrogate_escapes_and_brackets_in_strings_are_fine() -> None:
    message = protocol.parse(
        '{"type":"open","initial_state":{"e":"\\ud83d\\ude00","b":"' + "[" * 99 + '"}}'
    )
    assert isinstance(message, protocol.Open)
    assert message.initial_state == {"e": "\U0001f600", "b": "[" * 99}


def test_text_that_was_not_utf8_is_not_text() -> None:
    frame = b'{"type":"hello","device_id":"\xff"}'.decode("utf-8", "surrogateescape")
    with pytest.raises(protocol.NotText):
        protocol.parse(frame)


@pytest.mark.parametrize("ref", ["\\ud800", "a\\nb", "", "r" * 65])
def test_an_invalid_ref_is_never_echoed(ref: str) -> None:
    problem = parse_error('{"type":"hello","device_id":"d","ref":"' + ref + '"}')
    assert problem.ref is None
    protocol.encode(protocol.from_protocol_error(problem)).encode("utf-8")
