"""Routing keys both ways: every user id survives the round trip and stays one topic word."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from libs.bus.topology import routing_key, user_of


@given(st.text())
def test_user_of_inverts_routing_key(user: str) -> None:
    key = routing_key(user)
    # Two words exactly: dots or wildcards in a user id must not split or match topic words.
    assert key.count(".") == 1 and "*" not in key and "#" not in key
    assert user_of(key) == user


def test_keys_that_name_no_user() -> None:
    assert user_of("user." + b"bob.*#".hex()) == "bob.*#"
    assert user_of("user.zz") is None
    assert user_of("user.ff") is None  # hex, but not UTF-8
    assert user_of("presence") is None
