//! Networks Switchboard builds through their provider: planned when created
//! (the range cut into one subnet per zone), approved by a lead of the team
//! when the account asks for it (`network_approval = lead`), built by the
//! `BuildNetwork` job, compared with their plan by the monitor, and removed by
//! the `RemoveNetwork` job. Every job is safe to repeat after a crash at any
//! point: the provider finds what an earlier attempt built by its tag, and
//! only one worker acts on a network at a time (a lease on its row that lapses
//! by itself when the worker dies).

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context, NetworkDetail, audit, get_network};
use crate::auth::policy::Action;
use crate::domain::jobs::{BuildNetwork, RemoveNetwork};
use crate::domain::network::{Status, Underlay};
use crate::domain::notification::Topic;
use crate::error::{Error, Result};
use crate::notify::messages::{Compose, PlainNotice};
use crate::planner::build::{Build, UnderlayAddress};
use crate::planner::network::{NetworkAsk, NetworkPlan, default_zones, plan_network};
use crate::providers::{self, Item, ProviderError, Removal, Step};
use crate::services::provisioning::{Leased, Outcome, as_only_actor_on};
use crate::store::{self, networks::Network, provider_accounts::ProviderAccount};

/// The zones of a region in an account: its `zones.<region>` setting (a
/// comma-separated list), else the region's first three.
fn zones(account: &ProviderAccount, region: &str) -> Vec<String> {
    match account.setting(&format!("zones.{region}")) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .map(str::to_owned)
            .collect(),
        None => default_zones(region),
    }
}

/// A namespace's address on its account's underlay (given to the network in
/// `tx`), when the account has one; the underlay's full range is refused.
async fn underlay_for(
    tx: &mut PgConnection,
    id: Uuid,
    account: &ProviderAccount,
) -> Result<Option<UnderlayAddress>> {
    if account.kind != "linux" {
        return Ok(None);
    }
    let underlay = Underlay::from_settings(
        account.setting("underlay_bridge"),
        account.setting("underlay_range"),
    )
    .map_err(|why| Error::invalid("provider_account_id", format!("{}: {why}", account.name)))?;
    let Some(underlay) = underlay else {
        return Ok(None);
    };
    let taken = store::networks::underlays_taken(tx, account.id).await?;
    let address = underlay.next_address(&taken).ok_or_else(|| {
        Error::invalid(
            "provider_account_id",
            format!(
                "{}'s underlay_range {} has no free address for another namespace: an admin can widen it",
                account.name, underlay.range
            ),
        )
    })?;
    store::networks::set_underlay(&mut *tx, id, address).await?;
    Ok(Some(UnderlayAddress {
        bridge: underlay.bridge,
        address,
    }))
}

/// Whether creating a network in this account waits for a lead's approval.
fn needs_approval(account: &ProviderAccount) -> bool {
    account.setting("network_approval") == Some("lead")
}

/// Plans the build of a network just created (in its transaction) and either
/// queues it or leaves it for a lead's approval; a lead or an admin creating
/// it approves it by doing so. A plan that cannot be made names its field.
pub(super) async fn start(
    ctx: &Context,
    tx: &mut PgConnection,
    caller: &Caller,
    network: (Uuid, &str, Uuid, &str),
    account: &ProviderAccount,
    region: &str,
    cidr: ipnet::IpNet,
) -> Result<()> {
    let (id, name, team_id, team) = network;
    let underlay = underlay_for(tx, id, account).await?;
    let plan = plan_network(&NetworkAsk {
        account: &account.name,
        provider_kind: &account.kind,
        region,
        name,
        team,
        cidr,
        zones: &zones(account, region),
        underlay,
    })
    .map_err(|r| Error::invalid(r.field, r.reason))?;
    let hash = plan.hash();
    let stored = serde_json::to_value(&plan).map_err(Error::internal)?;
    let waits = needs_approval(account) && !caller.actor.can(Action::ApproveNetwork { team_id });
    let status = if waits {
        Status::AwaitingApproval
    } else {
        Status::Building
    };
    store::networks::set_plan(&mut *tx, id, &stored, &hash, status.as_str()).await?;
    if waits {
        for (_, email, lead) in store::connections::leads_of(&mut *tx, &[team_id]).await? {
            let message = PlainNotice {
                name: lead,
                about: format!("Network {name}"),
                subject: "waiting for your approval".into(),
                headline: format!(
                    "{} asks to build a network for {team}. What would be built:",
                    caller.label()
                ),
                lines: vec![plan.summary.clone()],
                footer: "Approve or reject it on its page.".into(),
                url: String::new(),
            };
            tell(ctx, tx, Topic::Approvals, &email, message, id).await?;
        }
    } else {
        store::queue::enqueue(
            &mut *tx,
            &BuildNetwork {
                network_id: id,
                plan_hash: hash,
            },
        )
        .await?;
    }
    Ok(())
}

/// A lead of the network's team (or an admin) approves the plan they saw
/// (its hash); the build starts.
pub async fn approve_network(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    plan_hash: &str,
) -> Result<NetworkDetail> {
    let n = get_network(ctx, caller, id).await?.network;
    caller
        .actor
        .require(Action::ApproveNetwork { team_id: n.team_id })?;
    let mut tx = ctx.pool.begin().await?;
    if !store::networks::approve(&mut *tx, id, plan_hash, caller.actor.user_id).await? {
        return Err(match (n.status(), n.plan_hash.as_deref()) {
            (Status::AwaitingApproval, Some(h)) if h != plan_hash => Error::Conflict(
                "the plan changed since you saw it: reload the network and look again".into(),
            ),
            (status, _) => Error::Conflict(format!(
                "the network is {}: there is nothing to approve",
                status.words()
            )),
        });
    }
    store::queue::enqueue(
        &mut tx,
        &BuildNetwork {
            network_id: id,
            plan_hash: plan_hash.to_owned(),
        },
    )
    .await?;
    audit::by(
        &mut tx,
        caller,
        "network.approved",
        "network",
        &id.to_string(),
        json!({ "plan_hash": plan_hash, "before": { "status": "awaiting_approval" }, "after": { "status": "building" } }),
    )
    .await?;
    tx.commit().await?;
    get_network(ctx, caller, id).await
}

/// A lead (or an admin) rejects building the network, with a reason: the
/// network is deleted and its range goes back to the address plan; its
/// creator hears why.
pub async fn reject_network(ctx: &Context, caller: &Caller, id: Uuid, reason: &str) -> Result<()> {
    let n = get_network(ctx, caller, id).await?.network;
    caller
        .actor
        .require(Action::ApproveNetwork { team_id: n.team_id })?;
    let mut tx = ctx.pool.begin().await?;
    let Some(n) = store::networks::lock(&mut *tx, id).await? else {
        return Err(Error::NotFound("that network".into()));
    };
    if n.status() != Status::AwaitingApproval {
        return Err(Error::Conflict(format!(
            "the network is {}: there is nothing to reject",
            n.status().words()
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(Error::invalid(
            "reason",
            "must be 1 to 2000 characters: say why",
        ));
    }
    store::networks::delete(&mut *tx, id).await?;
    audit::by(
        &mut tx,
        caller,
        "network.rejected",
        "network",
        &id.to_string(),
        json!({ "reason": reason, "before": { "name": n.name, "team": n.team_slug, "status": "awaiting_approval" } }),
    )
    .await?;
    if let Some(creator) = n.created_by {
        let message = PlainNotice {
            name: String::new(),
            about: format!("Network {}", n.name),
            subject: "not built".into(),
            headline: format!("{} rejected building it: {reason}", caller.label()),
            lines: Vec::new(),
            footer: "Its range went back to the address plan.".into(),
            url: String::new(),
        };
        tell_user(ctx, &mut tx, Topic::Decisions, creator, message, None).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The item a network's plan builds, with the provider's id once built.
pub(super) fn item_of(n: &Network) -> Result<Item> {
    let plan: NetworkPlan = n
        .plan
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(Error::internal)?
        .ok_or_else(|| Error::internal("a built network without its plan"))?;
    let mut build = plan.build().map_err(Error::internal)?;
    if let Build::Network { network, .. } = &mut build {
        network.id = n.external_id.clone();
    }
    Ok(Item {
        label: plan.resource.kind,
        name: plan.resource.name,
        detail: plan.resource.detail,
        build,
    })
}

/// Builds an approved network, exactly the approved plan.
#[tracing::instrument(skip_all, fields(network = %id))]
pub async fn build(
    ctx: &Context,
    id: Uuid,
    plan_hash: &str,
    last_attempt: bool,
) -> Result<Outcome> {
    as_only_actor_on(
        ctx,
        Leased::Network,
        id,
        "build",
        build_alone(ctx, id, plan_hash, last_attempt),
    )
    .await
}

async fn build_alone(
    ctx: &Context,
    id: Uuid,
    plan_hash: &str,
    last_attempt: bool,
) -> Result<Outcome> {
    let Some(n) = store::networks::find(&ctx.pool, id).await? else {
        return Ok(Outcome::Done);
    };
    // Removed, rejected or built meanwhile: nothing to do.
    if n.status() != Status::Building || n.plan_hash.as_deref() != Some(plan_hash) {
        return Ok(Outcome::Done);
    }
    let item = item_of(&n)?;
    let account = n.provider_account_name.clone();
    let built = async {
        let (registry, accounts) = ctx
            .providers()
            .await
            .map_err(|e| ProviderError::Transient(e.to_string()))?;
        let provider = registry.get(&account)?;
        let step = provider.apply(id, &item).await?;
        let kind = accounts
            .iter()
            .find(|a| a.name == account)
            .map(|a| a.kind.clone())
            .unwrap_or_default();
        Ok::<_, ProviderError>((step, kind))
    }
    .await;
    match built {
        Ok((step, kind)) => {
            let external = step.provider_id.clone().unwrap_or_default();
            let key = providers::resource_key(&kind, &external).map_err(Error::internal)?;
            let mut tx = ctx.pool.begin().await?;
            record(&mut tx, id, &account, &step).await?;
            let evidence = format!("Switchboard built {external} for {}", n.team_slug);
            if store::networks::built(&mut *tx, id, &external, &key, &evidence).await? {
                audit::record(
                    &mut tx,
                    Some("switchboard"),
                    None,
                    None,
                    "network.ready",
                    "network",
                    &id.to_string(),
                    json!({ "external_id": external, "before": { "status": "building" }, "after": { "status": "ready" } }),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(Outcome::Done)
        }
        Err(ProviderError::Transient(why)) if !last_attempt => {
            store::networks::add_step(&ctx.pool, id, "retrying", &why, None).await?;
            Ok(Outcome::Retry(why))
        }
        Err(e) => {
            fail(
                ctx,
                &n,
                Status::Building,
                &format!("building it failed: {e}"),
            )
            .await?;
            Ok(Outcome::Done)
        }
    }
}

async fn record(tx: &mut PgConnection, id: Uuid, account: &str, step: &Step) -> Result<()> {
    let resource = step.resource(account);
    store::networks::add_step(
        &mut *tx,
        id,
        step.action,
        &resource,
        step.provider_id.as_deref(),
    )
    .await?;
    Ok(())
}

/// Marks the network failed with why, and tells its team's leads and its creator.
pub(super) async fn fail(ctx: &Context, n: &Network, from: Status, why: &str) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    if store::networks::failed(&mut *tx, n.id, from.as_str(), why).await? {
        store::networks::add_step(&mut *tx, n.id, "failed", why, None).await?;
        audit::record(
            &mut tx,
            Some("switchboard"),
            None,
            None,
            "network.failed",
            "network",
            &n.id.to_string(),
            json!({ "reason": why, "before": { "status": from.as_str() }, "after": { "status": "failed" } }),
        )
        .await?;
        let notice = |name: String| PlainNotice {
            name,
            about: format!("Network {}", n.name),
            subject: "failed".into(),
            headline: format!("Switchboard could not finish the network {}:", n.name),
            lines: vec![why.to_owned()],
            footer: "Once the cause is fixed, delete the network and create it again.".into(),
            url: String::new(),
        };
        tell_team(ctx, &mut tx, n, Topic::Provisioning, notice).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Asks for a built network to be removed; the `RemoveNetwork` job removes
/// what was built, then the network. `false` when it is already on its way.
pub(super) async fn start_removal(
    tx: &mut PgConnection,
    caller: &Caller,
    n: &Network,
) -> Result<bool> {
    let from = n.status();
    if from == Status::Removing {
        return Ok(false);
    }
    if !store::networks::set_status(&mut *tx, n.id, from.as_str(), Status::Removing.as_str())
        .await?
    {
        return Err(Error::Conflict(
            "the network changed meanwhile: reload it".into(),
        ));
    }
    store::queue::enqueue(&mut *tx, &RemoveNetwork { network_id: n.id }).await?;
    audit::by(
        tx,
        caller,
        "network.removal_requested",
        "network",
        &n.id.to_string(),
        json!({ "before": { "status": from.as_str() }, "after": { "status": "removing" } }),
    )
    .await?;
    Ok(true)
}

/// Removes what was built for a network being removed, then the network
/// (its range goes back to the address plan).
#[tracing::instrument(skip_all, fields(network = %id))]
pub async fn remove(ctx: &Context, id: Uuid, last_attempt: bool) -> Result<Outcome> {
    as_only_actor_on(
        ctx,
        Leased::Network,
        id,
        "remove",
        remove_alone(ctx, id, last_attempt),
    )
    .await
}

async fn remove_alone(ctx: &Context, id: Uuid, last_attempt: bool) -> Result<Outcome> {
    let Some(n) = store::networks::find(&ctx.pool, id).await? else {
        return Ok(Outcome::Done);
    };
    if n.status() != Status::Removing {
        return Ok(Outcome::Done);
    }
    let item = item_of(&n)?;
    let account = n.provider_account_name.clone();
    let removal = Removal {
        item,
        made: n.external_id.iter().cloned().collect(),
        found: Vec::new(),
    };
    let removed = async {
        let (registry, _) = ctx
            .providers()
            .await
            .map_err(|e| ProviderError::Transient(e.to_string()))?;
        registry.get(&account)?.destroy(id, &[removal]).await
    }
    .await;
    match removed {
        Ok(steps) => {
            let mut tx = ctx.pool.begin().await?;
            let prefixes = store::pools::for_network(&mut *tx, id).await?;
            if store::networks::delete(&mut *tx, id).await? {
                audit::record(
                    &mut tx,
                    Some("switchboard"),
                    None,
                    None,
                    "network.deleted",
                    "network",
                    &id.to_string(),
                    json!({
                        "removed": steps.iter().map(|s| s.resource(&account)).collect::<Vec<_>>(),
                        "before": { "name": n.name, "team": n.team_slug, "external_id": n.external_id,
                                    "prefixes": prefixes.iter().map(|p| p.cidr.to_string()).collect::<Vec<_>>() },
                    }),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(Outcome::Done)
        }
        Err(ProviderError::Transient(why)) if !last_attempt => {
            store::networks::add_step(&ctx.pool, id, "retrying", &why, None).await?;
            Ok(Outcome::Retry(why))
        }
        Err(e) => {
            fail(
                ctx,
                &n,
                Status::Removing,
                &format!("removing it failed: {e}"),
            )
            .await?;
            Ok(Outcome::Done)
        }
    }
}

/// Tells a network's team leads and its creator (once each).
pub(super) async fn tell_team(
    ctx: &Context,
    tx: &mut PgConnection,
    n: &Network,
    topic: Topic,
    notice: impl Fn(String) -> PlainNotice,
) -> Result<()> {
    let mut told = Vec::new();
    for (user, _, _) in store::connections::leads_of(&mut *tx, &[n.team_id]).await? {
        told.push(user);
    }
    if let Some(creator) = n.created_by
        && !told.contains(&creator)
    {
        told.push(creator);
    }
    for user in told {
        tell_user(ctx, tx, topic, user, notice(String::new()), Some(n.id)).await?;
    }
    Ok(())
}

/// Emails one user (by id) unless they turned the topic off.
async fn tell_user(
    ctx: &Context,
    tx: &mut PgConnection,
    topic: Topic,
    user: Uuid,
    notice: PlainNotice,
    network: Option<Uuid>,
) -> Result<()> {
    let Some(u) = store::users::find(&mut *tx, user).await? else {
        return Ok(());
    };
    let notice = PlainNotice {
        name: u.name.clone(),
        ..notice
    };
    match network {
        Some(id) => tell(ctx, tx, topic, &u.email, notice, id).await,
        None => send(tx, topic, &u.email, notice).await,
    }
}

/// Emails one address about network `id` (its page linked).
async fn tell(
    ctx: &Context,
    tx: &mut PgConnection,
    topic: Topic,
    email: &str,
    notice: PlainNotice,
    id: Uuid,
) -> Result<()> {
    let notice = PlainNotice {
        url: ctx.settings.absolute_url(&format!("/networks/{id}")),
        ..notice
    };
    send(tx, topic, email, notice).await
}

async fn send(tx: &mut PgConnection, topic: Topic, email: &str, notice: PlainNotice) -> Result<()> {
    crate::services::monitor::send(tx, Some(topic), email, notice.compose()).await
}
