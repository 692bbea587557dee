-- A creating request sent with an Idempotency-Key: a retry under the same key
-- answers with what the first one made. Recorded in the transaction that made
-- it, so a crash can never leave the object without its key or the other way.
CREATE TABLE IF NOT EXISTS idempotent_requests (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text        NOT NULL,
    operation   text        NOT NULL,
    -- SHA-256 of the request as the server read it: the same key with another
    -- request is refused.
    fingerprint text        NOT NULL,
    object_id   uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotent_requests_age ON idempotent_requests (created_at);
