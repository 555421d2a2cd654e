"""The derivation is injective on what it is given, bounded, and ASCII-safe everywhere it goes."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.identity import identity

# Every Unicode scalar value but U+0000: what `check` admits.
user_ids = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1
)
HEX64 = re.compile(r"[0-9a-f]{64}")


@given(user_ids)
def test_any_user_id_passes_the_check(user: str) -> None:
    assert identity.check(user) == user


@given(user_ids)
def test_the_tag_is_fixed_length_lowercase_hex(user: str) -> None:
    tag = identity.tag(user)
    assert HEX64.fullmatch(tag)
    assert tag.isascii() and tag.isprintable()
    assert identity.digest(user).hex() == tag
    assert len(identity.digest(user)) == 32


@given(user_ids, user_ids)
def test_distinct_users_get_distinct_tags(a: str, b: str) -> None:
    assert (identity.tag(a) == identity.tag(b)) == (a == b)


@given(st.lists(user_ids, min_size=2, max_size=50, unique=True))
def test_no_two_of_many_users_share_a_tag(users: list[str]) -> None:
    assert len({identity.tag(user) for user in users}) == len(users)


@given(user_ids)
def test_metadata_round_trips(user: str) -> None:
    value = identity.to_metadata(user)
    assert isinstance(value, bytes)
    assert identity.from_metadata(value) == user


def test_the_tag_is_what_postgresql_computes() -> None:
    # sha256(convert_to(user_id, 'UTF8')) in migration 0002 backfills the same bytes.
    user = "ß\n😀"
    assert identity.digest(user) == hashlib.sha256("ß\n😀".encode()).digest()


def test_the_longest_user_id_a_token_can_carry_is_accepted() -> None:
    longest = "😀" * (identity.MAX_BYTES // 4)
    assert identity.check(longest) == longest
    assert len(identity.tag(longest)) == 64


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("", "empty"),
        ("a\x00b", "U\\+0000"),
        ("a\ud800b", "surrogate"),
        ("x" * (identity.MAX_BYTES + 1), "longer"),
    ],
)
def test_what_cannot_be_a_user_id_is_refused_with_a_reason(user: str, reason: str) -> None:
    with pytest.raises(identity.InvalidUserId, match=reason):
        identity.check(user)


@pytest.mark.parametrize("value", ["alice", b"\xff\xfe", b"", b"a\x00"])
def test_metadata_that_carries_no_user_is_refused(value: str | bytes) -> None:
    with pytest.raises(identity.InvalidUserId):
        identity.from_metadata(value)
