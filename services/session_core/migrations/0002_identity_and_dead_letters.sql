-- User ids are any text a token can carry (libs/identity), up to kilobytes:
-- more than a btree entry holds (about 2.7 kB). Sessions are found by user
-- through a fixed-size digest of the id instead (libs/identity's `digest`);
-- the row keeps the id itself, and every query compares both.
-- A trigger fills it (convert_to is not IMMUTABLE, so no generated column):
-- every writer gets it right, replicas of the previous release mid-rollout too.
ALTER TABLE sessions ADD COLUMN user_key bytea;
UPDATE sessions SET user_key = sha256(convert_to(user_id, 'UTF8'));
ALTER TABLE sessions ALTER COLUMN user_key SET NOT NULL;
CREATE FUNCTION sessions_user_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.user_key := sha256(convert_to(NEW.user_id, 'UTF8'));
    RETURN NEW;
END
$$;
CREATE TRIGGER sessions_user_key BEFORE INSERT OR UPDATE OF user_id ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_user_key();
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
