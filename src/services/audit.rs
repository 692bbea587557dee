//! Writing and reading the audit log.

use sqlx::PgConnection;

use super::filter::{given, instant};
use super::{Caller, Context};
use crate::auth::policy::Action;
use crate::domain::page::{Cursor, Page, Paged};
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

/// Appends several events, each done by its caller, in one round trip.
pub async fn by_each(
    conn: &mut PgConnection,
    events: &[(&Caller, &str, &str, String, serde_json::Value)],
) -> Result<()> {
    let labels: Vec<String> = events.iter().map(|(c, ..)| c.label()).collect();
    let rows: Vec<store::audit::NewEvent<'_>> = events
        .iter()
        .zip(&labels)
        .map(
            |((caller, action, object_type, object_id, details), label)| store::audit::NewEvent {
                actor_id: Some(caller.actor.user_id),
                actor_label: label,
                action,
                object_type,
                object_id,
                details: details.clone(),
                request_id: caller.request_id.as_deref(),
            },
        )
        .collect();
    if !rows.is_empty() {
        store::audit::append_many(conn, &rows).await?;
    }
    Ok(())
}

/// What the audit log can be narrowed to, as typed.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// The audit log, newest first, a page at a time (admins).
pub async fn list(
    ctx: &Context,
    caller: &Caller,
    filter: &AuditFilter,
    page: &Page<i64>,
) -> Result<Paged<AuditEvent>> {
    caller.actor.require(Action::ViewAudit)?;
    let query = store::audit::ListQuery {
        object_type: given(&filter.object_type),
        object_id: given(&filter.object_id),
        actor: given(&filter.actor),
        action: given(&filter.action),
        since: instant("since", &filter.since)?,
        until: instant("until", &filter.until)?,
        before_id: page.after.as_ref().map(|c| c.0),
        fetch: page.fetch(),
    };
    let rows = store::audit::list(&ctx.pool, &query).await?;
    Ok(Paged::cut(rows, page.limit, |e| Cursor(e.id)))
}
