-- The allocator no longer reads a whole pool to find its lowest free block.
-- `free_from` is where the search starts: every address of the pool below it is
-- taken (by allocations or child pools), and it is a block boundary. NULL: the
-- pool's first address. Only the allocator, holding the pool's lock, moves it up.
ALTER TABLE pools ADD COLUMN free_from inet;

-- Space given back (a released allocation, a lapsed reservation, a deleted network's
-- prefix) is noted here, without taking the pool's lock; the next allocation in the
-- pool consumes the notes and moves `free_from` down to the lowest of them.
CREATE TABLE pool_freed (
    pool_id uuid NOT NULL,
    cidr    cidr NOT NULL
);
CREATE INDEX pool_freed_pool ON pool_freed (pool_id);

CREATE FUNCTION note_freed_allocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pool_freed (pool_id, cidr) VALUES (OLD.pool_id, OLD.cidr);
    RETURN NULL;
END
$$;

CREATE TRIGGER allocations_note_freed AFTER DELETE ON allocations
    FOR EACH ROW EXECUTE FUNCTION note_freed_allocation();

-- Lapsed reservations are looked for at every allocation, inside one pool: index
-- only the reserved rows, by address, so the look-up never walks the whole pool.
DROP INDEX allocations_reserved;
CREATE INDEX allocations_reserved ON allocations (space_id, cidr inet_ops) WHERE reserved_until IS NOT NULL;
