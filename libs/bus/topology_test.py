"""Routing keys are bounded topic words whatever the user id; headers carry the user back."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from libs.bus.topology import routing_key, user_headers, user_of_headers

user_ids = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1
)


@given(user_ids)
def test_any_user_id_makes_a_short_two_word_key(user: str) -> None:
    key = routing_key(user)
    # AMQP's limit is 255 bytes; dots or wildcards must not split or match topic words.
    assert re.fullmatch(r"user\.[0-9a-f]{64}", key)
    assert len(key.encode()) <= 255


@given(user_ids, user_ids)
def test_distinct_users_get_distinct_keys(a: str, b: str) -> None:
    assert (routing_key(a) == routing_key(b)) == (a == b)


@given(user_ids)
def test_headers_name_the_user(user: str) -> None:
    assert user_of_headers(user_headers(user)) == user
    assert user_of_headers({"x-syncbridge-user": user.encode()}) == user


def test_headers_that_name_no_user() -> None:
    assert user_of_headers(None) is None
    assert user_of_headers({}) is None
    assert user_of_headers({"x-syncbridge-user": ""}) is None
    assert user_of_headers({"x-syncbridge-user": 7}) is None
    assert user_of_headers({"x-syncbridge-user": b"\xff"}) is None
