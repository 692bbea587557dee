-- Changes of an active connection (ports, protocol, reason): the new plan, the
-- difference from the one built, and the consent of every side when more
-- passes than before. Applied changes are the connection's versions.
CREATE TABLE IF NOT EXISTS connection_changes (
    id                  uuid        PRIMARY KEY,
    connection_id       uuid        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    -- The connection's version once applied (the request itself is version 1).
    version             integer     NOT NULL,
    requested_by        uuid        NOT NULL REFERENCES users (id),
    -- The request as it will read after the change, and its plan.
    spec                jsonb       NOT NULL,
    plan                jsonb       NOT NULL,
    plan_hash           text        NOT NULL,
    -- The plan it changes: applied only onto that one.
    previous_plan_hash  text        NOT NULL,
    -- {"added": [...], "removed": [...], "kept": [...]}, in words.
    difference          jsonb       NOT NULL,
    -- same | narrower | wider: wider needs every side's lead.
    scope               text        NOT NULL CHECK (scope IN ('same', 'narrower', 'wider')),
    status              text        NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'applied', 'rejected', 'failed')),
    failure             text,
    comment             text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    applied_at          timestamptz
);
-- One change at a time per connection.
CREATE UNIQUE INDEX IF NOT EXISTS connection_changes_one_open
    ON connection_changes (connection_id) WHERE status IN ('pending', 'approved');
CREATE INDEX IF NOT EXISTS connection_changes_of ON connection_changes (connection_id, created_at DESC);

CREATE TABLE IF NOT EXISTS change_sides (
    change_id   uuid        NOT NULL REFERENCES connection_changes (id) ON DELETE CASCADE,
    team_id     uuid        NOT NULL REFERENCES teams (id),
    decision    text        CHECK (decision IN ('approved', 'rejected')),
    decided_by  uuid        REFERENCES users (id),
    decided_at  timestamptz,
    PRIMARY KEY (change_id, team_id)
);
