"""pg.one: a row the statement always returns is handed on; none is an error, not a None."""

from __future__ import annotations

import pytest

from services.session_core import pg


def test_a_missing_row_raises_instead_of_passing_none_on() -> None:
    with pytest.raises(RuntimeError, match="no row"):
        pg.one(None)


def test_a_row_is_returned_as_it_is() -> None:
    row = {"n": 1}  # stands for an asyncpg.Record, which only a server makes
    assert pg.one(row) is row
