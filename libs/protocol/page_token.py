"""The page token of ListSessions: a keyset cursor, written so that any well-formed one is valid.

Sessions are listed most recently updated first; a page ends at (updated_at,
session_id) and the next one starts after it. The token is that position,
spelled `<microseconds since the epoch>-<session id as 32 hex digits>`.
Every string of that shape names a position (perhaps before or after every
session), so a client or a fuzzer that follows the documented pattern is
never refused, and nothing else reaches the database: core decodes with
`decode`, the edge checks `PATTERN` first (the OpenAPI document states it).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

PATTERN = "^([0-9]{1,18})-([0-9a-f]{32})$"
MAX_LENGTH = 51

_SHAPE = re.compile(PATTERN)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The latest instant a datetime holds: a cursor past it lists from the start.
_LAST = dt.datetime.max.replace(tzinfo=dt.UTC)
_LAST_MICROS = (_LAST - _EPOCH) // dt.timedelta(microseconds=1)


class BadPageToken(ValueError):
    """The token is not of the documented shape."""


def encode(updated_at: dt.datetime, session_id: uuid.UUID | str) -> str:
    """The token of the position just after (updated_at, session_id)."""
    micros = (updated_at.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{max(micros, 0)}-{uuid.UUID(str(session_id)).hex}"


def decode(token: str) -> tuple[dt.datetime, uuid.UUID]:
    """The position a token names; BadPageToken if it is not of the documented shape."""
    # search, as JSON Schema validators apply a pattern: Python's `$` also matches
    # before a final newline, so "…\n" passes the edge's check and must pass here.
    match = _SHAPE.search(token)
    if match is None:
        raise BadPageToken("page_token: not a page token")
    micros = min(int(match.group(1)), _LAST_MICROS)
    return _EPOCH + dt.timedelta(microseconds=micros), uuid.UUID(hex=match.group(2))
