//! Leads decide: approve (the last approval enqueues provisioning once), reject
//! with a comment; the requester may cancel while nothing is built.

use super::*;
use crate::services::guardrails;

fn refused(r: connection::Refused) -> Error {
    Error::Conflict(r.0)
}

/// A lead consents for their team's side. `seen_plan_hash` is the plan the lead
/// looked at; when the plan differs now, nothing is approved and they are told.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn approve(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    comment: &str,
    seen_plan_hash: Option<&str>,
) -> Result<ConnectionView> {
    let mut tx = ctx.pool.begin().await?;
    let (c, sides, status, permit) = locked(&mut tx, caller, id, ConnectionAction::Approve).await?;
    let teams = permit.teams();
    if let Some(seen) = seen_plan_hash.map(str::trim).filter(|s| !s.is_empty())
        && seen != c.plan_hash
    {
        return Err(Error::Conflict(
            "the plan changed since you opened this request: review the new plan and approve again"
                .into(),
        ));
    }
    // The plan consented to must be the plan that would be built now.
    let old: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
    let new = replan(&mut tx, &c).await?;
    if new.hash() != c.plan_hash {
        let difference = old.difference(&new);
        store::connections::replace_plan(
            &mut tx,
            id,
            &serde_json::to_value(&new).map_err(Error::internal)?,
            &new.hash(),
        )
        .await?;
        audit::by(&mut tx, caller, "connection.replanned", "connection", &id.to_string(), json!({ "before": { "plan_hash": c.plan_hash }, "after": { "plan_hash": new.hash() }, "difference": difference })).await?;
        tx.commit().await?;
        return Err(Error::Conflict(format!(
            "the networks changed since this was requested, so the plan changed and every approval must be given again: {}",
            difference.join("; ")
        )));
    }
    // The guardrails in force now decide, not those of the day it was asked;
    // the plan shows their verdicts as of this approval.
    guardrails::refused_now(&new.guardrails, "this request cannot be approved")?;
    if new.guardrails != old.guardrails {
        store::connections::set_guardrail_verdicts(
            &mut *tx,
            id,
            &serde_json::to_value(&new.guardrails).map_err(Error::internal)?,
        )
        .await?;
    }
    // A rule saved since the request may ask one more team to consent.
    guardrails::ask_approvers(ctx, caller, &mut tx, &c, &new).await?;
    store::connections::decide(
        &mut *tx,
        id,
        teams,
        "approved",
        caller.actor.user_id,
        &c.plan_hash,
        comment.trim(),
    )
    .await?;
    let undecided = store::connections::sides(&mut *tx, id)
        .await?
        .iter()
        .filter(|s| s.decision.is_none())
        .count();
    let to = connection::transition(
        status,
        Event::Approve {
            all_sides: undecided == 0,
        },
    )
    .map_err(refused)?;
    if to != status {
        if !store::connections::set_status(&mut *tx, id, status, to).await? {
            return Err(Error::Conflict(
                "the request changed meanwhile: reload it".into(),
            ));
        }
        // Consent is complete: provisioning starts, exactly once, with this commit.
        store::queue::enqueue(
            &mut tx,
            &Provision {
                connection_id: id,
                plan_hash: c.plan_hash.clone(),
            },
        )
        .await?;
    }
    audit::by(&mut tx, caller, "connection.approved", "connection", &id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() }, "teams": sides.iter().filter(|s| teams.contains(&s.team_id)).map(|s| s.team_slug.clone()).collect::<Vec<_>>(), "plan_hash": c.plan_hash, "comment": comment.trim() })).await?;
    if to == Status::Approved {
        notify(
            ctx,
            &mut tx,
            &c.requester_email,
            &c.requester_name,
            Notice::Approved,
            &c,
            &old,
        )
        .await?;
    }
    tx.commit().await?;
    get(ctx, caller, id).await
}

#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn reject(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    comment: &str,
) -> Result<ConnectionView> {
    let comment = comment.trim();
    if comment.is_empty() {
        return Err(Error::invalid(
            "comment",
            "is required: tell the requester why",
        ));
    }
    let mut tx = ctx.pool.begin().await?;
    let (c, _, status, permit) = locked(&mut tx, caller, id, ConnectionAction::Reject).await?;
    let teams = permit.teams();
    let to = connection::transition(status, Event::Reject).map_err(refused)?;
    store::connections::decide(
        &mut *tx,
        id,
        teams,
        "rejected",
        caller.actor.user_id,
        &c.plan_hash,
        comment,
    )
    .await?;
    if !store::connections::set_status(&mut *tx, id, status, to).await? {
        return Err(Error::Conflict(
            "the request changed meanwhile: reload it".into(),
        ));
    }
    audit::by(&mut tx, caller, "connection.rejected", "connection", &id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() }, "comment": comment })).await?;
    let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
    notify(
        ctx,
        &mut tx,
        &c.requester_email,
        &c.requester_name,
        Notice::Rejected(comment.to_owned()),
        &c,
        &plan,
    )
    .await?;
    tx.commit().await?;
    get(ctx, caller, id).await
}

/// The requester (or an admin) withdraws a request not yet being built.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn cancel(ctx: &Context, caller: &Caller, id: Uuid) -> Result<ConnectionView> {
    let mut tx = ctx.pool.begin().await?;
    let (_, _, status, _) = locked(&mut tx, caller, id, ConnectionAction::Cancel).await?;
    let to = connection::transition(status, Event::Cancel).map_err(refused)?;
    if !store::connections::set_status(&mut *tx, id, status, to).await? {
        return Err(Error::Conflict(
            "the request changed meanwhile: reload it".into(),
        ));
    }
    audit::by(
        &mut tx,
        caller,
        "connection.cancelled",
        "connection",
        &id.to_string(),
        json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() } }),
    )
    .await?;
    tx.commit().await?;
    get(ctx, caller, id).await
}
