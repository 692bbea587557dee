//! The development outbox.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::domain::email::Email;

#[derive(Debug, Clone, FromRow)]
pub struct OutboxEmail {
    pub id: Uuid,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: DateTime<Utc>,
}

/// Stores a message once: a retried job with the same email id changes nothing.
pub async fn insert(pool: &PgPool, email: &Email) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox_emails (id, to_address, subject, text_body, html_body)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(email.id)
    .bind(email.to.as_str())
    .bind(&email.subject)
    .bind(&email.text)
    .bind(&email.html)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn latest(pool: &PgPool, limit: i64) -> Result<Vec<OutboxEmail>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM outbox_emails ORDER BY created_at DESC, id LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<OutboxEmail>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM outbox_emails WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Deletes outbox messages older than `days`; how many.
pub async fn prune(db: impl sqlx::PgExecutor<'_>, days: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM outbox_emails WHERE created_at < now() - make_interval(days => $1::int)",
    )
    .bind(days)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
