//! The address plan: pools and race-safe, idempotent allocation of prefixes.

use chrono::{Duration, Utc};
use ipnet::IpNet;
use serde_json::json;
use uuid::Uuid;

use super::idempotency::{IdempotencyKey, Once};
use super::{Caller, Context, audit};
use crate::auth::policy::Action;
use crate::domain::page::{Cursor, Page, Paged};
use crate::error::{Error, FieldError, Result};
use crate::ipam;
use crate::store::{
    self,
    pools::{Allocation, NewAllocation, NewPool, Pool},
};

mod usage;
pub use usage::{PoolDetail, PoolSummary, Segment, overview, percent, pool_detail, segments};

/// Longest reservation one can ask for.
pub const MAX_RESERVATION_SECONDS: i64 = 7 * 24 * 3600;

/// What a request for a new pool says (API and form alike).
#[derive(serde::Serialize)]
pub struct PoolRequest {
    pub name: String,
    pub cidr: String,
    pub parent_id: Option<Uuid>,
    pub labels: serde_json::Value,
    pub default_prefix_length: Option<i64>,
}

pub(super) fn is_code(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some(code))
}
pub(super) const EXCLUSION_VIOLATION: &str = "23P01";
pub(super) const UNIQUE_VIOLATION: &str = "23505";

pub async fn create_pool(
    ctx: &Context,
    caller: &Caller,
    req: PoolRequest,
    key: Option<&IdempotencyKey>,
) -> Result<Pool> {
    caller.actor.require(Action::ManageAddressPlan)?;
    let once = Once::new(caller, key, "create_pool", &req)?;
    if let Some(id) = once.earlier(ctx).await? {
        return store::pools::find(&ctx.pool, id)
            .await?
            .ok_or_else(|| Error::NotFound("the pool this key created: it was deleted".into()));
    }
    let mut errors = Vec::new();
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.contains('/') {
        errors.push(FieldError::new(
            "name",
            "must be 1 to 100 characters, without /",
        ));
    }
    let cidr = ipam::parse_cidr(&req.cidr)
        .map_err(|reason| errors.push(FieldError::new("cidr", reason)))
        .ok();
    if !req.labels.is_object()
        || req
            .labels
            .as_object()
            .is_some_and(|m| m.values().any(|v| !v.is_string()))
    {
        errors.push(FieldError::new(
            "labels",
            "must be an object of text values, e.g. {\"region\": \"eu-west\"}",
        ));
    }
    let mut tx = ctx.pool.begin().await?;
    let parent = match req.parent_id {
        Some(id) => match store::pools::lock(&mut tx, id).await? {
            Some(parent) => Some(parent),
            None => {
                errors.push(FieldError::new("parent_id", "no pool has this id"));
                None
            }
        },
        None => None,
    };
    let default_len = match (cidr, req.default_prefix_length) {
        (Some(cidr), Some(len)) => ipam::check_prefix_length(&cidr, len)
            .map_err(|reason| errors.push(FieldError::new("default_prefix_length", reason)))
            .ok(),
        (Some(cidr), None) => Some(match cidr {
            IpNet::V4(_) => cidr.prefix_len().max(24),
            IpNet::V6(_) => cidr.prefix_len().max(64),
        }),
        (None, _) => None,
    };
    if let (Some(cidr), Some(parent)) = (cidr, &parent)
        && !(parent.cidr.contains(&cidr) && cidr != parent.cidr)
    {
        errors.push(FieldError::new(
            "cidr",
            format!(
                "must lie inside the parent pool {} and be smaller",
                parent.cidr
            ),
        ));
    }
    let (Some(cidr), Some(default_len), true) = (cidr, default_len, errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    if let Some(parent) = &parent {
        if let Some(sibling) = store::pools::overlapping_siblings(&mut *tx, Some(parent.id), cidr)
            .await?
            .first()
        {
            return Err(Error::Conflict(format!(
                "{cidr} overlaps the pool {} ({}) in {}",
                sibling.name, sibling.cidr, parent.name
            )));
        }
        let inside = store::pools::allocations_within(&mut *tx, parent.space_id, cidr).await?;
        if let Some(a) = inside.first() {
            return Err(Error::Conflict(format!(
                "{cidr} overlaps the allocation {} already made",
                a.cidr
            )));
        }
    }
    let id = Uuid::new_v4();
    let pool = store::pools::insert(
        &mut *tx,
        NewPool {
            id,
            space_id: parent.as_ref().map_or(id, |p| p.space_id),
            parent_id: parent.as_ref().map(|p| p.id),
            name,
            cidr,
            labels: &req.labels,
            default_prefix_length: i32::from(default_len),
        },
    )
    .await
    .map_err(|e| {
        if is_code(&e, UNIQUE_VIOLATION) {
            Error::Conflict(format!(
                "a pool named {name:?} already exists at this level"
            ))
        } else if is_code(&e, EXCLUSION_VIOLATION) {
            Error::Conflict(format!("{cidr} overlaps a pool created at the same moment"))
        } else {
            e.into()
        }
    })?;
    once.remember(&mut tx, id).await?;
    audit::by(&mut tx, caller, "pool.created", "pool", &pool.id.to_string(), json!({ "after": { "name": pool.name, "cidr": pool.cidr.to_string(), "parent_id": pool.parent_id } })).await?;
    tx.commit().await?;
    Ok(pool)
}

pub async fn list_pools(ctx: &Context, caller: &Caller) -> Result<Vec<Pool>> {
    caller.actor.require(Action::ViewAddressPlan)?;
    Ok(store::pools::list(&ctx.pool).await?)
}

/// A page of allocations, narrowed by pool and by the team holding them.
pub async fn list_allocations(
    ctx: &Context,
    caller: &Caller,
    pool: Option<&str>,
    team: Option<&str>,
    page: &Page<(Uuid, String, Uuid)>,
) -> Result<Paged<Allocation>> {
    caller.actor.require(Action::ViewAddressPlan)?;
    let pool = pool
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Uuid::parse_str(p).map_err(|_| Error::invalid("pool", "must be a pool id")))
        .transpose()?;
    let team = team.map(str::trim).filter(|t| !t.is_empty());
    let after = match &page.after {
        None => None,
        Some(Cursor((space, cidr, id))) => Some((
            *space,
            cidr.parse::<IpNet>().map_err(|_| {
                Error::invalid(
                    "cursor",
                    "is not a cursor this list handed out: start again without it",
                )
            })?,
            *id,
        )),
    };
    let rows = store::pools::list_allocations(&ctx.pool, pool, team, after, page.fetch()).await?;
    Ok(Paged::cut(rows, page.limit, |a| {
        Cursor((a.space_id, a.cidr.to_string(), a.id))
    }))
}

fn taken_blocks(children: &[Pool], allocations: &[Allocation]) -> Vec<IpNet> {
    children
        .iter()
        .map(|c| c.cidr)
        .chain(allocations.iter().map(|a| a.cidr))
        .collect()
}

/// How many blocks of `prefix_length` are left, and which one comes next.
pub async fn available(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    prefix_length: i64,
) -> Result<(u128, Option<IpNet>)> {
    let detail = pool_detail(ctx, caller, id).await?;
    let len = ipam::check_prefix_length(&detail.pool.cidr, prefix_length)
        .map_err(|reason| Error::invalid("prefix_length", reason))?;
    let taken = taken_blocks(&detail.children, &detail.allocations);
    Ok((
        ipam::available(&detail.pool.cidr, &taken, len),
        ipam::next_free(&detail.pool.cidr, &taken, len),
    ))
}

#[derive(Clone, Debug)]
pub struct AllocationRequest {
    pub prefix_length: Option<i64>,
    pub idempotency_key: Option<String>,
    pub reservation_ttl: Option<i64>,
    pub description: String,
}

/// The outcome: the allocation, and whether it was made now (`false` = the same
/// idempotency key was seen before and this is that allocation).
pub struct Allocated {
    pub allocation: Allocation,
    pub created: bool,
}

/// Takes the lowest free block of the asked size. Race-safe: the pool row is
/// locked (one allocation per pool at a time, other pools proceed), and the
/// exclusion constraint refuses any overlap across pools, which is retried.
pub async fn allocate(
    ctx: &Context,
    caller: &Caller,
    pool_id: Uuid,
    req: AllocationRequest,
) -> Result<Allocated> {
    caller.actor.require(Action::Allocate)?;
    let mut errors = Vec::new();
    let key = req
        .idempotency_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.len() > 200) {
        errors.push(FieldError::new(
            "idempotency_key",
            "must be at most 200 characters",
        ));
    }
    if let Some(ttl) = req.reservation_ttl
        && !(1..=MAX_RESERVATION_SECONDS).contains(&ttl)
    {
        errors.push(FieldError::new(
            "reservation_ttl",
            format!("must be from 1 to {MAX_RESERVATION_SECONDS} seconds"),
        ));
    }
    if req.description.chars().count() > 500 {
        errors.push(FieldError::new(
            "description",
            "must be at most 500 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let req = AllocationRequest {
        idempotency_key: key.map(str::to_owned),
        ..req
    };
    for attempt in 0.. {
        match ctx
            .allocations
            .allocate(ctx, caller, pool_id, req.clone())
            .await
        {
            Err(AllocateError::Race) if attempt < 8 => {
                tokio::time::sleep(std::time::Duration::from_millis(5 * (attempt + 1))).await;
            }
            Err(AllocateError::Race) => {
                return Err(Error::Conflict("the pool is very busy; try again".into()));
            }
            Err(AllocateError::Other(e)) => return Err(e),
            Ok(done) => return Ok(done),
        }
    }
    unreachable!("the loop returns")
}

pub(super) enum AllocateError {
    Race,
    Other(Error),
}

impl<E: Into<Error>> From<E> for AllocateError {
    fn from(e: E) -> Self {
        AllocateError::Other(e.into())
    }
}

/// A pool locked for allocations on a transaction, with where the search for its
/// lowest free block starts. Several allocations can be made in one lock.
#[derive(Clone)]
pub(super) struct LockedPool {
    pool: Pool,
    search_from: std::net::IpAddr,
    /// Every block taken at or after `search_from`, when known: allocations made
    /// under the same lock search it instead of the database.
    ahead: Option<Vec<IpNet>>,
}

/// Locks the pool (one allocator at a time per pool; other pools proceed) and
/// finds where its free space starts.
pub(super) async fn lock_pool(
    tx: &mut sqlx::PgConnection,
    pool_id: Uuid,
) -> std::result::Result<LockedPool, AllocateError> {
    let pool = store::pools::lock(&mut *tx, pool_id)
        .await?
        .ok_or_else(|| Error::NotFound("that pool".into()))?;
    let search_from = store::pools::search_start(&mut *tx, &pool).await?;
    Ok(LockedPool {
        pool,
        search_from,
        ahead: None,
    })
}

/// Saves where the next search starts; the transaction must end with it.
pub(super) async fn unlock_pool(
    tx: &mut sqlx::PgConnection,
    locked: LockedPool,
) -> std::result::Result<(), AllocateError> {
    store::pools::set_free_from(&mut *tx, locked.pool.id, locked.search_from).await?;
    Ok(())
}

/// Allocates on the caller's transaction (a network and its prefix commit together).
pub(super) async fn allocate_in(
    tx: &mut sqlx::PgConnection,
    caller: &Caller,
    pool_id: Uuid,
    req: &AllocationRequest,
    key: Option<&str>,
    network: Option<(Uuid, Uuid, &str)>,
) -> std::result::Result<Allocated, AllocateError> {
    let mut locked = lock_pool(&mut *tx, pool_id).await?;
    let done = allocate_locked(&mut *tx, caller, &mut locked, req, key, network).await?;
    unlock_pool(&mut *tx, locked).await?;
    Ok(done)
}

/// The lowest free block of the asked size in a locked pool.
pub(super) async fn allocate_locked(
    tx: &mut sqlx::PgConnection,
    caller: &Caller,
    locked: &mut LockedPool,
    req: &AllocationRequest,
    key: Option<&str>,
    network: Option<(Uuid, Uuid, &str)>,
) -> std::result::Result<Allocated, AllocateError> {
    let network_id = network.map(|(id, _, _)| id);
    let pool = &locked.pool;
    let pool_id = pool.id;
    let from = locked.search_from;
    if let Some(key) = key
        && let Some(existing) = store::pools::find_by_key(&mut *tx, pool_id, key).await?
    {
        return Ok(Allocated {
            allocation: existing,
            created: false,
        });
    }
    let len = ipam::check_prefix_length(
        &pool.cidr,
        req.prefix_length
            .unwrap_or(i64::from(pool.default_prefix_length)),
    )
    .map_err(|reason| Error::invalid("prefix_length", reason))?;
    let mut search = ipam::FreeSearch::new(&pool.cidr, from, len);
    // Blocks read from `from` on; complete once a short page (the pool's end) came.
    let mut seen: Vec<IpNet> = Vec::new();
    let mut complete = false;
    let found = match &locked.ahead {
        Some(ahead) => {
            complete = true;
            seen.clone_from(ahead);
            search.feed(ahead).or_else(|| search.finish())
        }
        None => loop {
            let Some(cursor) = search.cursor() else {
                break None;
            };
            let page = store::pools::taken_from(&mut *tx, pool, cursor, SEARCH_PAGE).await?;
            seen.extend_from_slice(&page);
            complete = page.len() < SEARCH_PAGE as usize;
            if let Some(found) = search.feed(&page) {
                break Some(found);
            }
            if complete {
                break search.finish();
            }
        },
    };
    let Some(cidr) = found else {
        return Err(exhausted(&mut *tx, pool, len).await?.into());
    };
    // Keep the search start on a boundary with everything below it taken.
    let first_free = search.first_free().unwrap_or(cidr.network());
    let next_start = if cidr.network() == first_free {
        ipam::after(&cidr)
            .filter(|a| pool.cidr.contains(a))
            .unwrap_or(from)
    } else {
        first_free
    };
    if let Some((_, team_id, team)) = network {
        check_quota(&mut *tx, pool, team_id, team, cidr).await?;
    }
    let reserved_until = req
        .reservation_ttl
        .map(|s| Utc::now() + Duration::seconds(s));
    let inserted = store::pools::insert_allocation(
        &mut *tx,
        NewAllocation {
            pool,
            cidr,
            idempotency_key: key,
            reserved_until,
            description: req.description.trim(),
            created_by: caller.actor.user_id,
            network_id,
        },
    )
    .await;
    match inserted {
        Ok(allocation) => {
            locked.ahead = complete.then(|| {
                seen.push(cidr);
                seen.sort_by_key(ipam::first_address);
                let after = |b: &IpNet| {
                    ipam::first_address(b) >= ipam::first_address(&IpNet::from(next_start))
                };
                seen.into_iter().filter(after).collect()
            });
            locked.search_from = next_start;
            Ok(Allocated {
                allocation,
                created: true,
            })
        }
        // Someone allocating from another pool of this space took an overlapping block.
        Err(e) if is_code(&e, EXCLUSION_VIOLATION) || is_code(&e, UNIQUE_VIOLATION) => {
            Err(AllocateError::Race)
        }
        Err(e) => Err(e.into()),
    }
}

/// Taken blocks read per round trip by the allocator's search.
const SEARCH_PAGE: i64 = 256;

/// The 409 for a pool with no free block of the asked size, saying what is left.
async fn exhausted(tx: &mut sqlx::PgConnection, pool: &Pool, len: u8) -> Result<Error> {
    let children = store::pools::children(&mut *tx, pool.id).await?;
    let allocations = store::pools::allocations_within(&mut *tx, pool.space_id, pool.cidr).await?;
    let free = ipam::free_blocks(&pool.cidr, &taken_blocks(&children, &allocations));
    let free_addresses: u128 = free.iter().map(ipam::size).sum();
    let largest = free.iter().map(|b| b.prefix_len()).min();
    Ok(Error::Conflict(format!(
        "the pool {} ({}) has no free /{len} left: {}",
        pool.name,
        pool.cidr,
        match largest {
            Some(l) => format!(
                "the largest free block is a /{l}, {free_addresses} addresses are free in all"
            ),
            None => "it is full".into(),
        }
    )))
}

/// Sets how many addresses a team's networks may hold in a pool (admins).
pub async fn set_quota(
    ctx: &Context,
    caller: &Caller,
    pool_id: Uuid,
    team: &str,
    max_addresses: &str,
) -> Result<()> {
    caller.actor.require(Action::ManageAddressPlan)?;
    let mut errors = Vec::new();
    let max = max_addresses
        .trim()
        .parse::<u128>()
        .map_err(|_| {
            errors.push(FieldError::new(
                "max_addresses",
                "must be a whole number of addresses, e.g. 4096",
            ))
        })
        .ok();
    let team_row = store::teams::find_by_slug(&ctx.pool, team).await?;
    if team_row.is_none() {
        errors.push(FieldError::new(
            "team",
            format!("no team is called {team:?}"),
        ));
    }
    let (Some(max), Some(team_row)) = (max, team_row) else {
        return Err(Error::Invalid(errors));
    };
    let mut tx = ctx.pool.begin().await?;
    let pool = store::pools::find(&mut *tx, pool_id)
        .await?
        .ok_or_else(|| Error::NotFound("that pool".into()))?;
    store::pools::set_quota(&mut *tx, pool.id, team_row.id, max).await?;
    audit::by(
        &mut tx,
        caller,
        "quota.set",
        "pool",
        &pool.id.to_string(),
        json!({ "after": { "team": team_row.slug, "max_addresses": max.to_string() } }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refuses a prefix that would take the team past its quota in this pool.
pub(super) async fn check_quota(
    tx: &mut sqlx::PgConnection,
    pool: &Pool,
    team_id: Uuid,
    team: &str,
    cidr: IpNet,
) -> Result<()> {
    let Some(max) = store::pools::quota(&mut *tx, pool.id, team_id).await? else {
        return Ok(());
    };
    let held: u128 =
        store::pools::team_prefixes_within(&mut *tx, team_id, pool.space_id, pool.cidr)
            .await?
            .iter()
            .map(ipam::size)
            .sum();
    let wanted = ipam::size(&cidr);
    if held.saturating_add(wanted) > max {
        return Err(Error::Invalid(vec![FieldError::new(
            "prefix_length",
            format!(
                "the team {team} may hold {max} addresses in the pool {} and holds {held}: a /{} ({wanted} addresses) would exceed the quota",
                pool.name,
                cidr.prefix_len()
            ),
        )]));
    }
    Ok(())
}

/// Gives a prefix back to its pool. A prefix a network uses is refused
/// (deleting the network releases it) unless an admin overrides with `force`:
/// released from under a network, the block is free for anyone.
pub async fn release(ctx: &Context, caller: &Caller, id: Uuid, force: bool) -> Result<Allocation> {
    let mut tx = ctx.pool.begin().await?;
    let existing = store::pools::lock_allocation(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that allocation".into()))?;
    caller.actor.require(Action::Release {
        allocated_by: existing.created_by,
    })?;
    let network = match existing.network_id {
        Some(network_id) => store::networks::find(&mut *tx, network_id).await?,
        None => None,
    };
    if let Some(network) = &network {
        if !force {
            return Err(Error::Conflict(format!(
                "{} is a prefix of the network {} (team {}): delete the network to release it, or an admin may release it anyway with force",
                existing.cidr, network.name, network.team_slug
            )));
        }
        caller.actor.require(Action::ReleaseNetworkPrefix)?;
    }
    let removed = store::pools::delete_allocation(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that allocation".into()))?;
    audit::by(
        &mut tx,
        caller,
        "allocation.released",
        "allocation",
        &id.to_string(),
        json!({
            "before": { "cidr": removed.cidr.to_string(), "pool_id": removed.pool_id,
                        "network": network.as_ref().map(|n| &n.name) },
            "forced": network.is_some(),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(removed)
}
