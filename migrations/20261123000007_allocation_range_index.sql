-- The allocator reads the blocks inside a pool as an address range (btree, not gist).
CREATE INDEX allocations_space_cidr ON allocations (space_id, cidr inet_ops);
