"""The store's SQL text, checked without PostgreSQL: placeholders and column lists."""

from __future__ import annotations

import re

import pytest

from services.session_core import store_sql
from services.session_core.records import KINDS

# How many arguments store.py binds to each statement.
ARITY = {
    "GET": 2,
    "LOCK": 2,
    "LOCK_MANY": 1,
    "LIVE": 1,
    "BY_OP_ID": 2,
    "BY_OP_IDS": 2,
    "CHANGES_BETWEEN": 5,
    "OLDEST_VERSION": 2,
    "LIST_FIRST": 3,
    "LIST_AFTER": 5,
    "INSERT_SESSION": 5,
    "SINCE": 3,
    "WRITE": 19,
    "WRITE_UPDATES": 20,
    "DELETE_SESSION": 1,
    "INSERT_OUTBOX": 4,
    "NOTIFY": 0,
    "PURGE_EXPIRED": 1,
    "DELETE_CHANGES": 1,
    "NEW_EPOCH": 1,
}


def _statements() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(store_sql).items()
        if name.isupper() and name != "COLUMNS" and isinstance(value, str)
    }


def test_every_statement_has_a_known_arity() -> None:
    assert set(_statements()) == set(ARITY)


@pytest.mark.parametrize("name", sorted(ARITY))
def test_placeholders_are_one_to_n(name: str) -> None:
    """asyncpg binds $1..$n in order: a gap or an extra one is a bug found at run time."""
    used = {int(n) for n in re.findall(r"\$(\d+)", _statements()[name])}
    assert used == set(range(1, ARITY[name] + 1))


def _insert_lists(sql: str) -> list[tuple[list[str], list[str]]]:
    found = []
    for columns, values in re.findall(
        r"INSERT INTO \w+(?: AS \w+)? \(([^)]*)\)\s*VALUES \(([^)]*)\)", sql, re.S
    ):
        found.append(
            ([c.strip() for c in columns.split(",")], [v.strip() for v in values.split(",")])
        )
    return found


@pytest.mark.parametrize("name", ["WRITE", "INSERT_SESSION", "INSERT_OUTBOX"])
def test_inserts_give_a_value_for_each_column(name: str) -> None:
    inserts = _insert_lists(_statements()[name])
    assert inserts
    for columns, values in inserts:
        assert len(columns) == len(values), (columns, values)


def test_batched_changes_select_one_value_per_column() -> None:
    sql = store_sql.WRITE_UPDATES
    columns = re.search(r"INSERT INTO changes \(([^)]*)\)", sql, re.S)
    assert columns is not None
    selected = sql[columns.end() : sql.index("FROM unnest($6")]
    # ARRAY(SELECT ...) holds a comma-free call; split on top-level commas only.
    depth, parts, part = 0, [], ""
    for ch in selected.replace("SELECT", "", 1):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    parts.append(part)
    assert len(parts) == len(columns.group(1).split(","))


def test_batched_updates_are_logged_as_updates_in_order() -> None:
    assert f"x.event_id, {KINDS.index('update')}, x.patch" in store_sql.WRITE_UPDATES
    assert "ORDER BY e.n" in store_sql.WRITE_UPDATES


def test_batch_lock_skips_held_rows_and_single_lock_waits() -> None:
    assert store_sql.LOCK_MANY.endswith("FOR UPDATE SKIP LOCKED")
    assert store_sql.LOCK.endswith("FOR UPDATE")


@pytest.mark.parametrize("name", ["GET", "LOCK", "LOCK_MANY", "LIVE", "LIST_FIRST", "LIST_AFTER"])
def test_reads_never_see_expired_sessions(name: str) -> None:
    assert "expires_at > now()" in _statements()[name]
