-- Networks Switchboard builds through their provider (a VPC with subnets, a
-- sandbox network), next to the registered ones it only records. A built
-- network moves through its own states; what the build did is kept step by
-- step, like a connection's.
ALTER TABLE networks
    -- registered: recorded only, built by someone else;
    -- awaiting_approval → building → ready (⇄ drifted) | failed; removing.
    ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'registered'
        CHECK (status IN ('registered', 'awaiting_approval', 'building', 'ready',
                          'drifted', 'failed', 'removing')),
    -- What is built (the planner's resource) and its hash, which approval binds.
    ADD COLUMN IF NOT EXISTS plan jsonb,
    ADD COLUMN IF NOT EXISTS plan_hash text,
    ADD COLUMN IF NOT EXISTS failure text,
    -- How the built resource differs from its plan, as the monitor last saw it.
    ADD COLUMN IF NOT EXISTS differences jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN IF NOT EXISTS drifted_since timestamptz,
    ADD COLUMN IF NOT EXISTS approved_by uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN IF NOT EXISTS approved_at timestamptz;

CREATE INDEX IF NOT EXISTS networks_watched ON networks (id) WHERE status IN ('ready', 'drifted');
CREATE INDEX IF NOT EXISTS networks_awaiting ON networks (team_id) WHERE status = 'awaiting_approval';

CREATE TABLE IF NOT EXISTS network_steps (
    id          bigserial PRIMARY KEY,
    network_id  uuid        NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    -- created | found | deleted | retrying | failed
    action      text        NOT NULL,
    resource    text        NOT NULL,
    provider_id text
);
CREATE INDEX IF NOT EXISTS network_steps_network ON network_steps (network_id, id);
