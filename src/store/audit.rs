//! The audit log: appended in the same transaction as the change it records.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

/// One entry to append.
pub struct NewEvent<'a> {
    pub actor_id: Option<Uuid>,
    pub actor_label: &'a str,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub details: serde_json::Value,
    pub request_id: Option<&'a str>,
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_label: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub details: serde_json::Value,
    pub request_id: Option<String>,
}

pub async fn append(db: impl PgExecutor<'_>, e: NewEvent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events (actor_id, actor_label, action, object_type, object_id, details, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.actor_id)
    .bind(e.actor_label)
    .bind(e.action)
    .bind(e.object_type)
    .bind(e.object_id)
    .bind(e.details)
    .bind(e.request_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Appends many entries in one statement (allocations made together).
pub async fn append_many(
    db: impl PgExecutor<'_>,
    events: &[NewEvent<'_>],
) -> Result<(), sqlx::Error> {
    let column = |f: fn(&NewEvent<'_>) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO audit_events (actor_id, actor_label, action, object_type, object_id, details, request_id)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[])",
    )
    .bind(events.iter().map(|e| e.actor_id).collect::<Vec<_>>())
    .bind(column(|e| Some(e.actor_label.to_owned())))
    .bind(column(|e| Some(e.action.to_owned())))
    .bind(column(|e| Some(e.object_type.to_owned())))
    .bind(column(|e| Some(e.object_id.to_owned())))
    .bind(events.iter().map(|e| e.details.clone()).collect::<Vec<_>>())
    .bind(column(|e| e.request_id.map(str::to_owned)))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn latest(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<AuditEvent>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_events ORDER BY at DESC, id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(db)
        .await
}
