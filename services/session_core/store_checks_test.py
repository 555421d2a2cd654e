"""What the store refuses before a transaction: pure, no PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.session_core import store_checks
from services.session_core.records import InvalidArgument, NotFound, TooLarge, UpdateRequest


def _update(**fields: Any) -> UpdateRequest:
    base = UpdateRequest(
        user_id="alice",
        session_id=str(uuid.uuid4()),
        device_id="phone",
        op_id="op-1",
        base_version=1,
        epoch=0,
        patch={"a": 1},
    )
    return dataclasses.replace(base, **fields)


def test_a_good_update_passes() -> None:
    store_checks.check_update(_update(), max_patch_bytes=100)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"op_id": ""}, InvalidArgument, "op_id: required"),
        ({"op_id": "x" * 129}, InvalidArgument, "op_id: longer than 128"),
        ({"op_id": "a\x00b"}, InvalidArgument, r"op_id: contains U\+0000"),
        ({"device_id": "p\x00"}, InvalidArgument, r"device_id: contains U\+0000"),
        ({"patch": [1]}, InvalidArgument, "patch_json"),
        ({"patch": {"a": "x" * 200}}, TooLarge, "patch_json: larger than 100 bytes"),
    ],
)
def test_malformed_updates_are_refused_with_their_field(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        store_checks.check_update(_update(**fields), max_patch_bytes=100)


def test_an_op_id_at_the_limit_is_accepted() -> None:
    store_checks.check_op_id("x" * store_checks.MAX_OP_ID_LENGTH)


def test_initial_state_must_be_an_object_within_the_limit() -> None:
    store_checks.check_initial_state({"a": 1}, 100)
    with pytest.raises(InvalidArgument, match="initial_state_json"):
        store_checks.check_initial_state([1], 100)
    with pytest.raises(TooLarge, match="state: larger than 10 bytes"):
        store_checks.check_initial_state({"a": "x" * 20}, 10)


def test_an_id_that_is_not_a_uuid_is_not_found() -> None:
    with pytest.raises(NotFound):
        store_checks.session_uuid("not-a-uuid")
    sid = uuid.uuid4()
    assert store_checks.session_uuid(str(sid)) == sid


paths = st.frozensets(st.lists(st.text(max_size=4), max_size=3).map(tuple), max_size=5)


@given(paths)
def test_paths_round_trip(value: frozenset[tuple[str, ...]]) -> None:
    encoded = store_checks.encode_paths(value)
    assert encoded == sorted(encoded)
    assert store_checks.decode_paths(encoded) == value
