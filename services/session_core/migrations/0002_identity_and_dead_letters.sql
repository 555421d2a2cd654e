-- User ids are any text a token can carry (libs/identity), up to kilobytes:
-- more than a btree entry holds (about 2.7 kB). Sessions are found by user
-- through a fixed-size digest of the id instead; the row keeps the id itself,
-- and every query compares both.
ALTER TABLE sessions ADD COLUMN user_key bytea;
UPDATE sessions SET user_key = sha256(convert_to(user_id, 'UTF8'));
ALTER TABLE sessions ALTER COLUMN user_key SET NOT NULL;
DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (user_key, updated_at DESC, session_id DESC);

-- Whom each event is for, published as a header: routing keys are digests
-- and cannot be read back. Rows written before this migration have none.
ALTER TABLE outbox ADD COLUMN user_id text;

-- Outbox rows the relay could not publish after its bounded retries, set aside
-- so that the rows behind them flow (devices of the user catch up from the
-- change log, which still has the change). Kept for an operator: see
-- docs/runbooks/alerts.md#syncbridgeoutboxdeadletters.
CREATE TABLE outbox_dead (
    id          bigint      PRIMARY KEY,  -- the outbox row's id
    event_id    uuid        NOT NULL,
    routing_key text        NOT NULL,
    payload     bytea       NOT NULL,
    user_id     text,
    created_at  timestamptz NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT now(),
    attempts    integer     NOT NULL,
    reason      text        NOT NULL
);
