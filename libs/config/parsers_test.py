"""Each supported annotation reads its documented spellings and refuses the rest."""

import pytest

from libs.config.parsers import parser_for


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("YES", True), (" 1 ", True), ("false", False), ("No", False), ("0", False)],
)
def test_bool_spellings(raw: str, expected: bool) -> None:
    assert parser_for(bool).parse(raw) is expected


@pytest.mark.parametrize("raw", ["", "on", "2", "truthy"])
def test_bool_refuses_other_words(raw: str) -> None:
    with pytest.raises(ValueError):
        parser_for(bool).parse(raw)


def test_int_and_float() -> None:
    assert parser_for(int).parse(" 42 ") == 42
    assert parser_for(float).parse("0.25") == 0.25
    with pytest.raises(ValueError):
        parser_for(int).parse("4.2")


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_float_refuses_non_finite(raw: str) -> None:
    with pytest.raises(ValueError):
        parser_for(float).parse(raw)


def test_tuple_is_comma_separated_and_drops_blanks() -> None:
    parse = parser_for(tuple[str, ...]).parse
    assert parse("a, b ,c,") == ("a", "b", "c")
    assert parse("") == ()


@pytest.mark.parametrize(
    "annotation", [list[str], tuple[int, ...], bytes, int | None, dict[str, str]]
)
def test_unsupported_annotation_is_a_type_error(annotation: object) -> None:
    with pytest.raises(TypeError):
        parser_for(annotation)
