//! Pools (the address plan's tree) and the prefixes allocated from them.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::ipam;

#[derive(Debug, Clone, FromRow)]
pub struct Pool {
    pub id: Uuid,
    pub space_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub cidr: IpNet,
    pub labels: serde_json::Value,
    pub default_prefix_length: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct Allocation {
    pub id: Uuid,
    pub pool_id: Uuid,
    pub space_id: Uuid,
    pub cidr: IpNet,
    pub idempotency_key: Option<String>,
    pub reserved_until: Option<DateTime<Utc>>,
    pub description: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The network this prefix belongs to, if any.
    pub network_id: Option<Uuid>,
}

pub struct NewPool<'a> {
    pub id: Uuid,
    pub space_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: &'a str,
    pub cidr: IpNet,
    pub labels: &'a serde_json::Value,
    pub default_prefix_length: i32,
}

pub async fn insert(db: impl PgExecutor<'_>, p: NewPool<'_>) -> Result<Pool, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO pools (id, space_id, parent_id, name, cidr, labels, default_prefix_length)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
    )
    .bind(p.id)
    .bind(p.space_id)
    .bind(p.parent_id)
    .bind(p.name)
    .bind(p.cidr)
    .bind(p.labels)
    .bind(p.default_prefix_length)
    .fetch_one(db)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Pool>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM pools WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Locks the pool: allocations from one pool run one at a time (other pools are
/// not held up), and the exclusion constraint settles races across pools.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Pool>, sqlx::Error> {
    // NO KEY UPDATE: allocations registered in the pool meanwhile (their foreign
    // key takes KEY SHARE) are not held up.
    sqlx::query_as("SELECT * FROM pools WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Pool>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM pools ORDER BY space_id, family(cidr), cidr, name")
        .fetch_all(db)
        .await
}

pub async fn children(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Pool>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM pools WHERE parent_id = $1 ORDER BY cidr")
        .bind(id)
        .fetch_all(db)
        .await
}

/// Sibling pools (same parent) overlapping `cidr`.
pub async fn overlapping_siblings(
    db: impl PgExecutor<'_>,
    parent_id: Option<Uuid>,
    cidr: IpNet,
) -> Result<Vec<Pool>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM pools WHERE parent_id IS NOT DISTINCT FROM $1 AND cidr && $2 AND $1 IS NOT NULL",
    )
    .bind(parent_id)
    .bind(cidr)
    .fetch_all(db)
    .await
}

/// Live allocations of a space inside `cidr` (lapsed reservations excluded).
pub async fn allocations_within(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
    cidr: IpNet,
) -> Result<Vec<Allocation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM allocations WHERE space_id = $1 AND cidr && $2
           AND (reserved_until IS NULL OR reserved_until > now())
         ORDER BY cidr",
    )
    .bind(space_id)
    .bind(cidr)
    .fetch_all(db)
    .await
}

/// Every live allocation (lapsed reservations excluded), for the overview.
/// A page of allocations, by address space and prefix, narrowed by pool
/// (its own, not its children's) and by the team of the network holding them.
pub async fn list_allocations(
    db: impl PgExecutor<'_>,
    pool: Option<Uuid>,
    team: Option<&str>,
    after: Option<(Uuid, IpNet, Uuid)>,
    fetch: i64,
) -> Result<Vec<Allocation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.* FROM allocations a
          WHERE ($1::uuid IS NULL OR a.pool_id = $1)
            AND ($2::text IS NULL OR EXISTS (
                SELECT 1 FROM networks n JOIN teams t ON t.id = n.team_id
                 WHERE n.id = a.network_id AND t.slug = $2))
            AND ($3::uuid IS NULL OR (a.space_id, a.cidr, a.id) > ($3, $4, $5))
          ORDER BY a.space_id, a.cidr, a.id LIMIT $6",
    )
    .bind(pool)
    .bind(team)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(after.map(|a| a.2))
    .bind(fetch)
    .fetch_all(db)
    .await
}

pub async fn all_live_allocations(db: impl PgExecutor<'_>) -> Result<Vec<Allocation>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM allocations WHERE reserved_until IS NULL OR reserved_until > now() ORDER BY cidr")
        .fetch_all(db)
        .await
}

pub async fn find_by_key(
    db: impl PgExecutor<'_>,
    pool_id: Uuid,
    key: &str,
) -> Result<Option<Allocation>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM allocations WHERE pool_id = $1 AND idempotency_key = $2")
        .bind(pool_id)
        .bind(key)
        .fetch_optional(db)
        .await
}

pub struct NewAllocation<'a> {
    pub pool: &'a Pool,
    pub cidr: IpNet,
    pub idempotency_key: Option<&'a str>,
    pub reserved_until: Option<DateTime<Utc>>,
    pub description: &'a str,
    pub created_by: Uuid,
    pub network_id: Option<Uuid>,
}

pub async fn insert_allocation(
    db: impl PgExecutor<'_>,
    a: NewAllocation<'_>,
) -> Result<Allocation, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO allocations (id, pool_id, space_id, cidr, idempotency_key, reserved_until, description, created_by, network_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(a.pool.id)
    .bind(a.pool.space_id)
    .bind(a.cidr)
    .bind(a.idempotency_key)
    .bind(a.reserved_until)
    .bind(a.description)
    .bind(a.created_by)
    .bind(a.network_id)
    .fetch_one(db)
    .await
}

pub async fn lock_allocation(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Allocation>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM allocations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn delete_allocation(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Allocation>, sqlx::Error> {
    sqlx::query_as("DELETE FROM allocations WHERE id = $1 RETURNING *")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The deepest pools containing `cidr` (for registering an existing prefix).
pub async fn containing(db: impl PgExecutor<'_>, cidr: IpNet) -> Result<Vec<Pool>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM pools WHERE cidr >>= $1 ORDER BY masklen(cidr) DESC, name")
        .bind(cidr)
        .fetch_all(db)
        .await
}

/// Pools labelled with this region (and environment, when given), deepest first.
pub async fn labelled(
    db: impl PgExecutor<'_>,
    region: &str,
    environment: Option<&str>,
) -> Result<Vec<Pool>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM pools WHERE labels->>'region' = $1
           AND ($2::text IS NULL OR labels->>'environment' = $2)
         ORDER BY masklen(cidr) DESC, name",
    )
    .bind(region)
    .bind(environment)
    .fetch_all(db)
    .await
}

/// Who holds an allocation overlapping `cidr` in a space (to say what a new prefix clashes with).
pub async fn overlapping_allocation(
    db: impl PgExecutor<'_>,
    space_id: Uuid,
    cidr: IpNet,
) -> Result<Option<(IpNet, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.cidr, n.name FROM allocations a LEFT JOIN networks n ON n.id = a.network_id
         WHERE a.space_id = $1 AND a.cidr && $2 AND (a.reserved_until IS NULL OR a.reserved_until > now())
         ORDER BY a.cidr LIMIT 1",
    )
    .bind(space_id)
    .bind(cidr)
    .fetch_optional(db)
    .await
}

/// The prefixes of many networks at once.
pub async fn for_networks(
    db: impl PgExecutor<'_>,
    network_ids: &[Uuid],
) -> Result<Vec<Allocation>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM allocations WHERE network_id = ANY($1) ORDER BY cidr")
        .bind(network_ids)
        .fetch_all(db)
        .await
}

pub async fn for_network(
    db: impl PgExecutor<'_>,
    network_id: Uuid,
) -> Result<Vec<Allocation>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM allocations WHERE network_id = $1 ORDER BY cidr")
        .bind(network_id)
        .fetch_all(db)
        .await
}

pub async fn set_quota(
    db: impl PgExecutor<'_>,
    pool_id: Uuid,
    team_id: Uuid,
    max_addresses: u128,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pool_quotas (pool_id, team_id, max_addresses) VALUES ($1, $2, $3::numeric)
         ON CONFLICT (pool_id, team_id) DO UPDATE SET max_addresses = EXCLUDED.max_addresses",
    )
    .bind(pool_id)
    .bind(team_id)
    .bind(max_addresses.to_string())
    .execute(db)
    .await?;
    Ok(())
}

/// The team's quota in a pool, if one is set.
pub async fn quota(
    db: impl PgExecutor<'_>,
    pool_id: Uuid,
    team_id: Uuid,
) -> Result<Option<u128>, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT max_addresses::text FROM pool_quotas WHERE pool_id = $1 AND team_id = $2",
    )
    .bind(pool_id)
    .bind(team_id)
    .fetch_optional(db)
    .await?;
    Ok(text.and_then(|t| t.parse().ok()))
}

/// Prefixes the team's networks hold inside `cidr` of a space.
pub async fn team_prefixes_within(
    db: impl PgExecutor<'_>,
    team_id: Uuid,
    space_id: Uuid,
    cidr: IpNet,
) -> Result<Vec<IpNet>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT a.cidr FROM allocations a JOIN networks n ON n.id = a.network_id
         WHERE n.team_id = $1 AND a.space_id = $2 AND a.cidr <<= $3",
    )
    .bind(team_id)
    .bind(space_id)
    .bind(cidr)
    .fetch_all(db)
    .await
}

/// Where the allocator's search for free space starts in a locked pool: its
/// `free_from`, lowered to the lowest block given back since (the notes are consumed).
/// Reservations that lapsed are deleted first, so their space counts as given back.
pub async fn search_start(conn: &mut PgConnection, pool: &Pool) -> Result<IpAddr, sqlx::Error> {
    let (free_from, lapsed, freed): (Option<IpNet>, Option<IpNet>, Option<IpNet>) = sqlx::query_as(
        "WITH lapsed AS (
             DELETE FROM allocations WHERE space_id = $1 AND cidr <<= $2
               AND reserved_until IS NOT NULL AND reserved_until <= now()
             RETURNING pool_id, cidr),
         freed AS (DELETE FROM pool_freed WHERE pool_id = $3 RETURNING cidr)
         SELECT (SELECT free_from FROM pools WHERE id = $3),
                (SELECT min(cidr) FROM lapsed WHERE pool_id = $3),
                (SELECT min(cidr) FROM freed)",
    )
    .bind(pool.space_id)
    .bind(pool.cidr)
    .bind(pool.id)
    .fetch_one(conn)
    .await?;
    // In `inet` order the lowest block is the one with the lowest first address.
    let start = free_from.map_or(pool.cidr.network(), |n| n.network());
    Ok([lapsed, freed]
        .into_iter()
        .flatten()
        .map(|n| n.network())
        .filter(|a| pool.cidr.contains(a))
        .chain([start])
        .min_by_key(|a| ipam::first_address(&IpNet::from(*a)))
        .unwrap_or(start))
}

/// The next `limit` blocks taken in the pool (live allocations, child pools) that
/// start at or after `from`, in address order: one page of the allocator's search.
pub async fn taken_from(
    conn: &mut PgConnection,
    pool: &Pool,
    from: IpAddr,
    limit: i64,
) -> Result<Vec<IpNet>, sqlx::Error> {
    // `cidr > (from - 1)/32` is "starts at or after `from`" in `inet` order, and
    // runs on the btree index as a range.
    const AFTER: &str = "SELECT cidr FROM allocations
          WHERE space_id = $1 AND cidr <<= $2 AND cidr > $3
            AND (reserved_until IS NULL OR reserved_until > now())
         UNION ALL
         SELECT cidr FROM pools WHERE parent_id = $4 AND cidr > $3
         ORDER BY cidr LIMIT $5";
    const ALL: &str = "SELECT cidr FROM allocations
          WHERE space_id = $1 AND cidr <<= $2 AND $3::inet IS NOT NULL
            AND (reserved_until IS NULL OR reserved_until > now())
         UNION ALL
         SELECT cidr FROM pools WHERE parent_id = $4
         ORDER BY cidr LIMIT $5";
    let (sql, bound) = match ipam::before(from) {
        Some(below) => (AFTER, IpNet::from(below)),
        // Only a pool starting at 0.0.0.0 or :: gets here.
        None => (ALL, IpNet::from(from)),
    };
    sqlx::query_scalar(sql)
        .bind(pool.space_id)
        .bind(pool.cidr)
        .bind(bound)
        .bind(pool.id)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Moves the pool's search start (the allocator holds the pool's lock).
pub async fn set_free_from(
    conn: &mut PgConnection,
    pool_id: Uuid,
    free_from: IpAddr,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE pools SET free_from = $2 WHERE id = $1")
        .bind(pool_id)
        .bind(IpNet::from(free_from))
        .execute(conn)
        .await?;
    Ok(())
}
