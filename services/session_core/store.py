"""PostgreSQL, the source of truth: every state transition in one transaction.

Each write locks the session row, checks op_id (exactly-once effect), applies
the rules of rebase.py, bumps the version, appends to the change log and
writes the outbox row, then commits; callers answer only after the commit.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any, cast

import asyncpg

from services.session_core import events, merge_patch, rebase
from services.session_core.records import (
    KINDS,
    OUTCOMES,
    ChangeRecord,
    Conflict,
    InvalidArgument,
    LeaseRequired,
    NotFound,
    SessionRecord,
    TooLarge,
)

_SESSION_COLUMNS = (
    "session_id, user_id, state, version, epoch, active_device, lease_fence,"
    " created_at, updated_at, expires_at"
)


def encode_paths(paths: frozenset[tuple[str, ...]]) -> list[str]:
    return sorted(json.dumps(list(path)) for path in paths)


def decode_paths(paths: Sequence[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(json.loads(path)) for path in paths)


def _session_uuid(session_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(session_id)
    except ValueError:
        # An id that cannot exist is simply not found: no oracle for guessing.
        raise NotFound("session not found") from None


def _change(row: asyncpg.Record, user_id: str) -> ChangeRecord:
    return ChangeRecord(
        event_id=str(row["event_id"]),
        session_id=str(row["session_id"]),
        user_id=user_id,
        epoch=row["epoch"],
        version=row["version"],
        kind=KINDS[row["kind"]],
        patch=json.loads(row["patch"]) if row["patch"] is not None else None,
        paths=decode_paths(row["paths"]),
        op_id=row["op_id"],
        device_id=row["device_id"],
        active_device=row["active_device"],
        lease_fence=row["lease_fence"],
        outcome=OUTCOMES[row["outcome"]],
        committed_at=row["committed_at"],
    )


class Store:
    """Session operations against an asyncpg pool (see session.proto)."""

    def __init__(
        self, pool: asyncpg.Pool, *, ttl: dt.timedelta, max_state_bytes: int, max_patch_bytes: int
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._max_state = max_state_bytes
        self._max_patch = max_patch_bytes

    # -- reads ------------------------------------------------------------

    async def get(self, user_id: str, session_id: str) -> SessionRecord:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_SESSION_COLUMNS} FROM sessions"
                " WHERE session_id = $1 AND user_id = $2 AND expires_at > now()",
                _session_uuid(session_id),
                user_id,
            )
            if row is None:
                raise NotFound("session not found")
            return await self._record(conn, row)

    async def changes_between(
        self, user_id: str, session_id: str, epoch: int, after: int, upto: int
    ) -> list[ChangeRecord]:
        """Changes with after < version <= upto in `epoch`, in order (may be incomplete)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT c.* FROM changes c JOIN sessions s USING (session_id)"
                " WHERE c.session_id = $1 AND s.user_id = $2 AND c.epoch = $3"
                " AND c.version > $4 AND c.version <= $5 ORDER BY c.version",
                _session_uuid(session_id),
                user_id,
                epoch,
                after,
                upto,
            )
        return [_change(row, user_id) for row in rows]

    async def oldest_version(self, session_id: str, epoch: int) -> int | None:
        async with self._pool.acquire() as conn:
            value: int | None = await conn.fetchval(
                "SELECT min(version) FROM changes WHERE session_id = $1 AND epoch = $2",
                _session_uuid(session_id),
                epoch,
            )
        return value

    async def list_for_user(
        self, user_id: str, limit: int, before: tuple[dt.datetime, str] | None
    ) -> list[SessionRecord]:
        """Live sessions of a user, most recently updated first (keyset paging)."""
        async with self._pool.acquire() as conn:
            if before is None:
                rows = await conn.fetch(
                    f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = $1"
                    " AND expires_at > now() ORDER BY updated_at DESC, session_id DESC LIMIT $2",
                    user_id,
                    limit,
                )
            else:
                rows = await conn.fetch(
                    f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = $1"
                    " AND expires_at > now() AND (updated_at, session_id) < ($3, $4)"
                    " ORDER BY updated_at DESC, session_id DESC LIMIT $2",
                    user_id,
                    limit,
                    before[0],
                    uuid.UUID(before[1]),
                )
            return [await self._record(conn, row, with_devices=False) for row in rows]

    # -- writes -----------------------------------------------------------

    async def open(
        self, user_id: str, session_id: str, device_id: str, initial_state: dict[str, Any]
    ) -> tuple[SessionRecord, ChangeRecord | None, bool]:
        """Creates a session, or attaches a device; returns (session, change, created)."""
        self._check_state_size(initial_state)
        async with self._pool.acquire() as conn, conn.transaction():
            if not session_id:
                sid = uuid.uuid4()
                row = await conn.fetchrow(
                    "INSERT INTO sessions (session_id, user_id, state, version, active_device,"
                    " expires_at) VALUES ($1, $2, $3, 1, $4, now() + $5)"
                    f" RETURNING {_SESSION_COLUMNS}",
                    sid,
                    user_id,
                    json.dumps(initial_state),
                    device_id,
                    self._ttl,
                )
                await conn.execute(
                    "INSERT INTO session_devices (session_id, device_id) VALUES ($1, $2)",
                    sid,
                    device_id,
                )
                change = await self._append(
                    conn, row, kind="created", version=1, device_id=device_id, patch=initial_state
                )
                return await self._record(conn, row), change, True
            row = await self._lock(conn, user_id, session_id)
            attached = await conn.fetchval(
                "SELECT true FROM session_devices WHERE session_id = $1 AND device_id = $2",
                row["session_id"],
                device_id,
            )
            if attached:
                return await self._record(conn, row), None, False
            await conn.execute(
                "INSERT INTO session_devices (session_id, device_id) VALUES ($1, $2)",
                row["session_id"],
                device_id,
            )
            row = await self._bump(conn, row, state=None)
            change = await self._append(
                conn, row, kind="attach", version=row["version"], device_id=device_id
            )
            return await self._record(conn, row), change, False

    async def apply_update(
        self,
        user_id: str,
        session_id: str,
        *,
        device_id: str,
        op_id: str,
        base_version: int,
        epoch: int,
        patch: Any,
        require_lease: bool,
    ) -> tuple[ChangeRecord, bool]:
        """Applies a merge patch; returns (change, replayed)."""
        if not op_id:
            raise InvalidArgument("op_id: required")
        try:
            merge_patch.validate_patch(patch)
        except merge_patch.PatchError as error:
            raise InvalidArgument(str(error)) from None
        if merge_patch.json_size(patch) > self._max_patch:
            raise TooLarge(f"patch_json: larger than {self._max_patch} bytes")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._lock(conn, user_id, session_id)
            replay = await self._by_op_id(conn, row, op_id)
            if replay is not None:
                return replay, True
            if epoch != row["epoch"]:
                raise Conflict(
                    f"epoch: the session is in epoch {row['epoch']}, not {epoch}",
                    version=row["version"],
                    epoch=row["epoch"],
                    code="epoch_mismatch",
                )
            if require_lease and row["active_device"] != device_id:
                raise LeaseRequired(f"device {device_id!r} does not hold the active-device lease")
            paths = merge_patch.changed_paths(patch)
            since: list[rebase.ChangeSummary] = []
            if base_version < row["version"]:
                rows = await conn.fetch(
                    "SELECT version, kind, paths FROM changes WHERE session_id = $1"
                    " AND epoch = $2 AND version > $3 ORDER BY version",
                    row["session_id"],
                    row["epoch"],
                    base_version,
                )
                since = [
                    rebase.ChangeSummary(
                        version=r["version"],
                        kind=cast(rebase.ChangeKind, KINDS[r["kind"]]),
                        paths=decode_paths(r["paths"]),
                    )
                    for r in rows
                ]
            try:
                decision = rebase.decide(
                    base_version,
                    row["version"],
                    paths,
                    since,
                    history_complete=len(since) == max(row["version"] - base_version, 0),
                )
            except rebase.FutureBaseError:
                raise Conflict(
                    f"base_version {base_version} is ahead of the session ({row['version']})",
                    version=row["version"],
                    epoch=row["epoch"],
                ) from None
            if decision.outcome != "applied" and decision.outcome != "rebased":
                raise Conflict(
                    f"base_version {base_version} is stale and overlaps later changes"
                    f" (current version {row['version']})",
                    version=row["version"],
                    epoch=row["epoch"],
                )
            state = merge_patch.apply_merge_patch(json.loads(row["state"]), patch)
            if not isinstance(state, dict):
                raise InvalidArgument("patch_json: the state must stay a JSON object")
            self._check_state_size(state)
            row = await self._bump(conn, row, state=state)
            change = await self._append(
                conn,
                row,
                kind="update",
                version=row["version"],
                device_id=device_id,
                op_id=op_id,
                patch=patch,
                paths=paths,
                outcome=decision.outcome,
            )
            return change, False

    async def handoff(
        self, user_id: str, session_id: str, *, device_id: str, to_device: str, op_id: str
    ) -> tuple[ChangeRecord, bool]:
        """Moves the active-device lease to `to_device`, bumping the fence."""
        if not op_id:
            raise InvalidArgument("op_id: required")
        if not to_device:
            raise InvalidArgument("to_device: required")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._lock(conn, user_id, session_id)
            replay = await self._by_op_id(conn, row, op_id)
            if replay is not None:
                return replay, True
            attached = await conn.fetchval(
                "SELECT true FROM session_devices WHERE session_id = $1 AND device_id = $2",
                row["session_id"],
                to_device,
            )
            if not attached:
                raise InvalidArgument(f"to_device: {to_device!r} is not attached to the session")
            row = await conn.fetchrow(
                "UPDATE sessions SET version = version + 1, active_device = $2,"
                " lease_fence = lease_fence + 1, updated_at = now(), expires_at = now() + $3"
                f" WHERE session_id = $1 RETURNING {_SESSION_COLUMNS}",
                row["session_id"],
                to_device,
                self._ttl,
            )
            change = await self._append(
                conn, row, kind="handoff", version=row["version"], device_id=device_id, op_id=op_id
            )
            return change, False

    async def end(self, user_id: str, session_id: str, device_id: str) -> ChangeRecord:
        """Deletes the session and its log; the `ended` event still goes out."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._lock(conn, user_id, session_id)
            change = ChangeRecord(
                event_id=str(uuid.uuid4()),
                session_id=str(row["session_id"]),
                user_id=user_id,
                epoch=row["epoch"],
                version=row["version"] + 1,
                kind="ended",
                patch=None,
                paths=frozenset(),
                op_id=None,
                device_id=device_id,
                active_device="",
                lease_fence=row["lease_fence"],
                outcome="",
                committed_at=dt.datetime.now(dt.UTC),
            )
            await conn.execute("DELETE FROM sessions WHERE session_id = $1", row["session_id"])
            await self._enqueue(conn, change)
            return change

    async def purge_expired(self, batch: int = 500) -> int:
        """Deletes sessions past their TTL (with their log); returns how many."""
        async with self._pool.acquire() as conn:
            deleted: int = await conn.fetchval(
                "WITH gone AS (DELETE FROM sessions WHERE session_id IN ("
                " SELECT session_id FROM sessions WHERE expires_at <= now() LIMIT $1"
                " FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM gone",
                batch,
            )
        return deleted

    async def reset_history(self, user_id: str, session_id: str) -> SessionRecord:
        """Drops the change log and starts a new epoch (after a restore, say).

        Devices holding the old epoch then get a snapshot with recovered=false.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._lock(conn, user_id, session_id)
            await conn.execute("DELETE FROM changes WHERE session_id = $1", row["session_id"])
            row = await conn.fetchrow(
                "UPDATE sessions SET epoch = epoch + 1, updated_at = now()"
                f" WHERE session_id = $1 RETURNING {_SESSION_COLUMNS}",
                row["session_id"],
            )
            return await self._record(conn, row)

    # -- helpers ----------------------------------------------------------

    def _check_state_size(self, state: Any) -> None:
        if merge_patch.json_size(state) > self._max_state:
            raise TooLarge(f"state: larger than {self._max_state} bytes")

    async def _lock(
        self, conn: asyncpg.Connection, user_id: str, session_id: str
    ) -> asyncpg.Record:
        row = await conn.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1 AND user_id = $2"
            " AND expires_at > now() FOR UPDATE",
            _session_uuid(session_id),
            user_id,
        )
        if row is None:
            raise NotFound("session not found")
        return row

    async def _by_op_id(
        self, conn: asyncpg.Connection, row: asyncpg.Record, op_id: str
    ) -> ChangeRecord | None:
        found = await conn.fetchrow(
            "SELECT * FROM changes WHERE session_id = $1 AND op_id = $2", row["session_id"], op_id
        )
        return _change(found, row["user_id"]) if found is not None else None

    async def _bump(
        self, conn: asyncpg.Connection, row: asyncpg.Record, *, state: dict[str, Any] | None
    ) -> asyncpg.Record:
        bumped: asyncpg.Record = await conn.fetchrow(
            "UPDATE sessions SET version = version + 1, state = coalesce($2::jsonb, state),"
            " updated_at = now(), expires_at = now() + $3"
            f" WHERE session_id = $1 RETURNING {_SESSION_COLUMNS}",
            row["session_id"],
            json.dumps(state) if state is not None else None,
            self._ttl,
        )
        return bumped

    async def _append(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        *,
        kind: str,
        version: int,
        device_id: str,
        op_id: str | None = None,
        patch: Any = None,
        paths: frozenset[tuple[str, ...]] = frozenset(),
        outcome: str = "",
    ) -> ChangeRecord:
        change = ChangeRecord(
            event_id=str(uuid.uuid4()),
            session_id=str(row["session_id"]),
            user_id=row["user_id"],
            epoch=row["epoch"],
            version=version,
            kind=kind,
            patch=patch,
            paths=paths,
            op_id=op_id,
            device_id=device_id,
            active_device=row["active_device"],
            lease_fence=row["lease_fence"],
            outcome=outcome,
            committed_at=row["updated_at"],
        )
        await conn.execute(
            "INSERT INTO changes (session_id, epoch, version, event_id, kind, patch, paths, op_id,"
            " device_id, active_device, lease_fence, outcome, committed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            row["session_id"],
            change.epoch,
            change.version,
            uuid.UUID(change.event_id),
            KINDS.index(kind),
            json.dumps(patch) if patch is not None else None,
            encode_paths(paths),
            op_id,
            device_id,
            change.active_device,
            change.lease_fence,
            OUTCOMES.index(outcome),
            change.committed_at,
        )
        await self._enqueue(conn, change)
        return change

    async def _enqueue(self, conn: asyncpg.Connection, change: ChangeRecord) -> None:
        await conn.execute(
            "INSERT INTO outbox (event_id, routing_key, payload) VALUES ($1, $2, $3)",
            uuid.UUID(change.event_id),
            events.routing_key(change.user_id),
            events.encode(change),
        )
        # Wakes the relay at commit time; it also polls, so a lost notify only delays.
        await conn.execute("NOTIFY syncbridge_outbox")

    async def _record(
        self, conn: asyncpg.Connection, row: asyncpg.Record, *, with_devices: bool = True
    ) -> SessionRecord:
        devices: tuple[str, ...] = ()
        if with_devices:
            found = await conn.fetch(
                "SELECT device_id FROM session_devices WHERE session_id = $1 ORDER BY attached_at",
                row["session_id"],
            )
            devices = tuple(r["device_id"] for r in found)
        return SessionRecord(
            session_id=str(row["session_id"]),
            user_id=row["user_id"],
            state=json.loads(row["state"]),
            version=row["version"],
            epoch=row["epoch"],
            active_device=row["active_device"],
            lease_fence=row["lease_fence"],
            devices=devices,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            expires_at=row["expires_at"],
        )
