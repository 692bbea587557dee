//! Applying an approved change of an active connection in place: what the new
//! plan adds is built first, then what it no longer has is removed, so what is
//! kept never stops (a firewall rule whose ports shrink closes only the ports
//! the new rule does not keep). The connection keeps its id, its peering and
//! its routes; its plan becomes the change's, as a new version.

use super::*;
use crate::domain::change::ports_closed;
use crate::domain::connection::parse_ports;
use crate::domain::jobs::ApplyChange;
use crate::domain::notification::Topic;
use crate::planner::build::Build;
use crate::store::changes::Change;

/// The job's work: apply the change, once, as the connection's only actor.
#[tracing::instrument(skip_all, fields(change = %change_id))]
pub async fn apply_change(ctx: &Context, change_id: Uuid, last_attempt: bool) -> Result<Outcome> {
    let Some(change) = store::changes::find(&ctx.pool, change_id).await? else {
        return Ok(Outcome::Done);
    };
    if change.status != "approved" {
        return Ok(Outcome::Done);
    }
    let id = change.connection_id;
    let outcome = as_only_actor(ctx, id, "change", apply_alone(ctx, &change, last_attempt)).await;
    match outcome {
        Err(
            e @ (Error::Invalid(_) | Error::NotFound(_) | Error::Conflict(_) | Error::Internal(_)),
        ) => {
            change_failed(ctx, &change, &format!("applying the change failed: {e}")).await?;
            Ok(Outcome::Done)
        }
        other => other,
    }
}

fn has(list: &[providers::Planned], probe: &serde_json::Value) -> bool {
    list.iter().any(|p| p.probe == *probe)
}

async fn apply_alone(ctx: &Context, change: &Change, last_attempt: bool) -> Result<Outcome> {
    let id = change.connection_id;
    let Some(c) = store::connections::find(&ctx.pool, id).await? else {
        return Ok(Outcome::Done);
    };
    let new: Plan = serde_json::from_value(change.plan.clone()).map_err(Error::internal)?;
    let old = plan_of(&c)?;
    if !matches!(c.status, Status::Active | Status::Drifted)
        || c.plan_hash != change.previous_plan_hash
    {
        // Removed or changed meanwhile: take back what an earlier run added.
        let why = if c.plan_hash != change.previous_plan_hash {
            "the connection's plan changed since the change was asked".to_owned()
        } else {
            format!("the connection is {} now", c.status.label())
        };
        if let Err(e) = take_back(ctx, id, &old, &new).await {
            return Ok(Outcome::Retry(e.to_string()));
        }
        change_failed(ctx, change, &why).await?;
        return Ok(Outcome::Done);
    }
    let work = async {
        // What is new first (what exists is found, not built twice).
        apply_all(ctx, id, &new, true, Some(&old)).await?;
        remove_gone(ctx, id, &old, &new).await
    }
    .await;
    match work {
        Ok(()) => {
            let mut tx = ctx.pool.begin().await?;
            if !store::changes::apply_to_connection(&mut *tx, change).await? {
                return Err(Error::Conflict(
                    "the connection's plan changed meanwhile".into(),
                ));
            }
            store::changes::set_status(&mut *tx, change.id, "approved", "applied", None).await?;
            let applied = store::changes::find(&mut *tx, change.id)
                .await?
                .ok_or_else(|| Error::internal("a change vanished while applied"))?;
            store::connections::add_step(
                &mut *tx,
                id,
                "changed",
                &format!("version {}: {}", applied.version, new.summary),
                None,
            )
            .await?;
            audit::record(
                &mut tx,
                Some("switchboard"),
                None,
                None,
                "connection.changed",
                "connection",
                &id.to_string(),
                json!({ "change": change.id, "version": applied.version, "difference": change.difference,
                        "before": { "plan_hash": change.previous_plan_hash }, "after": { "plan_hash": change.plan_hash } }),
            )
            .await?;
            let told = (Topic::Provisioning, "applied");
            super::super::connections::change_told(ctx, &mut tx, &applied, &new, told).await?;
            tx.commit().await?;
            observed_at_once(ctx, id).await;
            Ok(Outcome::Done)
        }
        Err(ProviderError::Transient(why)) if !last_attempt => {
            store::connections::add_step(&ctx.pool, id, "retrying", &why, None).await?;
            Ok(Outcome::Retry(why))
        }
        Err(e) => {
            // What this change added must not outlive it.
            if let Err(again) = take_back(ctx, id, &old, &new).await {
                tracing::warn!(connection = %id, error = %again, "could not take back what a failed change added");
            }
            change_failed(ctx, change, &format!("applying the change failed: {e}")).await?;
            Ok(Outcome::Done)
        }
    }
}

/// Removes every item of `old` that `new` no longer has, newest account
/// first; a firewall rule whose ports shrink closes only the ports the new
/// rule does not keep.
async fn remove_gone(
    ctx: &Context,
    id: Uuid,
    old: &Plan,
    new: &Plan,
) -> std::result::Result<(), ProviderError> {
    let (registry, _) = ctx
        .providers()
        .await
        .map_err(|e| ProviderError::Transient(e.to_string()))?;
    for account in providers::accounts_of(old).into_iter().rev() {
        let after = providers::planned_in(new, &account)?;
        let mut gone = Vec::new();
        for mut p in providers::planned_in(old, &account)? {
            if has(&after, &p.probe) {
                continue;
            }
            if let Some(closed) = still_open(&p.item.build, &after) {
                if closed.is_empty() {
                    continue;
                }
                if let Build::FirewallRule { ports, .. } = &mut p.item.build {
                    *ports = closed;
                }
            }
            gone.push(p);
        }
        if gone.is_empty() {
            continue;
        }
        let provider = registry.get(&account)?;
        let removals = super::removal::removals_of(ctx, id, gone, &account, provider.shares())
            .await
            .map_err(|e| ProviderError::Transient(e.to_string()))?;
        let steps = provider.destroy(id, &removals).await?;
        for step in steps {
            record(ctx, id, &account, &step).await?;
        }
    }
    Ok(())
}

/// For an old firewall rule that a new rule of the same network, source and
/// protocol replaces: the ports only the old one opened ("" when the new one
/// keeps them all). `None` for anything else (removed whole).
fn still_open(old: &Build, after: &[providers::Planned]) -> Option<String> {
    let Build::FirewallRule {
        network,
        allow_from,
        protocol,
        ports,
        ..
    } = old
    else {
        return None;
    };
    let replacing = after.iter().find_map(|p| match &p.item.build {
        Build::FirewallRule {
            network: n,
            allow_from: a,
            protocol: pr,
            ports: new_ports,
            ..
        } if n == network && a == allow_from && pr == protocol => Some(new_ports.clone()),
        _ => None,
    })?;
    let (Ok(old_ports), Ok(new_ports)) = (parse_ports(ports), parse_ports(&replacing)) else {
        return None;
    };
    // "all ports" parses as no range: the new rule keeps everything or nothing.
    if new_ports.is_empty() {
        return Some(String::new());
    }
    if old_ports.is_empty() {
        return None;
    }
    Some(
        ports_closed(&old_ports, &new_ports)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Removes what `new` added over `old` (a change that cannot be applied).
async fn take_back(
    ctx: &Context,
    id: Uuid,
    old: &Plan,
    new: &Plan,
) -> std::result::Result<(), ProviderError> {
    remove_gone(ctx, id, new, old).await
}

/// Marks a change failed with why; the asker hears of it. The connection
/// stays as it was.
async fn change_failed(ctx: &Context, change: &Change, why: &str) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    if store::changes::set_status(&mut *tx, change.id, "approved", "failed", Some(why)).await? {
        store::connections::add_step(&mut *tx, change.connection_id, "failed", why, None).await?;
        audit::record(
            &mut tx,
            Some("switchboard"),
            None,
            None,
            "connection.change_failed",
            "connection",
            &change.connection_id.to_string(),
            json!({ "change": change.id, "reason": why }),
        )
        .await?;
        let plan: Plan = serde_json::from_value(change.plan.clone()).map_err(Error::internal)?;
        let told = (Topic::Provisioning, format!("failed: {why}"));
        super::super::connections::change_told(ctx, &mut tx, change, &plan, (told.0, &told.1))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Queues the application of an approved change, in the caller's transaction.
pub(in crate::services) async fn queue_change(
    tx: &mut PgConnection,
    change_id: Uuid,
) -> Result<()> {
    store::queue::enqueue(tx, &ApplyChange { change_id }).await?;
    Ok(())
}

/// Approved changes whose job was lost are given a new one; those whose job
/// used up its attempts are failed (taking back what they added). Returns
/// (given a new job, failed).
pub async fn resume_unattended_changes(ctx: &Context) -> Result<(usize, usize)> {
    use crate::domain::jobs::Job;
    let (mut requeued, mut failed) = (0, 0);
    for change in store::changes::approved(&ctx.pool, 100).await? {
        let last =
            store::queue::last_job(&ctx.pool, ApplyChange::QUEUE, "change_id", change.id).await?;
        match &last {
            Some((status, attempts, max, _))
                if store::queue::job_alive(status, *attempts, *max) => {}
            Some((status, attempts, max, _))
                if matches!(status.as_str(), "Failed" | "Killed") && attempts >= max =>
            {
                let c = store::connections::find(&ctx.pool, change.connection_id).await?;
                if let Some(c) = c
                    && let (Ok(old), Ok(new)) = (
                        plan_of(&c),
                        serde_json::from_value::<Plan>(change.plan.clone()),
                    )
                    && let Err(e) = take_back(ctx, c.id, &old, &new).await
                {
                    tracing::warn!(change = %change.id, error = %e, "could not take back what a change added; trying again later");
                    continue;
                }
                change_failed(
                    ctx,
                    &change,
                    &format!("the workers gave up after {attempts} attempts"),
                )
                .await?;
                failed += 1;
            }
            _ => {
                let mut tx = ctx.pool.begin().await?;
                store::queue::enqueue_unless_waiting(
                    &mut tx,
                    &ApplyChange {
                        change_id: change.id,
                    },
                )
                .await?;
                tx.commit().await?;
                requeued += 1;
            }
        }
    }
    Ok((requeued, failed))
}
