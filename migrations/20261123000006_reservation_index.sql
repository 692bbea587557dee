-- Lapsed reservations are looked up at every allocation: only reserved rows are indexed.
CREATE INDEX allocations_reserved ON allocations (reserved_until) WHERE reserved_until IS NOT NULL;
