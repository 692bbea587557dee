-- Continuous monitoring: what each active connection looked like when last
-- observed, drift episodes, and one sweep at a time per provider account.

ALTER TABLE connections
    -- notify: tell the owners; auto: re-apply the approved plan, then tell them;
    -- account: whatever the provider account's `repair` setting says (default notify).
    ADD COLUMN repair          text NOT NULL DEFAULT 'account'
        CHECK (repair IN ('account', 'notify', 'auto')),
    -- Since when the connection has looked as observed_state says.
    ADD COLUMN observed_since  timestamptz,
    -- matches | differs | unknown (the provider could not be asked)
    ADD COLUMN observed_state  text CHECK (observed_state IN ('matches', 'differs', 'unknown')),
    -- The differences in plain words, or why the state is unknown.
    ADD COLUMN observed_detail jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN unknown_since   timestamptz;

CREATE TABLE drift_events (
    id              bigserial PRIMARY KEY,
    connection_id   uuid        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    -- The differences when the episode began, and as last seen.
    differences     jsonb       NOT NULL,
    latest          jsonb       NOT NULL,
    repair_asked_at timestamptz,
    closed_at       timestamptz,
    -- recovered (matched again) | repaired (after a repair) | removed
    closed_as       text CHECK (closed_as IN ('recovered', 'repaired', 'removed'))
);
-- One open episode per connection.
CREATE UNIQUE INDEX drift_events_open ON drift_events (connection_id) WHERE closed_at IS NULL;
CREATE INDEX drift_events_connection ON drift_events (connection_id, opened_at DESC);

-- One sweep at a time (an advisory lock), at most one per interval whatever the
-- number of worker processes (started_at).
CREATE TABLE monitor_sweeps (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    duration_ms integer,
    observed    integer
);

-- How each provider account answered the last sweep.
CREATE TABLE monitor_accounts (
    account_id     uuid PRIMARY KEY REFERENCES provider_accounts (id) ON DELETE CASCADE,
    observed_at    timestamptz NOT NULL,
    duration_ms    integer     NOT NULL,
    observed       integer     NOT NULL,
    -- Why the account could not be observed, when it could not.
    error          text,
    unknown_since  timestamptz,
    admins_told_at timestamptz
);
