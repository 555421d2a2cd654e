"""Turns the text of one environment variable into a typed value.

A parser knows nothing about variable names or secrecy: it raises ValueError
without quoting the input, and the caller decides whether the value may be
shown in the error message.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


@dataclass(frozen=True)
class Parser:
    """How to read one annotation: `expected` completes "expected ..." in errors."""

    expected: str
    parse: Callable[[str], object]


def _parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("not a boolean")


def _parse_int(raw: str) -> int:
    return int(raw.strip())


def _parse_float(raw: str) -> float:
    value = float(raw.strip())
    # nan and inf parse as floats but no bound or timeout can mean them.
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _parse_str_tuple(raw: str) -> tuple[str, ...]:
    # Blank items are dropped so that "a, b," and "" mean ("a", "b") and ().
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_PARSERS: dict[object, Parser] = {
    str: Parser("a string", str),
    int: Parser("an integer", _parse_int),
    float: Parser("a number", _parse_float),
    bool: Parser("a boolean (true/false/1/0/yes/no)", _parse_bool),
    tuple[str, ...]: Parser("a comma-separated list", _parse_str_tuple),
}


def parser_for(annotation: object) -> Parser:
    """Returns the parser for a field annotation; TypeError if it is not supported."""
    try:
        return _PARSERS[annotation]
    except (KeyError, TypeError):
        # TypeError: an unhashable annotation object cannot be a supported one either.
        raise TypeError(f"unsupported setting type {annotation!r}") from None
