"""The rule a client-chosen id (device, session, op) follows over HTTP, as a JSON Schema.

An id is 1 to 128 characters, none of them a control, format, private-use
or separator character (a plain space is allowed). Those are the characters
that break a log line, hide in a terminal, or are refused by a store
(PostgreSQL text holds no NUL). Written as a JSON Schema so the OpenAPI
document states the exact rule the edge enforces: a client (or a fuzzer)
that follows the document is never refused for an id's spelling.

Unassigned code points are allowed: listing them would tie the rule to one
Unicode version. Lone surrogates cannot be in a valid UTF-8 request, so the
schema does not name them; `is_valid_id` refuses them too (a header the
server decoded with `surrogateescape` carries them).
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID_LENGTH = 128

# (first, last) code points refused in an id: categories Cc, Cf, Co, Zl, Zp and
# Zs other than U+0020 (Unicode 14; surrogates, Cs, are handled apart).
FORBIDDEN_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F),
    (0x007F, 0x00A0),
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x3000),
    (0xE000, 0xF8FF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    (0xF0000, 0xFFFFD),
    (0x100000, 0x10FFFD),
)


# The characters themselves, unescaped (none is a backslash, `]`, `^` or `-`): the class
# then means the same to Python's re and to ECMA-262; JSON carries them as \u escapes.
FORBIDDEN_CLASS = (
    "["
    + "".join(
        chr(first) if first == last else f"{chr(first)}-{chr(last)}"
        for first, last in FORBIDDEN_RANGES
    )
    + "]"
)

_FORBIDDEN = re.compile(FORBIDDEN_CLASS)
_SURROGATE = re.compile("[\ud800-\udfff]")


def id_schema(description: str = "") -> dict[str, Any]:
    """The JSON Schema of an id (a fresh dict: callers may add to it)."""
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_LENGTH,
        # "Contains none of": `not` + an unanchored class means the same in every
        # regex dialect, where `^…$` lets Python's re accept a trailing newline.
        # (`type` inside, so a non-string fails on its type alone.)
        "not": {"type": "string", "pattern": FORBIDDEN_CLASS},
    }
    if description:
        schema["description"] = description
    return schema


def is_valid_id(value: object) -> bool:
    """True if `value` is an id under `id_schema()` (and holds no lone surrogate)."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_ID_LENGTH
        and _FORBIDDEN.search(value) is None
        and _SURROGATE.search(value) is None
    )


def has_surrogates(value: str) -> bool:
    """True if `value` holds a lone surrogate (not encodable as UTF-8)."""
    return _SURROGATE.search(value) is not None
