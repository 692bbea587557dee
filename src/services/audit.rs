//! Writing and reading the audit log.

use sqlx::PgConnection;

use super::{Caller, Context};
use crate::auth::policy::Action;
use crate::error::Result;
use crate::store::{self, audit::AuditEvent};

/// Appends an event on the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    conn: &mut PgConnection,
    actor_label: Option<&str>,
    actor_id: Option<uuid::Uuid>,
    request_id: Option<&str>,
    action: &str,
    object_type: &str,
    object_id: &str,
    details: serde_json::Value,
) -> Result<()> {
    store::audit::append(
        conn,
        store::audit::NewEvent {
            actor_id,
            actor_label: actor_label.unwrap_or("system"),
            action,
            object_type,
            object_id,
            details,
            request_id,
        },
    )
    .await?;
    Ok(())
}

/// Appends an event done by `caller`.
pub async fn by(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    object_type: &str,
    object_id: &str,
    details: serde_json::Value,
) -> Result<()> {
    record(
        conn,
        Some(&caller.label()),
        Some(caller.actor.user_id),
        caller.request_id.as_deref(),
        action,
        object_type,
        object_id,
        details,
    )
    .await
}

pub async fn latest(ctx: &Context, caller: &Caller, limit: i64) -> Result<Vec<AuditEvent>> {
    caller.actor.require(Action::ViewAudit)?;
    Ok(store::audit::latest(&ctx.pool, limit.clamp(1, 1000)).await?)
}
