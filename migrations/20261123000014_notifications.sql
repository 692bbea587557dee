-- Email on or off per person and kind of event; a kind not listed is on.
CREATE TABLE notification_preferences (
    user_id uuid    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    text    NOT NULL CHECK (kind IN ('approvals', 'decisions', 'provisioning', 'drift')),
    email   boolean NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- A team's webhook: drift events as JSON, signed with HMAC-SHA256. The secret is
-- never stored: secret_ref names where the workers read it (env:NAME, file:/path).
CREATE TABLE team_webhooks (
    team_id    uuid PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    url        text        NOT NULL,
    secret_ref text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
