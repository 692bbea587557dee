//! Provider accounts and the networks teams own in them.

use ipnet::IpNet;
use serde_json::json;
use uuid::Uuid;

use super::address_plan::{self, AllocateError, AllocationRequest};
use super::{Caller, Context, audit};
use crate::auth::policy::Action;
use crate::error::{Error, FieldError, Result};
use crate::ipam;
use crate::store::{
    self,
    networks::{Network, NewNetwork},
    pools::{Allocation, NewAllocation},
    provider_accounts::{NewAccount, ProviderAccount},
};

/// Kinds of provider the portal knows (modules arrive with later issues).
pub const PROVIDER_KINDS: &[&str] = &["sandbox", "aws", "linux", "proxy", "dns"];

fn text_map(value: &serde_json::Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.values().all(|v| v.is_string()))
}

pub struct AccountRequest {
    pub kind: String,
    pub name: String,
    pub regions: Vec<String>,
    pub settings: serde_json::Value,
    pub credentials_ref: Option<String>,
}

pub async fn create_account(
    ctx: &Context,
    caller: &Caller,
    req: AccountRequest,
) -> Result<ProviderAccount> {
    caller.actor.require(Action::ManageProviderAccounts)?;
    let mut errors = Vec::new();
    if !PROVIDER_KINDS.contains(&req.kind.as_str()) {
        errors.push(FieldError::new(
            "kind",
            format!("must be one of: {}", PROVIDER_KINDS.join(", ")),
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if req
        .regions
        .iter()
        .any(|r| r.trim().is_empty() || r.len() > 64)
    {
        errors.push(FieldError::new(
            "regions",
            "each region must be 1 to 64 characters",
        ));
    }
    if !req.settings.is_object() {
        errors.push(FieldError::new("settings", "must be an object"));
    } else if let Some(key) = req.settings.as_object().and_then(|m| {
        m.keys().find(|k| {
            let k = k.to_lowercase();
            ["secret", "password", "token", "private"]
                .iter()
                .any(|w| k.contains(w))
        })
    }) {
        errors.push(FieldError::new(
            "settings",
            format!("{key:?} looks like a credential: give credentials_ref (env:NAME or file:/path) instead; credentials are never stored"),
        ));
    }
    if let Some(r) = &req.credentials_ref {
        if !crate::domain::notification::is_secret_ref(r) {
            errors.push(FieldError::new(
                "credentials_ref",
                "must be env:VARIABLE_NAME or file:/absolute/path",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let regions: Vec<String> = req.regions.iter().map(|r| r.trim().to_owned()).collect();
    let mut tx = ctx.pool.begin().await?;
    let account = store::provider_accounts::insert(
        &mut *tx,
        NewAccount {
            kind: &req.kind,
            name,
            regions: &regions,
            settings: &req.settings,
            credentials_ref: req.credentials_ref.as_deref(),
        },
    )
    .await?
    .ok_or_else(|| Error::Conflict(format!("a provider account named {name:?} already exists")))?;
    audit::by(&mut tx, caller, "provider_account.created", "provider_account", &account.id.to_string(), json!({ "after": { "kind": account.kind, "name": account.name, "regions": account.regions } })).await?;
    tx.commit().await?;
    Ok(account)
}

/// `up`'s default: with no provider account at all, a `sandbox` one, so the
/// whole flow (plan, approve, build, monitor) can be tried with nothing else.
pub async fn ensure_default_sandbox(pool: &sqlx::PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    if let Some(account) = store::provider_accounts::insert_sandbox_if_none(&mut *tx).await? {
        audit::record(
            &mut tx,
            Some("switchboard"),
            None,
            None,
            "provider_account.created",
            "provider_account",
            &account.id.to_string(),
            json!({ "after": { "kind": account.kind, "name": account.name, "regions": account.regions }, "why": "the default of `up`: no provider account existed" }),
        )
        .await?;
        tracing::info!("no provider account: added the sandbox one (a simulated cloud)");
    }
    tx.commit().await?;
    Ok(())
}

pub async fn list_accounts(ctx: &Context, caller: &Caller) -> Result<Vec<ProviderAccount>> {
    caller.actor.require(Action::ViewNetworks)?;
    Ok(store::provider_accounts::list(&ctx.pool).await?)
}

/// Why each account that cannot provision cannot (a missing credential, a
/// kind no module serves…), by account name; the others are not listed.
pub async fn account_problems(ctx: &Context) -> Result<std::collections::HashMap<String, String>> {
    let all = store::provider_accounts::list(&ctx.pool).await?;
    Ok(crate::providers::Registry::build(&ctx.pool, &all).problems())
}

/// A request for a network: new address space from the plan, or an existing prefix.
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

pub async fn create_network(
    ctx: &Context,
    caller: &Caller,
    req: NetworkRequest,
) -> Result<NetworkDetail> {
    let mut errors = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let team = store::teams::find_by_slug(&ctx.pool, req.team.trim()).await?;
    if team.is_none() {
        errors.push(FieldError::new(
            "team",
            format!("no team is called {:?}", req.team.trim()),
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
                external_id: req
                    .external_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|e| !e.is_empty()),
                tags: &req.tags,
                created_by: caller.actor.user_id,
            },
        )
        .await?;
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
        audit::by(&mut tx, caller, "network.created", "network", &id.to_string(), json!({ "after": { "name": name, "team": team.slug, "account": account.name, "region": region, "cidr": prefix.cidr.to_string(), "registered": cidr.is_some() } })).await?;
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
pub async fn list_networks(
    ctx: &Context,
    caller: &Caller,
    team: Option<&str>,
    provider_account: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<NetworkDetail>> {
    caller.actor.require(Action::ViewNetworks)?;
    let found = store::networks::list(&ctx.pool, team, provider_account, region).await?;
    let ids: Vec<Uuid> = found.iter().map(|n| n.id).collect();
    let mut prefixes = store::pools::for_networks(&ctx.pool, &ids).await?;
    Ok(found
        .into_iter()
        .map(|network| {
            let (mine, rest) = prefixes
                .drain(..)
                .partition(|p| p.network_id == Some(network.id));
            prefixes = rest;
            NetworkDetail {
                network,
                prefixes: mine,
            }
        })
        .collect())
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
    let mut tx = ctx.pool.begin().await?;
    store::networks::update(&mut *tx, id, &name, external_id.as_deref(), &tags)
        .await
        .map_err(|e| {
            if address_plan::is_code(&e, address_plan::UNIQUE_VIOLATION) {
                Error::Conflict(format!(
                    "the team {} already has a network named {name:?}",
                    before.team_slug
                ))
            } else {
                e.into()
            }
        })?;
    audit::by(&mut tx, caller, "network.changed", "network", &id.to_string(), json!({
        "before": { "name": before.name, "external_id": before.external_id, "tags": before.tags },
        "after": { "name": name, "external_id": external_id, "tags": tags },
    })).await?;
    tx.commit().await?;
    get_network(ctx, caller, id).await
}

/// Deletes the network and gives its prefixes back to the plan.
pub async fn delete_network(ctx: &Context, caller: &Caller, id: Uuid) -> Result<()> {
    let detail = get_network(ctx, caller, id).await?;
    caller.actor.require(Action::ManageNetworks {
        team_id: detail.network.team_id,
    })?;
    let mut tx = ctx.pool.begin().await?;
    store::networks::delete(&mut *tx, id).await?;
    audit::by(&mut tx, caller, "network.deleted", "network", &id.to_string(), json!({
        "before": { "name": detail.network.name, "team": detail.network.team_slug,
                    "prefixes": detail.prefixes.iter().map(|p| p.cidr.to_string()).collect::<Vec<_>>() },
    })).await?;
    tx.commit().await?;
    Ok(())
}
