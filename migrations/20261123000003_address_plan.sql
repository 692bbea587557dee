-- The address plan: a tree of pools (a top-level pool is an address space) and the
-- prefixes allocated from them. The database itself makes overlaps impossible.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE pools (
    id                    uuid PRIMARY KEY,
    -- The top-level pool (address space) this pool belongs to; its own id at the top.
    space_id              uuid        NOT NULL,
    parent_id             uuid REFERENCES pools (id) ON DELETE RESTRICT,
    name                  text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    cidr                  cidr        NOT NULL,
    labels                jsonb       NOT NULL DEFAULT '{}'::jsonb,
    default_prefix_length integer     NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    -- Sibling pools never overlap (top-level spaces may: they are separate routing domains).
    EXCLUDE USING gist (parent_id WITH =, cidr inet_ops WITH &&)
);
CREATE UNIQUE INDEX pools_sibling_names
    ON pools (coalesce(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name));
CREATE INDEX pools_parent ON pools (parent_id);

CREATE TABLE allocations (
    id              uuid PRIMARY KEY,
    pool_id         uuid        NOT NULL REFERENCES pools (id) ON DELETE RESTRICT,
    space_id        uuid        NOT NULL,
    cidr            cidr        NOT NULL,
    idempotency_key text,
    -- A short hold that lapses by itself; NULL for a lasting allocation.
    reserved_until  timestamptz,
    description     text        NOT NULL DEFAULT '',
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- No two allocations of one address space ever overlap, whatever races.
    EXCLUDE USING gist (space_id WITH =, cidr inet_ops WITH &&),
    UNIQUE (pool_id, idempotency_key)
);
CREATE INDEX allocations_pool ON allocations (pool_id);
