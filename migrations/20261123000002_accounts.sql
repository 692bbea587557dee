-- People, teams, sessions, API tokens and the audit log.

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    -- Who vouches for this person: the OIDC issuer, or 'dev' / 'local' (bootstrap tokens).
    issuer          text        NOT NULL,
    subject         text        NOT NULL,
    email           text        NOT NULL,
    name            text        NOT NULL,
    is_admin        boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz,
    UNIQUE (issuer, subject)
);
CREATE INDEX users_email ON users (lower(email));

CREATE TABLE teams (
    id          uuid PRIMARY KEY,
    slug        text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id     uuid        NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    role        text        NOT NULL CHECK (role IN ('member', 'lead')),
    -- 'idp': re-synced from the groups claim at every sign-in; 'manual': set by an admin.
    source      text        NOT NULL CHECK (source IN ('idp', 'manual')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, team_id)
);
CREATE INDEX memberships_team ON memberships (team_id);

-- Browser sessions. Only a SHA-256 of the cookie value is stored: a copy of this
-- table lets nobody sign in. A session without a user is an anonymous one that
-- carries a sign-in in progress (state and nonce, single-use).
CREATE TABLE sessions (
    id_hash          bytea PRIMARY KEY,
    user_id          uuid REFERENCES users (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    login_state      text,
    login_nonce      text,
    login_return_to  text,
    login_started_at timestamptz,
    user_agent       text
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Personal API tokens: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash  bytea       NOT NULL UNIQUE,
    -- The first characters of the token, so people can tell their tokens apart.
    prefix       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Who did what to which object, written in the same transaction as the change.
CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_label text        NOT NULL,
    action      text        NOT NULL,
    object_type text        NOT NULL,
    object_id   text        NOT NULL,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    request_id  text
);
CREATE INDEX audit_events_at ON audit_events (at DESC);
