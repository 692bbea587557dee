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

/// Entries matching every filter that is set, newest first.
pub struct ListQuery<'a> {
    pub object_type: Option<&'a str>,
    pub object_id: Option<&'a str>,
    /// The actor: their email address, or the label as recorded (`system`).
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// The last one of the page before.
    pub before_id: Option<i64>,
    pub fetch: i64,
}

pub async fn list(
    db: impl PgExecutor<'_>,
    q: &ListQuery<'_>,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_events
          WHERE ($1::text IS NULL OR object_type = $1) AND ($2::text IS NULL OR object_id = $2)
            AND ($3::text IS NULL OR lower(actor_label) = lower($3) OR actor_id IN (
                SELECT id FROM users WHERE lower(email) = lower($3)))
            AND ($4::text IS NULL OR action = $4)
            AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
            AND ($7::bigint IS NULL OR id < $7)
          ORDER BY id DESC LIMIT $8",
    )
    .bind(q.object_type)
    .bind(q.object_id)
    .bind(q.actor)
    .bind(q.action)
    .bind(q.since)
    .bind(q.until)
    .bind(q.before_id)
    .bind(q.fetch)
    .fetch_all(db)
    .await
}
