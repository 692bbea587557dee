//! Making approved connections real, and removing them. The jobs call these; each
//! call is safe to repeat after a crash at any point: providers find what an
//! earlier attempt built, and every status change is guarded by the expected one.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::connections::{Notice, notify, replan};
use super::{Caller, Context, audit};
use crate::domain::connection::{self, Event, Status};
use crate::domain::jobs::{Deprovision, Provision};
use crate::domain::team::Role;
use crate::error::{Error, Result};
use crate::planner::Plan;
use crate::providers::{self, ProviderError, Registry, Step};
use crate::store::{self, connections::Connection};

/// What a job should do after a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing more to do for this job.
    Done,
    /// A transient failure: run the job again later.
    Retry(String),
}

fn plan_of(c: &Connection) -> Result<Plan> {
    serde_json::from_value(c.plan.clone()).map_err(Error::internal)
}

fn status_of(c: &Connection) -> Result<Status> {
    Status::parse(&c.status).ok_or_else(|| Error::internal("unknown status"))
}

/// Moves a locked connection, guarded by its status; audited as the system.
async fn move_to(
    tx: &mut PgConnection,
    c: &Connection,
    from: Status,
    event: Event,
    action: &str,
    details: serde_json::Value,
) -> Result<Status> {
    let to = connection::transition(from, event).map_err(|r| Error::Conflict(r.0))?;
    if !store::connections::set_status(&mut *tx, c.id, from, to).await? {
        return Err(Error::Conflict("the connection changed meanwhile".into()));
    }
    let mut details = details;
    details["before"] = json!({ "status": from.as_str() });
    details["after"] = json!({ "status": to.as_str() });
    audit::record(
        tx,
        Some("switchboard"),
        None,
        None,
        action,
        "connection",
        &c.id.to_string(),
        details,
    )
    .await?;
    Ok(to)
}

/// Everyone to tell about a failure: the requester and the leads of each side.
async fn involved(tx: &mut PgConnection, c: &Connection) -> Result<Vec<(String, String)>> {
    let teams: Vec<Uuid> = store::connections::sides(&mut *tx, c.id)
        .await?
        .iter()
        .map(|s| s.team_id)
        .collect();
    let mut people = vec![(c.requester_email.clone(), c.requester_name.clone())];
    for (_, email, name) in store::connections::leads_of(&mut *tx, &teams).await? {
        if !people.iter().any(|(e, _)| *e == email) {
            people.push((email, name));
        }
    }
    Ok(people)
}

/// Builds an approved connection's plan, exactly the approved one.
pub async fn provision(
    ctx: &Context,
    id: Uuid,
    approved_hash: &str,
    last_attempt: bool,
) -> Result<Outcome> {
    let mut tx = ctx.pool.begin().await?;
    let Some(c) = store::connections::lock(&mut tx, id).await? else {
        return Ok(Outcome::Done);
    };
    let plan = plan_of(&c)?;
    match status_of(&c)? {
        Status::Approved if c.plan_hash == approved_hash => {
            // Re-plan: what is built must be what was approved.
            let now = replan(&mut tx, &c).await?;
            if now.hash() != c.plan_hash {
                let difference = plan.difference(&now);
                move_to(
                    &mut tx,
                    &c,
                    Status::Approved,
                    Event::PlanChanged,
                    "connection.replanned",
                    json!({ "difference": difference }),
                )
                .await?;
                store::connections::replace_plan(
                    &mut tx,
                    id,
                    &serde_json::to_value(&now).map_err(Error::internal)?,
                    &now.hash(),
                )
                .await?;
                let teams: Vec<Uuid> = store::connections::sides(&mut *tx, id)
                    .await?
                    .iter()
                    .map(|s| s.team_id)
                    .collect();
                for (_, email, name) in store::connections::leads_of(&mut *tx, &teams).await? {
                    notify(
                        ctx,
                        &mut tx,
                        &email,
                        &name,
                        Notice::ApprovalNeeded,
                        &c,
                        &now,
                    )
                    .await?;
                }
                tx.commit().await?;
                return Ok(Outcome::Done);
            }
            move_to(
                &mut tx,
                &c,
                Status::Approved,
                Event::StartProvisioning,
                "connection.provisioning",
                json!({ "plan_hash": c.plan_hash }),
            )
            .await?;
            store::connections::set_failure(&mut *tx, id, None).await?;
            tx.commit().await?;
        }
        // A retry, or a worker that died half-way: carry on where it stopped.
        Status::Provisioning if c.plan_hash == approved_hash => tx.commit().await?,
        // Cancelled, re-planned, already built…: this job has nothing to do.
        _ => return Ok(Outcome::Done),
    }

    let built = apply_all(ctx, id, &plan, true).await;
    finish(
        ctx,
        id,
        &plan,
        built,
        last_attempt,
        Event::Provisioned,
        "connection.active",
        Notice::Active,
    )
    .await
}

/// Applies every item of the plan, account by account in the plan's order,
/// recording each step (or, unless `found_too`, each one that changed
/// something). What an item hands over (a cloud VPN's tunnels) is added to the
/// params of the items after it, in memory only.
async fn apply_all(
    ctx: &Context,
    id: Uuid,
    plan: &Plan,
    found_too: bool,
) -> Result<(), ProviderError> {
    let accounts = store::provider_accounts::list(&ctx.pool)
        .await
        .map_err(|e| ProviderError::Transient(e.to_string()))?;
    let registry = Registry::build(&ctx.pool, &accounts);
    let mut handed = BTreeMap::new();
    for account in providers::accounts_of(plan) {
        let provider = registry.get(&account)?;
        for mut item in providers::items_in(plan, &account) {
            item.params.extend(handed.clone());
            let step = provider.apply(id, &item).await?;
            handed.extend(step.handoff.0.clone());
            if found_too || step.action != "found" {
                record(ctx, id, &account, &step).await?;
            }
        }
    }
    Ok(())
}

/// Records what a provider did, as a step shown on the connection's page.
async fn record(ctx: &Context, id: Uuid, account: &str, step: &Step) -> Result<(), ProviderError> {
    let resource = step.item.resource(account);
    store::connections::add_step(
        &ctx.pool,
        id,
        step.action,
        &resource,
        step.provider_id.as_deref(),
    )
    .await
    .map_err(|e| ProviderError::Transient(e.to_string()))
}

/// Ends a job's run: when the providers are done, `event` moves the connection on
/// and the requester hears of it; a transient failure asks for another run; any
/// other failure (or the last attempt's) marks it failed.
#[allow(clippy::too_many_arguments)]
async fn finish(
    ctx: &Context,
    id: Uuid,
    plan: &Plan,
    work: std::result::Result<(), ProviderError>,
    last_attempt: bool,
    event: Event,
    action: &str,
    notice: Notice,
) -> Result<Outcome> {
    match work {
        Ok(()) => {
            let mut tx = ctx.pool.begin().await?;
            if let Some(c) = store::connections::lock(&mut tx, id).await? {
                let from = status_of(&c)?;
                if connection::transition(from, event).is_ok() {
                    move_to(&mut tx, &c, from, event, action, json!({})).await?;
                    if event == Event::Deprovisioned {
                        store::monitoring::close_drift(&mut tx, id, "removed").await?;
                    }
                    notify(
                        ctx,
                        &mut tx,
                        &c.requester_email,
                        &c.requester_name,
                        notice,
                        &c,
                        plan,
                    )
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(Outcome::Done)
        }
        Err(ProviderError::Transient(why)) if !last_attempt => {
            store::connections::add_step(&ctx.pool, id, "retrying", &why, None).await?;
            Ok(Outcome::Retry(why))
        }
        Err(e) => {
            fail(ctx, id, &e.to_string()).await?;
            Ok(Outcome::Done)
        }
    }
}

/// Marks a connection being built or removed as failed, and tells everyone involved.
async fn fail(ctx: &Context, id: Uuid, why: &str) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let Some(c) = store::connections::lock(&mut tx, id).await? else {
        return Ok(());
    };
    let from = status_of(&c)?;
    if connection::transition(from, Event::Fail).is_err() {
        return Ok(());
    }
    store::connections::add_step(&mut *tx, id, "failed", why, None).await?;
    store::connections::set_failure(&mut *tx, id, Some(why)).await?;
    move_to(
        &mut tx,
        &c,
        from,
        Event::Fail,
        "connection.failed",
        json!({ "reason": why }),
    )
    .await?;
    let plan = plan_of(&c)?;
    for (email, name) in involved(&mut tx, &c).await? {
        notify(
            ctx,
            &mut tx,
            &email,
            &name,
            Notice::Failed(why.to_owned()),
            &c,
            &plan,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Asks for a connection to be removed (or a failed one to be cleaned up): the
/// requester, a lead of either side, or an admin.
pub async fn remove(ctx: &Context, caller: &Caller, id: Uuid) -> Result<()> {
    let (mut tx, _) = change(
        ctx,
        caller,
        id,
        Event::Deprovision,
        true,
        "connection.removal_requested",
    )
    .await?;
    store::queue::enqueue(&mut tx, &Deprovision { connection_id: id }).await?;
    tx.commit().await?;
    Ok(())
}

/// A person's change to a connection, on a transaction the caller commits: who
/// may not see it gets a 404; the others need to lead a side (or, when
/// `requester_may`, to have asked for it) or be an admin.
async fn change(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    event: Event,
    requester_may: bool,
    action: &str,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Connection)> {
    let mut tx = ctx.pool.begin().await?;
    let c = store::connections::lock(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that connection".into()))?;
    let sides = store::connections::sides(&mut *tx, id).await?;
    let requester = c.requested_by == caller.actor.user_id;
    let role = |lead_only: bool| {
        sides.iter().any(|s| match caller.actor.role_in(s.team_id) {
            Some(r) => !lead_only || r == Role::Lead,
            None => false,
        })
    };
    if !role(false) && !requester && !caller.actor.is_admin {
        return Err(Error::NotFound("that connection".into()));
    }
    let allowed = role(true) || (requester_may && requester) || caller.actor.is_admin;
    if !allowed {
        return Err(Error::Forbidden);
    }
    let from = status_of(&c)?;
    let to = connection::transition(from, event).map_err(|r| Error::Conflict(r.0))?;
    if !store::connections::set_status(&mut *tx, id, from, to).await? {
        return Err(Error::Conflict(
            "the connection changed meanwhile: reload it".into(),
        ));
    }
    audit::by(
        &mut tx,
        caller,
        action,
        "connection",
        &id.to_string(),
        json!({ "before": { "status": from.as_str() }, "after": { "status": to.as_str() } }),
    )
    .await?;
    Ok((tx, c))
}

/// Removes everything the connection built, newest first.
pub async fn deprovision(ctx: &Context, id: Uuid, last_attempt: bool) -> Result<Outcome> {
    let Some(c) = store::connections::find(&ctx.pool, id).await? else {
        return Ok(Outcome::Done);
    };
    if status_of(&c)? != Status::Deprovisioning {
        return Ok(Outcome::Done);
    }
    let plan = plan_of(&c)?;
    let accounts = store::provider_accounts::list(&ctx.pool).await?;
    let registry = Registry::build(&ctx.pool, &accounts);
    let removed = async {
        for account in providers::accounts_of(&plan).into_iter().rev() {
            // An account no module serves built nothing: there is nothing to remove.
            let Ok(provider) = registry.get(&account) else {
                continue;
            };
            let removals = removals(ctx, id, &plan, &account, provider.shares())
                .await
                .map_err(|e| ProviderError::Transient(e.to_string()))?;
            for step in provider.destroy(id, &removals).await? {
                record(ctx, id, &account, &step).await?;
            }
        }
        Ok::<(), ProviderError>(())
    }
    .await;
    finish(
        ctx,
        id,
        &plan,
        removed,
        last_attempt,
        Event::Deprovisioned,
        "connection.removed",
        Notice::Removed,
    )
    .await
}

/// What to remove of a connection in `account`: what another connection still
/// needs is kept (and said so), and each item carries the ids Switchboard made
/// for it, so nothing Switchboard only found is removed.
async fn removals(
    ctx: &Context,
    id: Uuid,
    plan: &Plan,
    account: &str,
    shared: bool,
) -> Result<Vec<providers::Removal>> {
    let mut removals = Vec::new();
    for planned in providers::planned_in(plan, account) {
        let resource = planned.item.resource(account);
        if shared
            && let Some(other) =
                store::connections::needed_by_another(&ctx.pool, id, &planned.probe).await?
        {
            let kept = format!("{resource}, still needed by connection {other}");
            store::connections::add_step(&ctx.pool, id, "kept", &kept, None).await?;
            continue;
        }
        removals.push(providers::Removal {
            made: store::connections::made_for(&ctx.pool, &resource).await?,
            item: planned.item,
        });
    }
    Ok(removals)
}

/// Puts a connection back as approved (auto-repair, or a lead's "repair now"):
/// every item is applied again, which makes what is missing and restores what
/// changed. The next sweep of the monitor sees whether it matches again.
pub async fn repair(ctx: &Context, id: Uuid, last_attempt: bool) -> Result<Outcome> {
    let Some(c) = store::connections::find(&ctx.pool, id).await? else {
        return Ok(Outcome::Done);
    };
    if !matches!(status_of(&c)?, Status::Active | Status::Drifted) {
        return Ok(Outcome::Done);
    }
    let plan = plan_of(&c)?;
    // Only what changed is worth a line on the page.
    match apply_all(ctx, id, &plan, false).await {
        Ok(()) => Ok(Outcome::Done),
        Err(ProviderError::Transient(why)) if !last_attempt => Ok(Outcome::Retry(why)),
        Err(e) => {
            let why = format!("repair failed: {e}");
            store::connections::add_step(&ctx.pool, id, "failed", &why, None).await?;
            Ok(Outcome::Done)
        }
    }
}

/// A lead of either side (or an admin) tries a failed connection again.
pub async fn retry(ctx: &Context, caller: &Caller, id: Uuid) -> Result<()> {
    let (mut tx, c) = change(ctx, caller, id, Event::Retry, false, "connection.retried").await?;
    let job = Provision {
        connection_id: id,
        plan_hash: c.plan_hash,
    };
    store::queue::enqueue(&mut tx, &job).await?;
    tx.commit().await?;
    Ok(())
}
