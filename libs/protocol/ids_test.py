"""The id rule: the JSON Schema, the Python check and Unicode's categories say the same."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from libs.protocol.ids import (
    FORBIDDEN_RANGES,
    MAX_ID_LENGTH,
    has_surrogates,
    id_schema,
    is_valid_id,
)

VALIDATOR = Draft202012Validator(id_schema())
REFUSED = {"Cc", "Cf", "Co", "Zl", "Zp"}


def by_categories(value: str) -> bool:
    """The rule as the module docstring states it, from the character database."""
    return 1 <= len(value) <= MAX_ID_LENGTH and all(
        char == " "
        or (
            unicodedata.category(char) not in REFUSED
            and unicodedata.category(char) != "Zs"
            and unicodedata.category(char) != "Cs"
        )
        for char in value
    )


def test_every_code_point_is_judged_as_its_category_says() -> None:
    for code in range(0x110000):
        assert is_valid_id(chr(code)) == by_categories(chr(code)), hex(code)


def test_the_schema_agrees_at_every_range_edge() -> None:
    edges = {c + d for first, last in FORBIDDEN_RANGES for c in (first, last) for d in (-1, 0, 1)}
    for code in sorted(edges):
        if 0 <= code < 0x110000 and not 0xD800 <= code <= 0xDFFF:
            assert VALIDATOR.is_valid(chr(code)) == is_valid_id(chr(code)), hex(code)


@given(st.text(max_size=MAX_ID_LENGTH + 8))
def test_schema_and_check_agree_on_any_text(value: str) -> None:
    # Hypothesis draws no lone surrogates, which no valid request carries.
    assert VALIDATOR.is_valid(value) == is_valid_id(value) == by_categories(value)


@given(st.text(min_size=1, max_size=4), st.sampled_from(["\n", "\t", "\x00", "\u2028", "\ufeff"]))
def test_a_control_or_separator_anywhere_is_refused(value: str, bad: str) -> None:
    for spliced in (bad + value, value + bad, value[:1] + bad + value[1:]):
        assert not is_valid_id(spliced)
        assert not VALIDATOR.is_valid(spliced)


def test_lengths_and_types() -> None:
    assert is_valid_id("a" * MAX_ID_LENGTH) and not is_valid_id("a" * (MAX_ID_LENGTH + 1))
    assert not is_valid_id("") and not is_valid_id(None) and not is_valid_id(7)
    assert is_valid_id("phone 7f3a") and is_valid_id("téléphone-🙂")
    assert not is_valid_id("x\udce9") and has_surrogates("x\udce9")


def test_the_schema_survives_json() -> None:
    # The OpenAPI document is served as JSON: the pattern must come back the same.
    schema = id_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert json.loads(json.dumps(schema, ensure_ascii=False)) == schema
