"""The SQL text of the store: every statement store.py sends, and why it is shaped so.

Text only (no connection): a statement's placeholders and column lists can be
checked without PostgreSQL (store_sql_test.py); store.py binds the arguments.
"""

from __future__ import annotations

from services.session_core.records import KINDS

COLUMNS = (
    "s.session_id, s.user_id, s.state, s.version, s.epoch, s.active_device, s.lease_fence,"
    " s.devices, s.created_at, s.updated_at, s.expires_at"
)

# A live session of a user, unlocked (reads).
GET = (
    f"SELECT {COLUMNS} FROM sessions s"
    " WHERE s.session_id = $1 AND s.user_id = $2 AND s.expires_at > now()"
)

# Locks the live session row.
LOCK = (
    f"SELECT {COLUMNS}, now() AS now FROM sessions s"
    " WHERE s.session_id = $1 AND s.user_id = $2 AND s.expires_at > now()"
    " FOR UPDATE"
)

# Locks the live rows of a batch's sessions. SKIP LOCKED: a row another
# transaction holds (a handoff, another batch, an operator) puts off only its
# own updates (RETRY), never every other session of the batch.
LOCK_MANY = (
    f"SELECT {COLUMNS}, now() AS now FROM sessions s"
    " WHERE s.session_id = ANY($1::uuid[]) AND s.expires_at > now()"
    " FOR UPDATE SKIP LOCKED"
)

# Of the sessions the lock skipped, those that exist (so were locked, not gone).
LIVE = "SELECT session_id FROM sessions WHERE session_id = ANY($1::uuid[]) AND expires_at > now()"

# The change an op_id already made. A statement of its own, run after the lock:
# under READ COMMITTED each statement sees what committed before it started, so
# a retry that waited on the lock sees the first attempt's change (a join in
# the locking statement would keep its pre-wait snapshot and miss it).
BY_OP_ID = "SELECT * FROM changes WHERE session_id = $1 AND op_id = $2"
BY_OP_IDS = (
    "SELECT c.* FROM changes c JOIN unnest($1::uuid[], $2::text[]) AS k(session_id, op_id)"
    " ON c.session_id = k.session_id AND c.op_id = k.op_id"
)

# Changes with after < version <= upto of one epoch, the user's only.
CHANGES_BETWEEN = (
    "SELECT c.* FROM changes c JOIN sessions s USING (session_id)"
    " WHERE c.session_id = $1 AND s.user_id = $2 AND c.epoch = $3"
    " AND c.version > $4 AND c.version <= $5 ORDER BY c.version"
)

OLDEST_VERSION = "SELECT min(version) FROM changes WHERE session_id = $1 AND epoch = $2"

# Keyset paging, most recently updated first: the first page, then after a cursor.
# The index is on user_key (the id's digest, libs/identity: any id fits a btree
# entry; migration 0002's trigger fills it); comparing user_id as well makes a
# digest collision harmless.
LIST_FIRST = (
    f"SELECT {COLUMNS} FROM sessions s WHERE s.user_key = $3 AND s.user_id = $1"
    " AND s.expires_at > now() ORDER BY s.updated_at DESC, s.session_id DESC LIMIT $2"
)
LIST_AFTER = (
    f"SELECT {COLUMNS} FROM sessions s WHERE s.user_key = $5 AND s.user_id = $1"
    " AND s.expires_at > now() AND (s.updated_at, s.session_id) < ($3, $4)"
    " ORDER BY s.updated_at DESC, s.session_id DESC LIMIT $2"
)

# A new session at version 0; its `created` change is written by WRITE.
INSERT_SESSION = (
    "INSERT INTO sessions AS s (session_id, user_id, state, version,"
    " active_device, devices, expires_at)"
    " VALUES ($1, $2, $3, 0, $4, '{}', now() + $5)"
    f" RETURNING {COLUMNS}, now() AS now"
)

# What changed after a base version: the rebase rules' input.
SINCE = (
    "SELECT version, kind, paths FROM changes WHERE session_id = $1"
    " AND epoch = $2 AND version > $3 ORDER BY version"
)

# The whole write of one change: session row, change log, outbox, wake-up.
# Data-modifying CTEs always run, referenced or not.
WRITE = """
WITH s AS (
    UPDATE sessions SET state = $3::jsonb, version = $4, active_device = $5,
        lease_fence = $6, devices = $7, updated_at = $8, expires_at = $9
    WHERE session_id = $1
), c AS (
    INSERT INTO changes (session_id, epoch, version, event_id, kind, patch, paths, op_id,
        device_id, active_device, lease_fence, outcome, committed_at)
    VALUES ($1, $2, $4, $10, $11, $12::jsonb, $13, $14, $15, $5, $6, $16, $8)
), o AS (
    INSERT INTO outbox (event_id, routing_key, payload, user_id) VALUES ($10, $17, $18, $19)
)
SELECT pg_notify('syncbridge_outbox', '')
"""

# A batch of updates: the last state of each session, then one change-log row
# and one outbox row per update (outbox rows in update order).
WRITE_UPDATES = f"""
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
    INSERT INTO outbox (event_id, routing_key, payload, user_id)
    SELECT e.event_id, e.routing_key, e.payload, e.user_id
    FROM unnest($9::uuid[], $18::text[], $19::bytea[], $20::text[]) WITH ORDINALITY
        AS e(event_id, routing_key, payload, user_id, n)
    ORDER BY e.n
)
SELECT pg_notify('syncbridge_outbox', '')
"""

# Ending a session: its row (and, by cascade, its log) goes; the `ended` event
# still reaches the outbox, and the relay is woken.
DELETE_SESSION = "DELETE FROM sessions WHERE session_id = $1"
INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, routing_key, payload, user_id) VALUES ($1, $2, $3, $4)"
)
NOTIFY = "SELECT pg_notify('syncbridge_outbox', '')"

# Sessions past their TTL, a batch at a time; rows in use are left for the next round.
PURGE_EXPIRED = (
    "WITH gone AS (DELETE FROM sessions WHERE session_id IN ("
    " SELECT session_id FROM sessions WHERE expires_at <= now() LIMIT $1"
    " FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM gone"
)

# A new epoch: the log is dropped first, then the epoch moves on.
DELETE_CHANGES = "DELETE FROM changes WHERE session_id = $1"
NEW_EPOCH = (
    "UPDATE sessions AS s SET epoch = epoch + 1, updated_at = now()"
    f" WHERE session_id = $1 RETURNING {COLUMNS}"
)
