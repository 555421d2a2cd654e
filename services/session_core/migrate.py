"""Applies the versioned SQL migrations in ./migrations, once each, in order.

`bazel run //services/session_core:migrate` (or core's start-up in dev) runs
it; an advisory lock makes concurrent runs of several replicas safe.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import asyncpg

from services.session_core import pg
from services.session_core.config import CoreConfig

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x5B5E5510  # any constant shared by every replica


def pending(applied: set[int]) -> list[tuple[int, Path]]:
    """Migration files not yet applied, ordered by their numeric prefix."""
    found = sorted((int(path.name.split("_", 1)[0]), path) for path in MIGRATIONS.glob("*.sql"))
    return [(number, path) for number, path in found if number not in applied]


async def migrate(conn: pg.Connection) -> list[str]:
    """Brings the schema up to date; returns the names of the applied files."""
    done: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch("SELECT version FROM schema_migrations")
        for number, path in pending({row["version"] for row in rows}):
            await conn.execute(path.read_text())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, path.name
            )
            done.append(path.name)
    return done


async def _main(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dsn",
        # The same variable and default as session-core's, so the job and the
        # service it migrates for cannot disagree.
        default=os.environ.get("SYNCBRIDGE_CORE_PG_DSN", CoreConfig().pg_dsn),
        help="PostgreSQL DSN (default: $SYNCBRIDGE_CORE_PG_DSN or the local dev server)",
    )
    asyncio.run(_main(parser.parse_args().dsn))


if __name__ == "__main__":
    main()
