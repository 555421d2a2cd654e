"""Page tokens: every token of the documented shape decodes, nothing else does."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.protocol.page_token import MAX_LENGTH, PATTERN, BadPageToken, decode, encode

SHAPE = re.compile(PATTERN)
STAMPS = st.datetimes(
    min_value=dt.datetime(1970, 1, 1),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.just(dt.UTC),
)


@given(STAMPS, st.uuids())
def test_encode_then_decode_is_the_same_position(stamp: dt.datetime, sid: uuid.UUID) -> None:
    token = encode(stamp, str(sid))
    assert SHAPE.match(token) and len(token) <= MAX_LENGTH
    assert decode(token) == (stamp, sid)


@given(st.from_regex(PATTERN, fullmatch=True))
def test_every_token_of_the_documented_shape_is_a_position(token: str) -> None:
    stamp, sid = decode(token)
    assert stamp.tzinfo is not None and isinstance(sid, uuid.UUID)


@given(st.text(max_size=60))
def test_anything_else_is_refused_with_the_one_error(token: str) -> None:
    if re.fullmatch(r"[0-9]{1,18}-[0-9a-f]{32}\n?", token):
        return
    with pytest.raises(BadPageToken):
        decode(token)


def test_edges_of_the_shape() -> None:
    hex32 = "0" * 32
    assert decode(f"{'9' * 18}-{hex32}")[0] == dt.datetime.max.replace(tzinfo=dt.UTC)
    assert decode(f"0-{hex32}")[0] == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    # What the edge's schema check lets through (Python's `$`), core takes too.
    assert decode(f"1-{hex32}\n") == decode(f"1-{hex32}")
    for bad in (
        f"{'9' * 19}-{hex32}",
        f"1-{hex32}\n\n",
        f"1-{'A' * 32}",
        "-" + hex32,
        "",
        "٣-" + hex32,
    ):
        with pytest.raises(BadPageToken):
            decode(bad)
