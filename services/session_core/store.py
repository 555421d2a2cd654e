"""PostgreSQL, the source of truth: every state transition in one transaction.

Each write locks its session row, looks up an earlier result of the same
op_id, applies the rules of transitions.py (which call rebase.py), then writes
the new session row, the change-log row and the outbox row in one statement,
and commits; callers answer only after the commit. Updates come in batches
(see libs/batching/group_commit.py): one transaction locks every session of
the batch, applies the updates in order and writes all their rows with one
statement. Round
trips, not PostgreSQL, bound core's throughput, and a batch pays them once.

This module is the I/O only: the statements are in store_sql.py, what is
refused before a transaction in store_checks.py, the transition rules in
transitions.py; each of those is tested without a server. It stays one
module (~460 lines) because each method is one transaction whose lock order
and READ COMMITTED reasoning must be read whole, against one pool.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import asyncpg

from libs.batching.group_commit import RETRY, Retry
from libs.bus.topology import routing_key
from libs.identity import identity
from services.session_core import events, pg, rebase, transitions
from services.session_core import store_sql as sql
from services.session_core.records import (
    KINDS,
    OUTCOMES,
    ChangeRecord,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    SessionRecord,
    StoreError,
    TooLarge,
    UpdateRequest,
)
from services.session_core.store_checks import (
    check_initial_state,
    check_op_id,
    check_update,
    decode_paths,
    encode_paths,
    session_uuid,
)
from services.session_core.transitions import Written

__all__ = ["Store", "Written"]


def _session(row: asyncpg.Record) -> SessionRecord:
    return SessionRecord(
        session_id=str(row["session_id"]),
        user_id=row["user_id"],
        state=json.loads(row["state"]),
        version=row["version"],
        epoch=row["epoch"],
        active_device=row["active_device"],
        lease_fence=row["lease_fence"],
        devices=tuple(row["devices"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


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
        self,
        pool: asyncpg.Pool,
        *,
        ttl: dt.timedelta,
        max_state_bytes: int,
        max_patch_bytes: int,
        max_devices: int = 64,
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._max_state = max_state_bytes
        self._max_patch = max_patch_bytes
        # A session's `devices` only grows (every new device id that attaches), and rides
        # in every snapshot and row: bounded, or a client minting ids grows it forever.
        self._max_devices = max_devices

    # -- reads ------------------------------------------------------------

    async def get(self, user_id: str, session_id: str) -> SessionRecord:
        row = await self._pool.fetchrow(sql.GET, session_uuid(session_id), user_id)
        if row is None:
            raise NotFound("session not found")
        return _session(row)

    async def changes_between(
        self, user_id: str, session_id: str, epoch: int, after: int, upto: int
    ) -> list[ChangeRecord]:
        """Changes with after < version <= upto in `epoch`, in order (may be incomplete)."""
        rows = await self._pool.fetch(
            sql.CHANGES_BETWEEN, session_uuid(session_id), user_id, epoch, after, upto
        )
        return [_change(row, user_id) for row in rows]

    async def oldest_version(self, session_id: str, epoch: int) -> int | None:
        value: int | None = await self._pool.fetchval(
            sql.OLDEST_VERSION, session_uuid(session_id), epoch
        )
        return value

    async def list_for_user(
        self, user_id: str, limit: int, before: tuple[dt.datetime, str] | None
    ) -> list[SessionRecord]:
        """Live sessions of a user, most recently updated first (keyset paging)."""
        if before is None:
            rows = await self._pool.fetch(sql.LIST_FIRST, user_id, limit, identity.digest(user_id))
        else:
            rows = await self._pool.fetch(
                sql.LIST_AFTER,
                user_id,
                limit,
                before[0],
                session_uuid(before[1]),
                identity.digest(user_id),
            )
        return [_session(row) for row in rows]

    # -- writes -----------------------------------------------------------

    async def open(
        self, user_id: str, session_id: str, device_id: str, initial_state: dict[str, Any]
    ) -> tuple[Written | None, SessionRecord, bool]:
        """Creates a session or attaches a device: (change or None, session, created)."""
        check_initial_state(initial_state, self._max_state)
        async with self._pool.acquire() as conn, conn.transaction():
            if not session_id:
                row = pg.one(
                    await conn.fetchrow(
                        sql.INSERT_SESSION,
                        uuid.uuid4(),
                        user_id,
                        json.dumps(initial_state),
                        device_id,
                        self._ttl,
                    )
                )
                base = _session(row)
                written = await self._write(
                    conn,
                    base,
                    row["now"],
                    kind="created",
                    device_id=device_id,
                    patch=initial_state,
                    devices=(device_id,),
                )
                return written, written.session, True
            row = await self._lock(conn, user_id, session_id)
            current = _session(row)
            if device_id in current.devices:
                return None, current, False
            if len(current.devices) >= self._max_devices:
                raise TooLarge(
                    f"devices: the session already has {self._max_devices} devices attached"
                )
            written = await self._write(
                conn,
                current,
                row["now"],
                kind="attach",
                device_id=device_id,
                devices=(*current.devices, device_id),
            )
            return written, written.session, False

    def check_update(self, request: UpdateRequest) -> None:
        """Refuses a malformed update before it joins a batch (store_checks.check_update)."""
        check_update(request, self._max_patch)

    async def apply_updates(
        self, requests: Sequence[UpdateRequest]
    ) -> list[Written | BaseException | Retry]:
        """Applies checked updates in one transaction, in order; one answer each.

        An answer is the committed (or replayed) change, the update's refusal,
        or RETRY when another transaction holds its session's row.
        """
        try:
            return await self._apply_batch(requests)
        except asyncpg.PostgresConnectionError:
            raise
        except asyncpg.PostgresError as error:
            if len(requests) == 1:
                return [error]
        # One update PostgreSQL refuses must not fail its neighbours: each alone.
        answers: list[Written | BaseException | Retry] = []
        for request in requests:
            try:
                answers += await self._apply_batch([request])
            except asyncpg.PostgresConnectionError:
                raise
            except asyncpg.PostgresError as error:
                answers.append(error)
        return answers

    async def _apply_batch(
        self, requests: Sequence[UpdateRequest]
    ) -> list[Written | BaseException | Retry]:
        answers: list[Written | BaseException | Retry | None] = [None] * len(requests)
        ids: list[uuid.UUID | None] = []
        for i, request in enumerate(requests):
            try:
                ids.append(session_uuid(request.session_id))
            except NotFound as error:
                ids.append(None)
                answers[i] = error
        wanted = list({sid for sid in ids if sid is not None})
        if not wanted:
            return cast(list[Written | BaseException | Retry], answers)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(sql.LOCK_MANY, wanted)
            current = {row["session_id"]: _session(row) for row in rows}
            skipped = [sid for sid in wanted if sid not in current]
            busy = (
                {r["session_id"] for r in await conn.fetch(sql.LIVE, skipped)} if skipped else set()
            )
            mine = [
                (sid, request.op_id)
                for sid, request in zip(ids, requests, strict=True)
                if sid in current and current[sid].user_id == request.user_id
            ]
            replays = {
                (row["session_id"], row["op_id"]): row
                for row in await conn.fetch(
                    sql.BY_OP_IDS, [sid for sid, _ in mine], [op for _, op in mine]
                )
            }
            committed = {sid: session.version for sid, session in current.items()}
            # Checked with the rows locked: an update whose caller has stopped
            # waiting is not written (the lock wait is where time goes).
            locked_at = time.monotonic()
            made: dict[uuid.UUID, list[rebase.ChangeSummary]] = {}
            done: dict[tuple[uuid.UUID, str], Written] = {}
            for i, (sid, request) in enumerate(zip(ids, requests, strict=True)):
                if sid is None:
                    continue
                session = current.get(sid)
                if request.deadline is not None and locked_at >= request.deadline:
                    answers[i] = DeadlineExceeded("the deadline passed before the update ran")
                    continue
                if sid in busy:
                    answers[i] = RETRY
                    continue
                if session is None or session.user_id != request.user_id:
                    answers[i] = NotFound("session not found")
                    continue
                if (sid, request.op_id) in done:
                    answers[i] = dataclasses.replace(done[sid, request.op_id], replayed=True)
                    continue
                replay = replays.get((sid, request.op_id))
                if replay is not None:
                    answers[i] = Written(_change(replay, session.user_id), session, replayed=True)
                    continue
                try:
                    since = await self._history(
                        conn, session, request.base_version, committed[sid], made.get(sid, [])
                    )
                    written = transitions.updated(
                        session,
                        rows[0]["now"],
                        request,
                        since,
                        ttl=self._ttl,
                        max_state_bytes=self._max_state,
                    )
                except StoreError as error:
                    answers[i] = error
                    continue
                answers[i] = done[sid, request.op_id] = written
                current[sid] = written.session
                made.setdefault(sid, []).append(
                    rebase.ChangeSummary(
                        version=written.change.version, kind="update", paths=written.change.paths
                    )
                )
            if done:
                await self._write_updates(conn, list(done.values()), current)
        return cast(list[Written | BaseException | Retry], answers)

    async def _history(
        self,
        conn: pg.Connection,
        session: SessionRecord,
        base_version: int,
        committed: int,
        made: list[rebase.ChangeSummary],
    ) -> list[rebase.ChangeSummary]:
        """The changes after `base_version`: committed ones, then this batch's."""
        if base_version >= session.version:
            return []
        earlier = await self._since(conn, session, base_version) if base_version < committed else []
        return earlier + [change for change in made if change.version > base_version]

    async def _write_updates(
        self,
        conn: pg.Connection,
        written: list[Written],
        sessions: dict[uuid.UUID, SessionRecord],
    ) -> None:
        # Several updates of one session: its row takes the last state.
        final = [sessions[sid] for sid in {uuid.UUID(w.session.session_id): 0 for w in written}]
        changes = [w.change for w in written]
        await conn.execute(
            sql.WRITE_UPDATES,
            [uuid.UUID(s.session_id) for s in final],
            [json.dumps(s.state) for s in final],
            [s.version for s in final],
            [s.updated_at for s in final],
            [s.expires_at for s in final],
            [uuid.UUID(c.session_id) for c in changes],
            [c.epoch for c in changes],
            [c.version for c in changes],
            [uuid.UUID(c.event_id) for c in changes],
            [json.dumps(c.patch) for c in changes],
            [json.dumps(encode_paths(c.paths)) for c in changes],
            [c.op_id for c in changes],
            [c.device_id for c in changes],
            [c.active_device for c in changes],
            [c.lease_fence for c in changes],
            [OUTCOMES.index(c.outcome) for c in changes],
            [c.committed_at for c in changes],
            [routing_key(c.user_id) for c in changes],
            [events.encode(c) for c in changes],
            [c.user_id for c in changes],
        )

    async def handoff(
        self, user_id: str, session_id: str, *, device_id: str, to_device: str, op_id: str
    ) -> Written:
        """Moves the active-device lease to `to_device`, bumping the fence."""
        check_op_id(op_id)
        if not to_device:
            raise InvalidArgument("to_device: required")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._lock(conn, user_id, session_id)
            current = _session(row)
            replay = await self._replay(conn, current, op_id)
            if replay is not None:
                return replay
            transitions.handoff_checked(current, device_id=device_id, to_device=to_device)
            return await self._write(
                conn,
                current,
                row["now"],
                kind="handoff",
                device_id=device_id,
                op_id=op_id,
                active_device=to_device,
                lease_fence=current.lease_fence + 1,
            )

    async def end(self, user_id: str, session_id: str, device_id: str) -> ChangeRecord:
        """Deletes the session and its log; the `ended` event still goes out."""
        async with self._pool.acquire() as conn, conn.transaction():
            current = _session(await self._lock(conn, user_id, session_id))
            change = transitions.ended(current, device_id=device_id, now=dt.datetime.now(dt.UTC))
            await conn.execute(sql.DELETE_SESSION, uuid.UUID(session_id))
            await conn.execute(
                sql.INSERT_OUTBOX,
                uuid.UUID(change.event_id),
                routing_key(user_id),
                events.encode(change),
                user_id,
            )
            await conn.execute(sql.NOTIFY)
            return change

    async def purge_expired(self, batch: int = 500) -> int:
        """Deletes sessions past their TTL (with their log); returns how many."""
        deleted: int = await self._pool.fetchval(sql.PURGE_EXPIRED, batch)
        return deleted

    async def reset_history(self, user_id: str, session_id: str) -> SessionRecord:
        """Drops the change log and starts a new epoch (after a restore, say).

        Devices holding the old epoch then get a snapshot with recovered=false.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            current = _session(await self._lock(conn, user_id, session_id))
            await conn.execute(sql.DELETE_CHANGES, uuid.UUID(current.session_id))
            row = await conn.fetchrow(sql.NEW_EPOCH, uuid.UUID(current.session_id))
            return _session(pg.one(row))

    # -- helpers ----------------------------------------------------------

    async def _lock(self, conn: pg.Connection, user_id: str, session_id: str) -> asyncpg.Record:
        row = await conn.fetchrow(sql.LOCK, session_uuid(session_id), user_id)
        if row is None:
            raise NotFound("session not found")
        return row

    async def _since(
        self, conn: pg.Connection, current: SessionRecord, base_version: int
    ) -> list[rebase.ChangeSummary]:
        if base_version >= current.version:
            return []
        rows = await conn.fetch(
            sql.SINCE,
            uuid.UUID(current.session_id),
            current.epoch,
            base_version,
        )
        return [
            rebase.ChangeSummary(
                version=r["version"],
                kind=cast(rebase.ChangeKind, KINDS[r["kind"]]),
                paths=decode_paths(r["paths"]),
            )
            for r in rows
        ]

    async def _replay(
        self, conn: pg.Connection, current: SessionRecord, op_id: str
    ) -> Written | None:
        """The original result of an op_id already applied (exactly-once effect)."""
        row = await conn.fetchrow(sql.BY_OP_ID, uuid.UUID(current.session_id), op_id)
        if row is None:
            return None
        return Written(_change(row, current.user_id), current, replayed=True)

    async def _write(
        self, conn: pg.Connection, current: SessionRecord, now: dt.datetime, **fields: Any
    ) -> Written:
        """Commits the next change of one session (transitions.next_change) in one statement."""
        written = transitions.next_change(current, now, ttl=self._ttl, **fields)
        session, change = written.session, written.change
        await conn.execute(
            sql.WRITE,
            uuid.UUID(session.session_id),
            session.epoch,
            json.dumps(session.state),
            session.version,
            session.active_device,
            session.lease_fence,
            list(session.devices),
            now,
            session.expires_at,
            uuid.UUID(change.event_id),
            KINDS.index(change.kind),
            json.dumps(change.patch) if change.patch is not None else None,
            encode_paths(change.paths),
            change.op_id,
            change.device_id,
            OUTCOMES.index(change.outcome),
            routing_key(session.user_id),
            events.encode(change),
            session.user_id,
        )
        return written
