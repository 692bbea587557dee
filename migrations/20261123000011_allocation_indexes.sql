-- Every allocation updates each index of its table: drop the one that another
-- already covers (the unique (pool_id, idempotency_key) index serves pool_id look-ups).
DROP INDEX allocations_pool;
