-- Per-team quotas: how many addresses a team's networks may hold in a pool.
CREATE TABLE pool_quotas (
    pool_id       uuid    NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    team_id       uuid    NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    max_addresses numeric NOT NULL CHECK (max_addresses >= 0),
    PRIMARY KEY (pool_id, team_id)
);
