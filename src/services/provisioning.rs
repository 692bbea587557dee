//! Making approved connections real, and removing them. The jobs call these; each
//! call is safe to repeat after a crash at any point: providers find what an
//! earlier attempt built, and every status change is guarded by the expected one.

use serde_json::json;
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use super::connections::{Notice, notify, replan};
use super::{Caller, Context, audit};
use crate::auth::policy::ConnectionAction;
use crate::domain::connection::{self, Event, Status};
use crate::domain::jobs::{Deprovision, Provision};
use crate::error::{Error, Result};
use crate::planner::Plan;
use crate::providers::{self, ProviderError, Step};
use crate::store::{self, connections::Connection};

mod change;
mod removal;
mod unattended;

pub(in crate::services) use change::queue_change;
pub use change::{apply_change, resume_unattended_changes};
pub use removal::deprovision;
pub use unattended::{Resumed, resume_unattended};

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

/// How long an actor's lease on a connection lasts unless renewed: three
/// worker heartbeats, as long as a silent worker keeps its jobs, so a worker
/// that dies holds the connection no longer than it holds its job.
fn lease_seconds(ctx: &Context) -> f64 {
    3.0 * ctx.settings.worker_heartbeat_seconds.max(1) as f64
}

/// What a lease is on: a connection, or a network Switchboard builds.
#[derive(Clone, Copy, Debug)]
pub(in crate::services) enum Leased {
    Connection,
    Network,
}

impl Leased {
    async fn take(
        self,
        pool: &sqlx::PgPool,
        id: Uuid,
        holder: &str,
        what: &str,
        seconds: f64,
    ) -> Result<bool> {
        Ok(match self {
            Leased::Connection => {
                store::connections::take_lease(pool, id, holder, what, seconds).await?
            }
            Leased::Network => store::networks::take_lease(pool, id, holder, seconds).await?,
        })
    }

    async fn release(self, pool: &sqlx::PgPool, id: Uuid, holder: &str) -> Result<()> {
        match self {
            Leased::Connection => store::connections::release_lease(pool, id, holder).await?,
            Leased::Network => store::networks::release_lease(pool, id, holder).await?,
        }
        Ok(())
    }
}

/// The right to act on one connection (or network): builds, repairs and
/// removals of one never overlap. Renewed in the background while held;
/// given back by `release`, or lapsing by itself if the worker dies.
struct Lease {
    on: Leased,
    id: Uuid,
    holder: String,
    renewing: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Waits for the connection to be free: at most a little longer than a
    /// lease lasts, so a dead holder's lease runs out meanwhile.
    async fn take(ctx: &Context, on: Leased, id: Uuid, what: &str) -> Result<Option<Lease>> {
        let holder = format!("{what} {}", Uuid::new_v4());
        let seconds = lease_seconds(ctx);
        let wait = std::time::Duration::from_secs_f64(seconds + 5.0);
        let started = std::time::Instant::now();
        while !on.take(&ctx.pool, id, &holder, what, seconds).await? {
            if started.elapsed() > wait {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let (pool, renewer, what) = (ctx.pool.clone(), holder.clone(), what.to_owned());
        let renewing = tokio::spawn(async move {
            let every = std::time::Duration::from_secs_f64(seconds / 3.0);
            loop {
                tokio::time::sleep(every).await;
                match on.take(&pool, id, &renewer, &what, seconds).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(id = %id, on = ?on, "lost the lease while acting on it")
                    }
                    Err(e) => {
                        tracing::warn!(id = %id, on = ?on, error = %e, "could not renew a lease")
                    }
                }
            }
        });
        Ok(Some(Lease {
            on,
            id,
            holder,
            renewing,
        }))
    }

    async fn release(self, ctx: &Context) {
        self.renewing.abort();
        if let Err(e) = self.on.release(&ctx.pool, self.id, &self.holder).await {
            tracing::warn!(id = %self.id, error = %e, "could not give the lease back; it lapses by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewing.abort();
    }
}

/// Runs `work` as the connection's only actor; when another one is at work on
/// it for longer than the wait, asks for the job to run again later.
async fn as_only_actor<F>(ctx: &Context, id: Uuid, what: &str, work: F) -> Result<Outcome>
where
    F: std::future::Future<Output = Result<Outcome>>,
{
    as_only_actor_on(ctx, Leased::Connection, id, what, work).await
}

/// Runs `work` as the only actor on a connection or a network.
pub(in crate::services) async fn as_only_actor_on<F>(
    ctx: &Context,
    on: Leased,
    id: Uuid,
    what: &str,
    work: F,
) -> Result<Outcome>
where
    F: std::future::Future<Output = Result<Outcome>>,
{
    let Some(lease) = Lease::take(ctx, on, id, what).await? else {
        return Ok(Outcome::Retry(format!(
            "another worker is still acting on {on:?} {id}"
        )));
    };
    let outcome = work.await;
    lease.release(ctx).await;
    outcome
}

/// Builds an approved connection's plan, exactly the approved one.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn provision(
    ctx: &Context,
    id: Uuid,
    approved_hash: &str,
    last_attempt: bool,
) -> Result<Outcome> {
    let outcome = as_only_actor(
        ctx,
        id,
        "provision",
        provision_alone(ctx, id, approved_hash, last_attempt),
    )
    .await;
    let outcome = ended_visibly(ctx, id, outcome, "building it failed").await?;
    if outcome == Outcome::Done {
        observed_at_once(ctx, id).await;
    }
    Ok(outcome)
}

/// What exists is observed right after a build or a repair, so the status and
/// the connection's page follow within seconds, not at the next sweep. A failure
/// here is the monitor's to retry: the build itself is done.
async fn observed_at_once(ctx: &Context, id: Uuid) {
    if let Err(e) = super::monitor::observe_now(ctx, id).await {
        tracing::warn!(connection = %id, error = %e, "could not observe the connection at once; the next sweep will");
    }
}

/// A job's error that trying again cannot fix (the request no longer plans, a
/// stored plan that cannot be read) marks the connection failed with the reason,
/// and everyone involved hears of it; the database's own errors are retried.
async fn ended_visibly(
    ctx: &Context,
    id: Uuid,
    outcome: Result<Outcome>,
    what: &str,
) -> Result<Outcome> {
    match outcome {
        Err(
            e @ (Error::Invalid(_)
            | Error::NotFound(_)
            | Error::Conflict(_)
            | Error::BadRequest(_)
            | Error::Internal(_)),
        ) => {
            let why = format!("{what}: {}", e);
            tracing::warn!(connection = %id, error = %e, "a job cannot go on: the connection is failed");
            fail(ctx, id, &why).await?;
            Ok(Outcome::Done)
        }
        other => other,
    }
}

async fn provision_alone(
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
    match c.status {
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
            // A rule saved since the last approval may refuse it now: built
            // it is not, and everyone involved hears why.
            super::guardrails::refused_now(&now.guardrails, "the guardrails in force refuse it")?;
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

    let built = apply_all(ctx, id, &plan, true, None).await;
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

/// Applies every item of the plan (but those `built` already has: a change
/// builds only its difference), account by account in the plan's order,
/// recording each step (or, unless `found_too`, each one that changed
/// something). What an item hands over (a cloud VPN's tunnels) is added to the
/// items after it, in memory only.
async fn apply_all(
    ctx: &Context,
    id: Uuid,
    plan: &Plan,
    found_too: bool,
    built: Option<&Plan>,
) -> Result<(), ProviderError> {
    let (registry, _) = ctx
        .providers()
        .await
        .map_err(|e| ProviderError::Transient(e.to_string()))?;
    let mut handed = providers::Handoff::default();
    for account in providers::accounts_of(plan) {
        let provider = registry.get(&account)?;
        let before = match built {
            Some(built) => providers::planned_in(built, &account)?,
            None => Vec::new(),
        };
        for planned in providers::planned_in(plan, &account)? {
            if before.iter().any(|b| b.probe == planned.probe) {
                continue;
            }
            let mut item = planned.item;
            handed.give_to(&mut item);
            let step = provider
                .apply(id, &item)
                .instrument(tracing::info_span!("provider.apply", %account, item = %item.name))
                .await?;
            handed.tunnels.extend(step.handoff.tunnels.iter().cloned());
            if found_too || step.action != "found" {
                record(ctx, id, &account, &step).await?;
            }
        }
    }
    Ok(())
}

/// Records what a provider did, as a step shown on the connection's page.
async fn record(ctx: &Context, id: Uuid, account: &str, step: &Step) -> Result<(), ProviderError> {
    let resource = step.resource(account);
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
                let from = c.status;
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
    let from = c.status;
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
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn remove(ctx: &Context, caller: &Caller, id: Uuid) -> Result<()> {
    let (mut tx, _) = change(
        ctx,
        caller,
        id,
        ConnectionAction::Remove,
        Event::Deprovision,
        "connection.removal_requested",
    )
    .await?;
    store::queue::enqueue(&mut tx, &Deprovision { connection_id: id }).await?;
    tx.commit().await?;
    Ok(())
}

/// A person's change to a connection, on a transaction the caller commits,
/// once the policy allowed `action` (404 for who may not see it, 403 saying
/// who may for the others).
async fn change(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    action: ConnectionAction,
    event: Event,
    audit_action: &str,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Connection)> {
    let mut tx = ctx.pool.begin().await?;
    let (c, _, _, _permit) = super::connections::locked(&mut tx, caller, id, action).await?;
    let from = c.status;
    let to = connection::transition(from, event).map_err(|r| Error::Conflict(r.0))?;
    if !store::connections::set_status(&mut *tx, id, from, to).await? {
        return Err(Error::Conflict(
            "the connection changed meanwhile: reload it".into(),
        ));
    }
    audit::by(
        &mut tx,
        caller,
        audit_action,
        "connection",
        &id.to_string(),
        json!({ "before": { "status": from.as_str() }, "after": { "status": to.as_str() } }),
    )
    .await?;
    Ok((tx, c))
}

/// Puts a connection back as approved (auto-repair, or a lead's "repair now"):
/// every item is applied again, which makes what is missing and restores what
/// changed. The next sweep of the monitor sees whether it matches again.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn repair(ctx: &Context, id: Uuid, last_attempt: bool) -> Result<Outcome> {
    match as_only_actor(ctx, id, "repair", repair_alone(ctx, id, last_attempt)).await {
        // A repair that cannot be done leaves the connection as the monitor saw
        // it (drifted), and says why on its page.
        Err(
            e @ (Error::Invalid(_) | Error::NotFound(_) | Error::Conflict(_) | Error::Internal(_)),
        ) => {
            let why = format!("repair failed: {e}");
            store::connections::add_step(&ctx.pool, id, "failed", &why, None).await?;
            Ok(Outcome::Done)
        }
        other => other,
    }
}

async fn repair_alone(ctx: &Context, id: Uuid, last_attempt: bool) -> Result<Outcome> {
    let Some(c) = store::connections::find(&ctx.pool, id).await? else {
        return Ok(Outcome::Done);
    };
    if !matches!(c.status, Status::Active | Status::Drifted) {
        return Ok(Outcome::Done);
    }
    let plan = plan_of(&c)?;
    // Only what changed is worth a line on the page.
    match apply_all(ctx, id, &plan, false, None).await {
        Ok(()) => {
            observed_at_once(ctx, id).await;
            Ok(Outcome::Done)
        }
        Err(ProviderError::Transient(why)) if !last_attempt => Ok(Outcome::Retry(why)),
        Err(e) => {
            let why = format!("repair failed: {e}");
            store::connections::add_step(&ctx.pool, id, "failed", &why, None).await?;
            Ok(Outcome::Done)
        }
    }
}

/// A lead of either side (or an admin) tries a failed connection again.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn retry(ctx: &Context, caller: &Caller, id: Uuid) -> Result<()> {
    let (mut tx, c) = change(
        ctx,
        caller,
        id,
        ConnectionAction::Retry,
        Event::Retry,
        "connection.retried",
    )
    .await?;
    let job = Provision {
        connection_id: id,
        plan_hash: c.plan_hash,
    };
    store::queue::enqueue(&mut tx, &job).await?;
    tx.commit().await?;
    Ok(())
}
