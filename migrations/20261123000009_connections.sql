-- Connection requests: what must reach what, the plan chosen for it, and the
-- consent of the teams that own each side.
CREATE TABLE connections (
    id            uuid PRIMARY KEY,
    kind          text        NOT NULL,
    status        text        NOT NULL,
    requested_by  uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    reason        text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    -- What was asked, as the API took it (network ids, ports, hostname, …).
    spec          jsonb       NOT NULL,
    -- What will be built; approvers consent to exactly this (and its hash).
    plan          jsonb       NOT NULL,
    plan_hash     text        NOT NULL,
    desired_state text        NOT NULL DEFAULT 'present' CHECK (desired_state IN ('present', 'absent')),
    expires_at    timestamptz,
    reminded_at   timestamptz,
    -- Why it failed, in words shown to the user.
    failure       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_status ON connections (status);
CREATE INDEX connections_requested_by ON connections (requested_by);
CREATE INDEX connections_expiring ON connections (expires_at) WHERE expires_at IS NOT NULL;

-- One row per team that must consent; decided once, by one of its leads.
CREATE TABLE connection_sides (
    connection_id uuid        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    team_id       uuid        NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    decision      text CHECK (decision IN ('approved', 'rejected')),
    decided_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    decided_at    timestamptz,
    -- The plan the lead saw when deciding.
    plan_hash     text,
    comment       text NOT NULL DEFAULT '',
    PRIMARY KEY (connection_id, team_id)
);
CREATE INDEX connection_sides_team ON connection_sides (team_id);

-- A connection's timeline reads its audit events.
CREATE INDEX audit_events_object ON audit_events (object_type, object_id);
