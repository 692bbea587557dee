-- Provider accounts (admin-managed; credentials only by reference) and the networks
-- teams own in them. A network's prefixes are allocations of the address plan, so
-- the plan's exclusion constraint also keeps networks from overlapping.

CREATE TABLE provider_accounts (
    id              uuid PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9-]{0,31}$'),
    name            text        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    regions         text[]      NOT NULL DEFAULT '{}',
    -- Non-secret settings only (endpoint, account number, …).
    settings        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Where the credentials are: `env:VARIABLE` or `file:/path`; never the credentials.
    credentials_ref text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE networks (
    id                  uuid PRIMARY KEY,
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    team_id             uuid        NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    provider_account_id uuid        NOT NULL REFERENCES provider_accounts (id) ON DELETE RESTRICT,
    region              text        NOT NULL,
    external_id         text,
    tags                jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_by          uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, name)
);
CREATE INDEX networks_account_region ON networks (provider_account_id, region);

ALTER TABLE allocations ADD COLUMN network_id uuid REFERENCES networks (id) ON DELETE CASCADE;
CREATE INDEX allocations_network ON allocations (network_id) WHERE network_id IS NOT NULL;
