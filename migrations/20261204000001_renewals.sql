-- Asking to keep a connection longer. Within the accounts' maximum a lead of
-- the requester's team decides alone; one renewal waits at a time.
CREATE TABLE IF NOT EXISTS connection_renewals (
    id              uuid        PRIMARY KEY,
    connection_id   uuid        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    requested_by    uuid        NOT NULL REFERENCES users (id),
    -- The expiry it replaces and the one asked for.
    previous_expiry timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by      uuid        REFERENCES users (id),
    decided_at      timestamptz,
    comment         text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS connection_renewals_one_pending
    ON connection_renewals (connection_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS connection_renewals_of ON connection_renewals (connection_id, created_at DESC);
