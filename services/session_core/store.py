"""PostgreSQL, the source of truth: every state transition in one transaction.

Each write locks its session row, looks up an earlier result of the same
op_id, applies the rules of rebase.py, then writes the new session row, the
change-log row and the outbox row in one statement, and commits; callers
answer only after the commit. Updates come in batches (see libs/batching/group_commit.py): one
transaction locks every session of the batch, applies the updates in order
and writes all their rows with one statement. Round trips, not PostgreSQL,
bound core's throughput, and a batch pays them once.
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
from libs.merge_patch import merge_patch
from services.session_core import events, rebase
from services.session_core.records import (
    KINDS,
    OUTCOMES,
    ChangeRecord,
    Conflict,
    DeadlineExceeded,
    InvalidArgument,
    LeaseRequired,
    NotFound,
    SessionRecord,
    StoreError,
    TooLarge,
    UpdateRequest,
)

# op_ids are client-chosen and indexed: bounded as the edge bounds them.
MAX_OP_ID_LENGTH = 128

_COLUMNS = (
    "s.session_id, s.user_id, s.state, s.version, s.epoch, s.active_device, s.lease_fence,"
    " s.devices, s.created_at, s.updated_at, s.expires_at"
)

# Locks the live session row.
_LOCK = (
    f"SELECT {_COLUMNS}, now() AS now FROM sessions s"
    " WHERE s.session_id = $1 AND s.user_id = $2 AND s.expires_at > now()"
    " FOR UPDATE"
)

# Locks the live rows of a batch's sessions. SKIP LOCKED: a row another
# transaction holds (a handoff, another batch, an operator) puts off only its
# own updates (RETRY), never every other session of the batch.
_LOCK_MANY = (
    f"SELECT {_COLUMNS}, now() AS now FROM sessions s"
    " WHERE s.session_id = ANY($1::uuid[]) AND s.expires_at > now()"
    " FOR UPDATE SKIP LOCKED"
)

# Of the sessions the lock skipped, those that exist (so were locked, not gone).
_LIVE = "SELECT session_id FROM sessions WHERE session_id = ANY($1::uuid[]) AND expires_at > now()"

# The change an op_id already made. A statement of its own, run after the lock:
# under READ COMMITTED each statement sees what committed before it started, so
# a retry that waited on the lock sees the first attempt's change (a join in
# the locking statement would keep its pre-wait snapshot and miss it).
_BY_OP_ID = "SELECT * FROM changes WHERE session_id = $1 AND op_id = $2"
_BY_OP_IDS = (
    "SELECT c.* FROM changes c JOIN unnest($1::uuid[], $2::text[]) AS k(session_id, op_id)"
    " ON c.session_id = k.session_id AND c.op_id = k.op_id"
)

# The whole write of one change: session row, change log, outbox, wake-up.
# Data-modifying CTEs always run, referenced or not.
_WRITE = """
WITH s AS (
    UPDATE sessions SET state = $3::jsonb, version = $4, active_device = $5,
        lease_fence = $6, devices = $7, updated_at = $8, expires_at = $9
    WHERE session_id = $1
), c AS (
    INSERT INTO changes (session_id, epoch, version, event_id, kind, patch, paths, op_id,
        device_id, active_device, lease_fence, outcome, committed_at)
    VALUES ($1, $2, $4, $10, $11, $12::jsonb, $13, $14, $15, $5, $6, $16, $8)
), o AS (
    INSERT INTO outbox (event_id, routing_key, payload) VALUES ($10, $17, $18)
)
SELECT pg_notify('syncbridge_outbox', '')
"""


# A batch of updates: the last state of each session, then one change-log row
# and one outbox row per update (outbox rows in update order).
_WRITE_UPDATES = f"""
WITH s AS (
    UPDATE sessions t SET state = u.state::jsonb, version = u.version,
        updated_at = u.updated_at, expires_at = u.expires_at
    FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[])
        AS u(session_id, state, version, updated_at, expires_at)
    WHERE t.session_id = u.session_id
), c AS (
    INSERT INTO changes (session_id, epoch, version, event_id, kind, patch, paths, op_id,
        device_id, active_device, lease_fence, outcome, committed_at)
    SELECT x.session_id, x.epoch, x.version, x.event_id, {KINDS.index("update")}, x.patch::jsonb,
        ARRAY(SELECT jsonb_array_elements_text(x.paths::jsonb)), x.op_id, x.device_id,
        x.active_device, x.lease_fence, x.outcome, x.committed_at
    FROM unnest($6::uuid[], $7::bigint[], $8::bigint[], $9::uuid[], $10::text[], $11::text[],
        $12::text[], $13::text[], $14::text[], $15::bigint[], $16::smallint[],
        $17::timestamptz[])
        AS x(session_id, epoch, version, event_id, patch, paths, op_id, device_id,
            active_device, lease_fence, outcome, committed_at)
), o AS (
    INSERT INTO outbox (event_id, routing_key, payload)
    SELECT e.event_id, e.routing_key, e.payload
    FROM unnest($9::uuid[], $18::text[], $19::bytea[]) WITH ORDINALITY
        AS e(event_id, routing_key, payload, n)
    ORDER BY e.n
)
SELECT pg_notify('syncbridge_outbox', '')
"""


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


def _check_op_id(op_id: str) -> None:
    if not op_id:
        raise InvalidArgument("op_id: required")
    if len(op_id) > MAX_OP_ID_LENGTH:
        raise InvalidArgument(f"op_id: longer than {MAX_OP_ID_LENGTH} characters")
    _check_text("op_id", op_id)


def _check_text(field: str, value: str) -> None:
    """PostgreSQL text cannot hold U+0000: refused here, not by the database."""
    if "\x00" in value:
        raise InvalidArgument(f"{field}: contains U+0000")


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


@dataclasses.dataclass(frozen=True)
class Written:
    """A committed change and the session as it stands after it."""

    change: ChangeRecord
    session: SessionRecord
    replayed: bool = False


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
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM sessions s"
            " WHERE s.session_id = $1 AND s.user_id = $2 AND s.expires_at > now()",
            _session_uuid(session_id),
            user_id,
        )
        if row is None:
            raise NotFound("session not found")
        return _session(row)

    async def changes_between(
        self, user_id: str, session_id: str, epoch: int, after: int, upto: int
    ) -> list[ChangeRecord]:
        """Changes with after < version <= upto in `epoch`, in order (may be incomplete)."""
        rows = await self._pool.fetch(
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
        value: int | None = await self._pool.fetchval(
            "SELECT min(version) FROM changes WHERE session_id = $1 AND epoch = $2",
            _session_uuid(session_id),
            epoch,
        )
        return value

    async def list_for_user(
        self, user_id: str, limit: int, before: tuple[dt.datetime, str] | None
    ) -> list[SessionRecord]:
        """Live sessions of a user, most recently updated first (keyset paging)."""
        if before is None:
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM sessions s WHERE s.user_id = $1"
                " AND s.expires_at > now() ORDER BY s.updated_at DESC, s.session_id DESC LIMIT $2",
                user_id,
                limit,
            )
        else:
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM sessions s WHERE s.user_id = $1"
                " AND s.expires_at > now() AND (s.updated_at, s.session_id) < ($3, $4)"
                " ORDER BY s.updated_at DESC, s.session_id DESC LIMIT $2",
                user_id,
                limit,
                before[0],
                _session_uuid(before[1]),
            )
        return [_session(row) for row in rows]

    # -- writes -----------------------------------------------------------

    async def open(
        self, user_id: str, session_id: str, device_id: str, initial_state: dict[str, Any]
    ) -> tuple[Written | None, SessionRecord, bool]:
        """Creates a session or attaches a device: (change or None, session, created)."""
        try:
            merge_patch.validate_patch(initial_state, field="initial_state_json")
        except merge_patch.PatchError as error:
            raise InvalidArgument(str(error)) from None
        self._check_state_size(initial_state)
        async with self._pool.acquire() as conn, conn.transaction():
            if not session_id:
                row = await conn.fetchrow(
                    "INSERT INTO sessions AS s (session_id, user_id, state, version,"
                    " active_device, devices, expires_at)"
                    " VALUES ($1, $2, $3, 0, $4, '{}', now() + $5)"
                    f" RETURNING {_COLUMNS}, now() AS now",
                    uuid.uuid4(),
                    user_id,
                    json.dumps(initial_state),
                    device_id,
                    self._ttl,
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
        """Refuses a malformed update before it joins a batch."""
        _check_op_id(request.op_id)
        _check_text("device_id", request.device_id)
        try:
            merge_patch.validate_patch(request.patch)
        except merge_patch.PatchError as error:
            raise InvalidArgument(str(error)) from None
        if merge_patch.json_size(request.patch) > self._max_patch:
            raise TooLarge(f"patch_json: larger than {self._max_patch} bytes")

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
                ids.append(_session_uuid(request.session_id))
            except NotFound as error:
                ids.append(None)
                answers[i] = error
        wanted = list({sid for sid in ids if sid is not None})
        if not wanted:
            return cast(list[Written | BaseException | Retry], answers)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LOCK_MANY, wanted)
            current = {row["session_id"]: _session(row) for row in rows}
            skipped = [sid for sid in wanted if sid not in current]
            busy = {r["session_id"] for r in await conn.fetch(_LIVE, skipped)} if skipped else set()
            mine = [
                (sid, request.op_id)
                for sid, request in zip(ids, requests, strict=True)
                if sid in current and current[sid].user_id == request.user_id
            ]
            replays = {
                (row["session_id"], row["op_id"]): row
                for row in await conn.fetch(
                    _BY_OP_IDS, [sid for sid, _ in mine], [op for _, op in mine]
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
                    written = self._updated(session, rows[0]["now"], request, since)
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
        conn: asyncpg.Connection,
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

    def _updated(
        self,
        current: SessionRecord,
        now: dt.datetime,
        request: UpdateRequest,
        since: list[rebase.ChangeSummary],
    ) -> Written:
        """The rules of one update against the session as it stands (pure)."""
        if request.epoch != current.epoch:
            raise Conflict(
                f"epoch: the session is in epoch {current.epoch}, not {request.epoch}",
                version=current.version,
                epoch=current.epoch,
                code="epoch_mismatch",
            )
        if request.require_lease and current.active_device != request.device_id:
            raise LeaseRequired(
                f"device {request.device_id!r} does not hold the active-device lease"
            )
        if (
            request.require_lease
            and request.expected_fence
            and request.expected_fence != current.lease_fence
        ):
            raise LeaseRequired(
                f"expected_fence {request.expected_fence} is stale"
                f" (lease fence {current.lease_fence})"
            )
        paths = merge_patch.changed_paths(request.patch)
        base_version = request.base_version
        try:
            decision = rebase.decide(
                base_version,
                current.version,
                paths,
                since,
                history_complete=len(since) == max(current.version - base_version, 0),
            )
        except rebase.FutureBaseError:
            raise Conflict(
                f"base_version {base_version} is ahead of the session ({current.version})",
                version=current.version,
                epoch=current.epoch,
            ) from None
        if decision.outcome == "conflict":
            raise Conflict(
                f"base_version {base_version} is stale and overlaps later changes"
                f" (current version {current.version})",
                version=current.version,
                epoch=current.epoch,
            )
        state = merge_patch.apply_merge_patch(current.state, request.patch)
        if not isinstance(state, dict):
            raise InvalidArgument("patch_json: the state must stay a JSON object")
        self._check_state_size(state)
        return self._next(
            current,
            now,
            kind="update",
            device_id=request.device_id,
            op_id=request.op_id,
            patch=request.patch,
            paths=paths,
            outcome=decision.outcome,
            state=state,
        )

    async def _write_updates(
        self,
        conn: asyncpg.Connection,
        written: list[Written],
        sessions: dict[uuid.UUID, SessionRecord],
    ) -> None:
        # Several updates of one session: its row takes the last state.
        final = [sessions[sid] for sid in {uuid.UUID(w.session.session_id): 0 for w in written}]
        changes = [w.change for w in written]
        await conn.execute(
            _WRITE_UPDATES,
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
        )

    async def handoff(
        self, user_id: str, session_id: str, *, device_id: str, to_device: str, op_id: str
    ) -> Written:
        """Moves the active-device lease to `to_device`, bumping the fence."""
        _check_op_id(op_id)
        if not to_device:
            raise InvalidArgument("to_device: required")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._lock(conn, user_id, session_id)
            current = _session(row)
            replay = await self._replay(conn, current, op_id)
            if replay is not None:
                return replay
            if device_id not in current.devices:
                raise InvalidArgument(f"device_id: {device_id!r} is not attached to the session")
            if to_device not in current.devices:
                raise InvalidArgument(f"to_device: {to_device!r} is not attached to the session")
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
            change = ChangeRecord(
                event_id=str(uuid.uuid4()),
                session_id=current.session_id,
                user_id=user_id,
                epoch=current.epoch,
                version=current.version + 1,
                kind="ended",
                patch=None,
                paths=frozenset(),
                op_id=None,
                device_id=device_id,
                active_device="",
                lease_fence=current.lease_fence,
                outcome="",
                committed_at=dt.datetime.now(dt.UTC),
            )
            await conn.execute("DELETE FROM sessions WHERE session_id = $1", uuid.UUID(session_id))
            await conn.execute(
                "INSERT INTO outbox (event_id, routing_key, payload) VALUES ($1, $2, $3)",
                uuid.UUID(change.event_id),
                routing_key(user_id),
                events.encode(change),
            )
            await conn.execute("SELECT pg_notify('syncbridge_outbox', '')")
            return change

    async def purge_expired(self, batch: int = 500) -> int:
        """Deletes sessions past their TTL (with their log); returns how many."""
        deleted: int = await self._pool.fetchval(
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
            current = _session(await self._lock(conn, user_id, session_id))
            await conn.execute(
                "DELETE FROM changes WHERE session_id = $1", uuid.UUID(current.session_id)
            )
            row = await conn.fetchrow(
                "UPDATE sessions AS s SET epoch = epoch + 1, updated_at = now()"
                f" WHERE session_id = $1 RETURNING {_COLUMNS}",
                uuid.UUID(current.session_id),
            )
            return _session(row)

    # -- helpers ----------------------------------------------------------

    def _check_state_size(self, state: Any) -> None:
        if merge_patch.json_size(state) > self._max_state:
            raise TooLarge(f"state: larger than {self._max_state} bytes")

    async def _lock(
        self, conn: asyncpg.Connection, user_id: str, session_id: str
    ) -> asyncpg.Record:
        row = await conn.fetchrow(_LOCK, _session_uuid(session_id), user_id)
        if row is None:
            raise NotFound("session not found")
        return row

    async def _since(
        self, conn: asyncpg.Connection, current: SessionRecord, base_version: int
    ) -> list[rebase.ChangeSummary]:
        if base_version >= current.version:
            return []
        rows = await conn.fetch(
            "SELECT version, kind, paths FROM changes WHERE session_id = $1"
            " AND epoch = $2 AND version > $3 ORDER BY version",
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
        self, conn: asyncpg.Connection, current: SessionRecord, op_id: str
    ) -> Written | None:
        """The original result of an op_id already applied (exactly-once effect)."""
        row = await conn.fetchrow(_BY_OP_ID, uuid.UUID(current.session_id), op_id)
        if row is None:
            return None
        return Written(_change(row, current.user_id), current, replayed=True)

    def _next(
        self,
        current: SessionRecord,
        now: dt.datetime,
        *,
        kind: str,
        device_id: str,
        op_id: str | None = None,
        patch: Any = None,
        paths: frozenset[tuple[str, ...]] = frozenset(),
        outcome: str = "",
        state: dict[str, Any] | None = None,
        active_device: str | None = None,
        lease_fence: int | None = None,
        devices: tuple[str, ...] | None = None,
    ) -> Written:
        """The session and change one more transition makes (pure: nothing written)."""
        session = dataclasses.replace(
            current,
            state=current.state if state is None else state,
            version=current.version + 1,
            active_device=current.active_device if active_device is None else active_device,
            lease_fence=current.lease_fence if lease_fence is None else lease_fence,
            devices=current.devices if devices is None else devices,
            updated_at=now,
            expires_at=now + self._ttl,
        )
        change = ChangeRecord(
            event_id=str(uuid.uuid4()),
            session_id=session.session_id,
            user_id=session.user_id,
            epoch=session.epoch,
            version=session.version,
            kind=kind,
            patch=patch,
            paths=paths,
            op_id=op_id,
            device_id=device_id,
            active_device=session.active_device,
            lease_fence=session.lease_fence,
            outcome=outcome,
            committed_at=now,
        )
        return Written(change, session)

    async def _write(
        self, conn: asyncpg.Connection, current: SessionRecord, now: dt.datetime, **fields: Any
    ) -> Written:
        """Commits the next change of one session (see _next) with one statement."""
        written = self._next(current, now, **fields)
        session, change = written.session, written.change
        await conn.execute(
            _WRITE,
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
        )
        return written
