-- Sessions, their change log and the outbox: one transaction writes all three,
-- so an acknowledged change is durable and its event cannot be lost.

CREATE TABLE sessions (
    session_id     uuid        PRIMARY KEY,
    user_id        text        NOT NULL,
    state          jsonb       NOT NULL,
    version        bigint      NOT NULL,
    epoch          bigint      NOT NULL DEFAULT 1,
    active_device  text        NOT NULL,
    lease_fence    bigint      NOT NULL DEFAULT 1,
    -- Attached devices, in attach order: few per session, read with the row.
    devices        text[]      NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id, updated_at DESC);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- The change log: every version of every session, kept for the session's
-- whole life so a device can resume after days, not minutes.
CREATE TABLE changes (
    session_id     uuid        NOT NULL REFERENCES sessions ON DELETE CASCADE,
    epoch          bigint      NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    kind           smallint    NOT NULL,
    patch          jsonb,
    paths          text[]      NOT NULL DEFAULT '{}',
    op_id          text,
    device_id      text        NOT NULL DEFAULT '',
    active_device  text        NOT NULL DEFAULT '',
    lease_fence    bigint      NOT NULL DEFAULT 0,
    outcome        smallint    NOT NULL DEFAULT 0,
    committed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, epoch, version)
);
-- op_id dedupe lives here, in the source of truth: a retried op finds its
-- original change even after Redis lost everything.
CREATE UNIQUE INDEX changes_op_id ON changes (session_id, op_id) WHERE op_id IS NOT NULL;

-- Transactional outbox: rows are published to RabbitMQ with confirms, then
-- deleted. A crash in between re-publishes (consumers drop by event_id).
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL,
    routing_key text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
