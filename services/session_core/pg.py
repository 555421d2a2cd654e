"""asyncpg types shared by the modules that talk to PostgreSQL (store, relay, migrate).

asyncpg-stubs types a pool's connection (`PoolConnectionProxy`) apart from a
direct one (`Connection`), though both run the same statements; the helpers
take either. `one` names a row that the statement always returns (INSERT ...
RETURNING, an aggregate), so a missing one is a bug, not a None to pass on.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A string: asyncpg's classes are generic only in the stubs.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
Row = TypeVar("Row")


def one(row: Row | None) -> Row:
    """`row`, which the statement always returns; raises if PostgreSQL gave none."""
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row
