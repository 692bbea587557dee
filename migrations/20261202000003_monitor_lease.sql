-- The monitor's sweep is claimed with a lease in its row, renewed page by page,
-- instead of a session advisory lock held on a pooled connection across
-- provider calls: a sweeper that dies lets it lapse.
ALTER TABLE monitor_sweeps
    ADD COLUMN holder         text,
    ADD COLUMN lease_until    timestamptz,
    -- Connections the last sweep could not read (a stored plan that does not
    -- decode): how many, and some of their ids, for the admins.
    ADD COLUMN unreadable     integer NOT NULL DEFAULT 0,
    ADD COLUMN unreadable_ids uuid[]  NOT NULL DEFAULT '{}';

-- Sweeps read the watched connections page by page, in id order.
CREATE INDEX connections_watched ON connections (id) WHERE status IN ('active', 'drifted');
