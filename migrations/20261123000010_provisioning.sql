-- What provisioning did for a connection, step by step (its page shows them live).
CREATE TABLE connection_steps (
    id            bigserial PRIMARY KEY,
    connection_id uuid        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    -- created | found (already there, from an earlier attempt) | deleted | failed
    action        text        NOT NULL,
    -- In words, e.g. "VPC peering payments-prod--search-prod in demo".
    resource      text        NOT NULL,
    -- The provider's id for it, when it has one.
    provider_id   text
);
CREATE INDEX connection_steps_connection ON connection_steps (connection_id, id);

-- The sandbox provider's simulated cloud: what it "built", per account.
CREATE TABLE sandbox_resources (
    id            text PRIMARY KEY,
    account_id    uuid        NOT NULL REFERENCES provider_accounts (id) ON DELETE CASCADE,
    -- Every resource is tagged with the connection it belongs to.
    connection_id uuid        NOT NULL,
    kind          text        NOT NULL,
    name          text        NOT NULL,
    detail        text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Looking before creating: the same item of one connection exists once.
    UNIQUE (account_id, connection_id, kind, name)
);
CREATE INDEX sandbox_resources_connection ON sandbox_resources (connection_id);
