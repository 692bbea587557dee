//! Provider accounts and the networks teams own in them.

use ipnet::IpNet;
use serde_json::json;
use uuid::Uuid;

use super::address_plan::{self, AllocateError, AllocationRequest};
use super::filter::given;
use super::idempotency::{IdempotencyKey, Once};
use super::{Caller, Context, audit};
use crate::auth::policy::Action;
use crate::domain::page::{Cursor, Page, Paged};
use crate::error::{Error, FieldError, Result};
use crate::ipam;
use crate::providers::{ProviderError, TEAM_TAG, TeamTag};
use crate::store::{
    self,
    networks::{Network, NewNetwork, Ownership},
    pools::{Allocation, NewAllocation},
    provider_accounts::{NewAccount, ProviderAccount},
};

mod accounts;
mod build;
mod ownership;
mod unattended;
mod watch;

use accounts::text_map;
pub use accounts::{
    AccountRequest, account_problems, create_account, ensure_default_sandbox, list_accounts,
};
pub use build::{approve_network, build, reject_network, remove};
use ownership::*;
pub use ownership::{check_ownership, confirm_ownership, pending_registrations, refuse_ownership};
pub use unattended::resume_unattended_networks;
pub use watch::watch_networks;

/// Kinds of provider the portal knows (modules arrive with later issues).
pub const PROVIDER_KINDS: &[&str] = &["sandbox", "aws", "linux", "proxy", "dns"];

/// A request for a network: new address space from the plan, or an existing prefix.
#[derive(serde::Serialize)]
pub struct NetworkRequest {
    pub name: String,
    pub team: String,
    pub provider_account_id: Option<Uuid>,
    pub region: String,
    /// Picks the pool labelled with this environment (with the region).
    pub environment: Option<String>,
    /// Allocate from this pool instead of the one the labels pick.
    pub pool_id: Option<Uuid>,
    pub prefix_length: Option<i64>,
    /// Register this existing prefix instead of allocating one.
    pub cidr: Option<String>,
    pub external_id: Option<String>,
    pub tags: serde_json::Value,
}

pub struct NetworkDetail {
    pub network: Network,
    pub prefixes: Vec<Allocation>,
}

impl NetworkDetail {
    /// What Switchboard builds for it; none for a registered network.
    pub fn plan(&self) -> Option<crate::planner::network::NetworkPlan> {
        self.network
            .plan
            .clone()
            .and_then(|p| serde_json::from_value(p).ok())
    }

    /// How the built network differs from its plan, as last observed.
    pub fn differences(&self) -> Vec<String> {
        serde_json::from_value(self.network.differences.clone()).unwrap_or_default()
    }
}

pub async fn create_network(
    ctx: &Context,
    caller: &Caller,
    req: NetworkRequest,
    key: Option<&IdempotencyKey>,
) -> Result<NetworkDetail> {
    let once = Once::new(caller, key, "create_network", &req)?;
    if let Some(id) = once.earlier(ctx).await? {
        return get_network(ctx, caller, id).await;
    }
    let mut errors = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let team = store::teams::find_by_slug(&ctx.pool, req.team.trim()).await?;
    if team.is_none() {
        errors.push(FieldError::new(
            "team",
            match req.team.trim() {
                "" => "is required: the team that will own the network".to_owned(),
                slug => format!("no team is called {slug:?}"),
            },
        ));
    }
    let account = match req.provider_account_id {
        Some(id) => store::provider_accounts::find(&ctx.pool, id).await?,
        None => None,
    };
    match &account {
        None => errors.push(FieldError::new(
            "provider_account_id",
            "no provider account has this id",
        )),
        Some(a) if !a.regions.is_empty() && !a.regions.iter().any(|r| r == req.region.trim()) => {
            errors.push(FieldError::new(
                "region",
                format!(
                    "the account {} has the regions: {}",
                    a.name,
                    a.regions.join(", ")
                ),
            ))
        }
        Some(_) if req.region.trim().is_empty() => {
            errors.push(FieldError::new("region", "is empty"))
        }
        Some(_) => {}
    }
    if !text_map(&req.tags) {
        errors.push(FieldError::new("tags", "must be an object of text values"));
    }
    let cidr = match &req.cidr {
        Some(text) => ipam::parse_cidr(text)
            .map_err(|reason| errors.push(FieldError::new("cidr", reason)))
            .ok(),
        None => None,
    };
    let (Some(team), Some(account), true) = (team, account, errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    caller
        .actor
        .require(Action::ManageNetworks { team_id: team.id })?;

    let region = req.region.trim().to_owned();
    let external_id = req
        .external_id
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let (resource_key, ownership) = ownership_of(
        ctx,
        caller,
        &account,
        &region,
        &team.slug,
        external_id,
        None,
    )
    .await?;
    let pool_id = match (cidr, req.pool_id) {
        (_, Some(id)) => id,
        (Some(cidr), None) => store::pools::containing(&ctx.pool, cidr)
            .await?
            .first()
            .map(|p| p.id)
            .ok_or_else(|| Error::invalid("cidr", format!("{cidr} is in no pool of the address plan")))?,
        (None, None) => store::pools::labelled(&ctx.pool, &region, req.environment.as_deref())
            .await?
            .first()
            .map(|p| p.id)
            .ok_or_else(|| {
                Error::invalid(
                    "region",
                    match &req.environment {
                        Some(env) => format!("no pool of the address plan is labelled region={region}, environment={env}"),
                        None => format!("no pool of the address plan is labelled region={region}"),
                    },
                )
            })?,
    };

    // A network allocated from the plan is built by Switchboard where the
    // account can build one; a registered one (its range or resource given)
    // already exists. An account that cannot be served is refused now, not
    // after the range was taken.
    let builds = cidr.is_none()
        && external_id.is_none()
        && crate::planner::network::builds_networks(&account.kind);
    if builds {
        let (registry, _) = ctx.providers().await?;
        if let Err(why) = registry.get(&account.name) {
            return Err(Error::invalid(
                "provider_account_id",
                format!("{} cannot build networks now: {why}", account.name),
            ));
        }
    }
    for attempt in 0..8u64 {
        let mut tx = ctx.pool.begin().await?;
        let id = Uuid::new_v4();
        let inserted = store::networks::insert(
            &mut *tx,
            NewNetwork {
                id,
                name: &name,
                team_id: team.id,
                provider_account_id: account.id,
                region: &region,
                external_id,
                resource_key: resource_key.as_deref(),
                ownership: &ownership,
                tags: &req.tags,
                created_by: caller.actor.user_id,
            },
        )
        .await
        .map_err(|e| resource_taken(e, external_id))?;
        if !inserted {
            return Err(Error::Conflict(format!(
                "the team {} already has a network named {name:?}",
                team.slug
            )));
        }
        let prefix = match cidr {
            Some(cidr) => {
                register_prefix(&mut tx, caller, pool_id, cidr, id, (team.id, &team.slug)).await
            }
            None => {
                let request = AllocationRequest {
                    prefix_length: req.prefix_length,
                    idempotency_key: None,
                    reservation_ttl: None,
                    description: format!("network {name} of {}", team.slug),
                };
                address_plan::allocate_in(
                    &mut tx,
                    caller,
                    pool_id,
                    &request,
                    None,
                    Some((id, team.id, &team.slug)),
                )
                .await
                .map(|a| a.allocation)
            }
        };
        let prefix = match prefix {
            Ok(prefix) => prefix,
            Err(AllocateError::Race) => {
                tokio::time::sleep(std::time::Duration::from_millis(5 * (attempt + 1))).await;
                continue;
            }
            Err(AllocateError::Other(e)) => return Err(e),
        };
        if builds {
            build::start(
                ctx,
                &mut tx,
                caller,
                (id, &name, team.id, &team.slug),
                &account,
                &region,
                prefix.cidr,
            )
            .await?;
        }
        once.remember(&mut tx, id).await?;
        audit::by(&mut tx, caller, "network.created", "network", &id.to_string(), json!({ "after": { "name": name, "team": team.slug, "account": account.name, "region": region, "cidr": prefix.cidr.to_string(), "registered": cidr.is_some(), "built": builds, "external_id": external_id, "ownership": ownership.state, "evidence": ownership.evidence } })).await?;
        tx.commit().await?;
        return get_network(ctx, caller, id).await;
    }
    Err(Error::Conflict("the pool is very busy; try again".into()))
}

/// Records an existing prefix; says with what it overlaps if it does.
async fn register_prefix(
    tx: &mut sqlx::PgConnection,
    caller: &Caller,
    pool_id: Uuid,
    cidr: IpNet,
    network_id: Uuid,
    (team_id, team): (Uuid, &str),
) -> std::result::Result<Allocation, AllocateError> {
    let pool = store::pools::lock(&mut *tx, pool_id)
        .await?
        .ok_or_else(|| Error::invalid("pool_id", "no pool has this id"))?;
    if !pool.cidr.contains(&cidr) {
        return Err(Error::invalid(
            "cidr",
            format!(
                "{cidr} is not inside the pool {} ({})",
                pool.name, pool.cidr
            ),
        )
        .into());
    }
    if let Some((other, owner)) =
        store::pools::overlapping_allocation(&mut *tx, pool.space_id, cidr).await?
    {
        let whose = owner.map(|n| format!(" (network {n})")).unwrap_or_default();
        return Err(
            Error::Conflict(format!("{cidr} overlaps {other}{whose}, already allocated")).into(),
        );
    }
    address_plan::check_quota(&mut *tx, &pool, team_id, team, cidr).await?;
    let inserted = store::pools::insert_allocation(
        &mut *tx,
        NewAllocation {
            pool: &pool,
            cidr,
            idempotency_key: None,
            reserved_until: None,
            description: "registered network",
            created_by: caller.actor.user_id,
            network_id: Some(network_id),
        },
    )
    .await;
    match inserted {
        Ok(a) => Ok(a),
        Err(e) if address_plan::is_code(&e, address_plan::EXCLUSION_VIOLATION) => {
            Err(AllocateError::Race)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn get_network(ctx: &Context, caller: &Caller, id: Uuid) -> Result<NetworkDetail> {
    caller.actor.require(Action::ViewNetworks)?;
    let network = store::networks::find(&ctx.pool, id)
        .await?
        .ok_or_else(|| Error::NotFound("that network".into()))?;
    let prefixes = store::pools::for_network(&ctx.pool, id).await?;
    Ok(NetworkDetail { network, prefixes })
}

/// Networks matching the filters that are set, each with its prefixes.
/// What a list of networks can be narrowed to, as typed.
#[derive(Debug, Default, Clone)]
pub struct NetworkFilter {
    pub team: Option<String>,
    pub provider_account: Option<String>,
    pub region: Option<String>,
    /// An address or prefix: networks with a prefix holding it.
    pub contains: Option<String>,
}

/// Every network matching the filter, by team and name (the pages' pickers).
pub async fn list_networks(
    ctx: &Context,
    caller: &Caller,
    filter: &NetworkFilter,
) -> Result<Vec<NetworkDetail>> {
    Ok(find_networks(ctx, caller, filter, None).await?.items)
}

/// One page of the networks matching the filter, by team and name.
pub async fn page_networks(
    ctx: &Context,
    caller: &Caller,
    filter: &NetworkFilter,
    page: &Page<(String, String, Uuid)>,
) -> Result<Paged<NetworkDetail>> {
    find_networks(ctx, caller, filter, Some(page)).await
}

async fn find_networks(
    ctx: &Context,
    caller: &Caller,
    filter: &NetworkFilter,
    page: Option<&Page<(String, String, Uuid)>>,
) -> Result<Paged<NetworkDetail>> {
    caller.actor.require(Action::ViewNetworks)?;
    let contains = given(&filter.contains)
        .map(|text| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    Error::invalid(
                        "contains",
                        "must be an address or a prefix, e.g. 10.1.2.3 or 10.1.0.0/16",
                    )
                })
        })
        .transpose()?;
    let query = store::networks::ListQuery {
        team: given(&filter.team),
        provider_account: given(&filter.provider_account),
        region: given(&filter.region),
        contains,
        after: page.and_then(|p| p.after.clone()).map(|c| c.0),
        fetch: page.map(Page::fetch),
    };
    let found = store::networks::list(&ctx.pool, &query).await?;
    let found = match page {
        Some(p) => Paged::cut(found, p.limit, |n| {
            Cursor((n.team_slug.clone(), n.name.clone(), n.id))
        }),
        None => Paged {
            items: found,
            next: None,
        },
    };
    let ids: Vec<Uuid> = found.items.iter().map(|n| n.id).collect();
    let mut prefixes = store::pools::for_networks(&ctx.pool, &ids).await?;
    Ok(found.map(|network| {
        let (mine, rest) = prefixes
            .drain(..)
            .partition(|p| p.network_id == Some(network.id));
        prefixes = rest;
        NetworkDetail {
            network,
            prefixes: mine,
        }
    }))
}

pub struct NetworkChange {
    pub name: Option<String>,
    pub external_id: Option<Option<String>>,
    pub tags: Option<serde_json::Value>,
}

pub async fn update_network(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    change: NetworkChange,
) -> Result<NetworkDetail> {
    let before = get_network(ctx, caller, id).await?.network;
    caller.actor.require(Action::ManageNetworks {
        team_id: before.team_id,
    })?;
    let mut errors = Vec::new();
    let name = change
        .name
        .as_deref()
        .map(str::trim)
        .unwrap_or(&before.name)
        .to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let tags = change.tags.unwrap_or_else(|| before.tags.clone());
    if !text_map(&tags) {
        errors.push(FieldError::new("tags", "must be an object of text values"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let external_id = match change.external_id {
        Some(value) => value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
        None => before.external_id.clone(),
    };
    if before.built_by_switchboard() && external_id != before.external_id {
        return Err(Error::invalid(
            "external_id",
            "Switchboard builds this network: it stands for what was built, which cannot change",
        ));
    }
    // A new resource needs its own proof; the same one keeps what was proved.
    let (resource_key, ownership) = if external_id == before.external_id {
        (before.resource_key.clone(), kept_ownership(&before))
    } else {
        let account = store::provider_accounts::find(&ctx.pool, before.provider_account_id)
            .await?
            .ok_or_else(|| Error::internal("a network without its provider account"))?;
        ownership_of(
            ctx,
            caller,
            &account,
            &before.region,
            &before.team_slug,
            external_id.as_deref(),
            Some(id),
        )
        .await?
    };
    let mut tx = ctx.pool.begin().await?;
    store::networks::update(
        &mut *tx,
        id,
        &name,
        (external_id.as_deref(), resource_key.as_deref(), &ownership),
        &tags,
    )
    .await
    .map_err(|e| {
        if is_constraint(&e, "networks_one_per_resource") {
            resource_taken(e, external_id.as_deref())
        } else if address_plan::is_code(&e, address_plan::UNIQUE_VIOLATION) {
            Error::Conflict(format!(
                "the team {} already has a network named {name:?}",
                before.team_slug
            ))
        } else {
            e.into()
        }
    })?;
    audit::by(&mut tx, caller, "network.changed", "network", &id.to_string(), json!({
        "before": { "name": before.name, "external_id": before.external_id, "tags": before.tags, "ownership": before.ownership },
        "after": { "name": name, "external_id": external_id, "tags": tags, "ownership": ownership.state, "evidence": ownership.evidence },
    })).await?;
    tx.commit().await?;
    get_network(ctx, caller, id).await
}

/// What deleting a network did.
#[derive(Debug, PartialEq, Eq)]
pub enum Deletion {
    /// It is gone, and its prefixes are back in the plan.
    Deleted,
    /// Switchboard built it: the workers remove what was built, then the network.
    Removing,
}

/// Deletes the network and gives its prefixes back to the plan; one
/// Switchboard built is removed from its provider first. Refused while
/// connections use it, naming them.
pub async fn delete_network(ctx: &Context, caller: &Caller, id: Uuid) -> Result<Deletion> {
    let detail = get_network(ctx, caller, id).await?;
    caller.actor.require(Action::ManageNetworks {
        team_id: detail.network.team_id,
    })?;
    let mut tx = ctx.pool.begin().await?;
    let Some(network) = store::networks::lock(&mut *tx, id).await? else {
        return Err(Error::NotFound("that network".into()));
    };
    let users = store::networks::used_by(&mut *tx, id).await?;
    if !users.is_empty() {
        let named: Vec<String> = users
            .iter()
            .map(|(c, reason, status)| format!("{c} ({status}: {reason:?})"))
            .collect();
        return Err(Error::Conflict(format!(
            "connections still use the network {}: {}; remove them first",
            network.name,
            named.join(", ")
        )));
    }
    let nothing_built = network.status() == crate::domain::network::Status::AwaitingApproval;
    if network.built_by_switchboard() && !nothing_built {
        build::start_removal(&mut tx, caller, &network).await?;
        tx.commit().await?;
        return Ok(Deletion::Removing);
    }
    store::networks::delete(&mut *tx, id).await?;
    audit::by(&mut tx, caller, "network.deleted", "network", &id.to_string(), json!({
        "before": { "name": detail.network.name, "team": detail.network.team_slug,
                    "prefixes": detail.prefixes.iter().map(|p| p.cidr.to_string()).collect::<Vec<_>>() },
    })).await?;
    tx.commit().await?;
    Ok(Deletion::Deleted)
}

/// What is known of a network's ownership, unchanged.
fn kept_ownership(n: &Network) -> Ownership {
    Ownership {
        state: match n.ownership.as_str() {
            "pending" => "pending",
            "proved" => "proved",
            "confirmed" => "confirmed",
            _ => "none",
        },
        evidence: n.ownership_evidence.clone(),
        decided_by: n.ownership_decided_by,
    }
}

fn is_constraint(e: &sqlx::Error, name: &str) -> bool {
    e.as_database_error()
        .and_then(|d| d.constraint())
        .is_some_and(|c| c == name)
}

/// Another network took the resource between the check and the insert.
fn resource_taken(e: sqlx::Error, external_id: Option<&str>) -> Error {
    if is_constraint(&e, "networks_one_per_resource") {
        Error::Conflict(format!(
            "{} is already registered as another network",
            external_id.unwrap_or("this resource")
        ))
    } else {
        e.into()
    }
}

/// What the workers did to build or remove a network, oldest first.
pub async fn network_steps(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<store::networks::NetworkStep>> {
    get_network(ctx, caller, id).await?;
    Ok(store::networks::steps(&ctx.pool, id).await?)
}
