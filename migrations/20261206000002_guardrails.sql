-- The guardrails admins keep: every saved rule set is a new version (with its
-- tests); the highest version is the one in force.
CREATE TABLE guardrail_versions (
    version   integer     PRIMARY KEY CHECK (version > 0),
    rule_set  jsonb       NOT NULL,
    comment   text        NOT NULL DEFAULT '',
    saved_by  uuid        REFERENCES users (id) ON DELETE SET NULL,
    saved_at  timestamptz NOT NULL DEFAULT now()
);
