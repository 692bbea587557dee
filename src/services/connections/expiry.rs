//! Requests and connections that expire: reminded first, then ended or removed.

use super::*;

/// Connections whose time ran out: those not built yet end as `expired` (the
/// requester is told); built ones are removed (the removal email follows).
#[tracing::instrument(skip_all)]
pub async fn expire_due(ctx: &Context) -> Result<usize> {
    let mut tx = ctx.pool.begin().await?;
    let due = store::connections::lock_expired(&mut tx, 100).await?;
    let mut expired = 0;
    for c in &due {
        let status = c.status;
        // Built ones are removed; the others simply end.
        if let Ok(to) = connection::transition(status, Event::Deprovision) {
            if store::connections::set_status(&mut *tx, c.id, status, to).await? {
                audit::record(&mut tx, Some("switchboard"), None, None, "connection.expired", "connection", &c.id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() } })).await?;
                store::queue::enqueue(
                    &mut tx,
                    &crate::domain::jobs::Deprovision {
                        connection_id: c.id,
                    },
                )
                .await?;
                expired += 1;
            }
            continue;
        }
        let Ok(to) = connection::transition(status, Event::Expire) else {
            continue;
        };
        if store::connections::set_status(&mut *tx, c.id, status, to).await? {
            audit::record(&mut tx, Some("switchboard"), None, None, "connection.expired", "connection", &c.id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() } })).await?;
            let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
            notify(
                ctx,
                &mut tx,
                &c.requester_email,
                &c.requester_name,
                Notice::Expired,
                c,
                &plan,
            )
            .await?;
            expired += 1;
        }
    }
    tx.commit().await?;
    Ok(expired)
}

/// Reminds requesters of connections that expire within the configured window.
#[tracing::instrument(skip_all)]
pub async fn remind_expiring(ctx: &Context) -> Result<usize> {
    let mut tx = ctx.pool.begin().await?;
    let due =
        store::connections::lock_due_reminders(&mut tx, ctx.settings.expiry_reminder_hours, 100)
            .await?;
    for c in &due {
        let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
        notify(
            ctx,
            &mut tx,
            &c.requester_email,
            &c.requester_name,
            Notice::Expiring,
            c,
            &plan,
        )
        .await?;
        store::connections::mark_reminded(&mut *tx, c.id).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}
