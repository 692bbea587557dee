//! Renewing: keeping a connection past its expiry, within the maximum of its
//! provider accounts, decided by a lead of the requester's team alone. Whoever
//! may decide gets it at once; anyone else's renewal waits for that lead. An
//! earlier expiry narrows what was approved: it applies at once, for anyone
//! who may renew.

use super::*;
use crate::domain::renewal;
use crate::store::renewals::{NewRenewal, Renewal};

/// In words, as pages and emails say a time.
fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The longest renewal of a connection, in days: the smallest maximum among
/// the accounts its plan builds in.
async fn max_days(tx: &mut PgConnection, plan: &Plan) -> Result<i64> {
    let names = providers::accounts_of(plan);
    let accounts = store::provider_accounts::list(&mut *tx).await?;
    Ok(renewal::max_days(
        accounts
            .iter()
            .filter(|a| names.contains(&a.name))
            .map(|a| {
                a.setting(renewal::MAX_DAYS_SETTING)
                    .and_then(|t| t.parse().ok())
            }),
    ))
}

/// Asks to keep connection `id` until `expires_in_hours` from now.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn renew(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    expires_in_hours: Option<i64>,
    comment: &str,
) -> Result<Renewal> {
    let mut tx = ctx.pool.begin().await?;
    let (c, sides, status, _) = locked(&mut tx, caller, id, ConnectionAction::Renew).await?;
    let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
    let previous = renewal::renewable(status, c.expires_at).map_err(Error::Conflict)?;
    let max = max_days(&mut tx, &plan).await?;
    let mut errors = Vec::new();
    let wanted = match expires_in_hours {
        None => {
            errors.push(FieldError::new(
                "expires_in_hours",
                format!("is required: for how many hours from now (at most {max} days)"),
            ));
            None
        }
        Some(hours) => renewal::new_expiry(Utc::now(), previous, hours, max)
            .map_err(|e| errors.push(e))
            .ok(),
    };
    if comment.chars().count() > 2000 {
        errors.push(FieldError::new(
            "comment",
            "must be at most 2000 characters",
        ));
    }
    let (Some(wanted), true) = (wanted, errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    let until = wanted.at();
    let asked = NewRenewal {
        id: Uuid::new_v4(),
        connection_id: id,
        requested_by: caller.actor.user_id,
        previous_expiry: previous,
        expires_at: until,
        comment: comment.trim().to_owned(),
    };
    let before = json!({ "expires_at": previous });
    let narrows = matches!(wanted, renewal::NewExpiry::Earlier(_));
    let at_once = narrows || may(caller, ConnectionAction::DecideRenewal, &c, &sides).is_ok();
    let recorded = store::renewals::insert(&mut *tx, &asked, at_once).await?;
    if at_once {
        store::renewals::extend(&mut *tx, id, until).await?;
        audit::by(&mut tx, caller, "connection.renewed", "connection", &id.to_string(), json!({ "before": before, "after": { "expires_at": until }, "renewal": asked.id, "decided_at_once": true, "earlier": narrows })).await?;
    } else {
        if !recorded {
            return Err(Error::Conflict(
                "a renewal of this connection already waits for a lead's decision".into(),
            ));
        }
        audit::by(
            &mut tx,
            caller,
            "renewal.asked",
            "connection",
            &id.to_string(),
            json!({ "renewal": asked.id, "before": before, "after": { "expires_at": until } }),
        )
        .await?;
        let facts = side_facts(&sides);
        let deciding: Vec<Uuid> = policy::renewal_sides(&facts)
            .iter()
            .map(|s| s.team_id)
            .collect();
        for (_, email, name) in store::connections::leads_of(&mut *tx, &deciding).await? {
            notify(
                ctx,
                &mut tx,
                &email,
                &name,
                Notice::RenewalAsked {
                    asked_by: caller.actor.name.clone(),
                    until: when(until),
                },
                &c,
                &plan,
            )
            .await?;
        }
    }
    tx.commit().await?;
    store::renewals::find(&ctx.pool, asked.id)
        .await?
        .ok_or_else(|| Error::internal("a renewal vanished after it was recorded"))
}

/// A lead of the requester's team approves or rejects a waiting renewal.
#[tracing::instrument(skip_all, fields(renewal = %renewal_id))]
pub async fn decide_renewal(
    ctx: &Context,
    caller: &Caller,
    renewal_id: Uuid,
    approve: bool,
    comment: &str,
) -> Result<Renewal> {
    let not_found = || Error::NotFound("that renewal".into());
    let mut tx = ctx.pool.begin().await?;
    let r = store::renewals::find(&mut *tx, renewal_id)
        .await?
        .ok_or_else(not_found)?;
    let (c, _, status, _) = locked(
        &mut tx,
        caller,
        r.connection_id,
        ConnectionAction::DecideRenewal,
    )
    .await
    .map_err(|e| match e {
        Error::NotFound(_) => not_found(),
        e => e,
    })?;
    if r.status != "pending" {
        return Err(Error::Conflict(format!(
            "this renewal was already {}",
            r.status
        )));
    }
    let comment = comment.trim();
    if !approve && comment.is_empty() {
        return Err(Error::invalid(
            "comment",
            "is required: say why, the person who asked reads it",
        ));
    }
    if comment.chars().count() > 2000 {
        return Err(Error::invalid("comment", "must be at most 2000 characters"));
    }
    if approve && (status.is_final() || status == Status::Failed) {
        return Err(Error::Conflict(format!(
            "the connection is {} now, so it cannot be renewed",
            status.label()
        )));
    }
    let verdict = if approve { "approved" } else { "rejected" };
    if !store::renewals::decide(&mut *tx, r.id, verdict, caller.actor.user_id, comment).await? {
        return Err(Error::Conflict(
            "this renewal was decided a moment ago".into(),
        ));
    }
    let before = json!({ "expires_at": c.expires_at });
    // An expiry already later (renewed since) is kept.
    let until = c
        .expires_at
        .map_or(r.expires_at, |now| now.max(r.expires_at));
    if approve {
        store::renewals::extend(&mut *tx, c.id, until).await?;
        audit::by(&mut tx, caller, "connection.renewed", "connection", &c.id.to_string(), json!({ "before": before, "after": { "expires_at": until }, "renewal": r.id, "comment": comment })).await?;
    } else {
        audit::by(
            &mut tx,
            caller,
            "renewal.rejected",
            "connection",
            &c.id.to_string(),
            json!({ "renewal": r.id, "comment": comment }),
        )
        .await?;
    }
    // The email says the new expiry when approved, the unchanged one (`c`'s) when not.
    let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
    notify(
        ctx,
        &mut tx,
        &r.requester_email,
        &r.requester_name,
        Notice::RenewalDecided {
            approved: approve,
            decided_by: caller.actor.name.clone(),
            comment: comment.to_owned(),
            until: when(until),
        },
        &c,
        &plan,
    )
    .await?;
    tx.commit().await?;
    store::renewals::find(&ctx.pool, r.id)
        .await?
        .ok_or_else(not_found)
}

/// A connection's renewals, newest first, for whoever may see it.
pub async fn renewals(ctx: &Context, caller: &Caller, id: Uuid) -> Result<Vec<Renewal>> {
    get(ctx, caller, id).await?;
    Ok(store::renewals::of_connection(&ctx.pool, id).await?)
}

/// What the renew page shows: the connection, the longest renewal it allows
/// (days), and its renewals, newest first.
pub async fn renewal_page(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
) -> Result<(ConnectionView, i64, Vec<Renewal>)> {
    let view = get(ctx, caller, id).await?;
    let mut conn = ctx.pool.acquire().await?;
    let max = max_days(&mut conn, &view.plan).await?;
    let renewals = store::renewals::of_connection(&mut *conn, id).await?;
    Ok((view, max, renewals))
}

/// One renewal, for whoever may see its connection.
pub async fn renewal(ctx: &Context, caller: &Caller, id: Uuid) -> Result<Renewal> {
    let not_found = || Error::NotFound("that renewal".into());
    let r = store::renewals::find(&ctx.pool, id)
        .await?
        .ok_or_else(not_found)?;
    get(ctx, caller, r.connection_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => not_found(),
            e => e,
        })?;
    Ok(r)
}

/// Renewals waiting for this person's decision, oldest first.
pub async fn renewals_waiting(ctx: &Context, caller: &Caller) -> Result<Vec<Renewal>> {
    Ok(store::renewals::awaiting_lead(&ctx.pool, caller.actor.user_id).await?)
}
