//! Keys of creating requests and what each made.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// What an earlier request under this key was and made.
#[derive(Debug, sqlx::FromRow)]
pub struct Earlier {
    pub operation: String,
    pub fingerprint: String,
    pub object_id: Uuid,
}

pub async fn find(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    key: &str,
) -> Result<Option<Earlier>, sqlx::Error> {
    sqlx::query_as(
        "SELECT operation, fingerprint, object_id FROM idempotent_requests
          WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(db)
    .await
}

/// False when another request under the same key got there first.
pub async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    operation: &str,
    fingerprint: &str,
    object_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO idempotent_requests (user_id, key, operation, fingerprint, object_id)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(key)
    .bind(operation)
    .bind(fingerprint)
    .bind(object_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets keys older than the retention (housekeeping).
pub async fn prune(db: impl PgExecutor<'_>, hours: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotent_requests WHERE created_at < now() - make_interval(hours => $1::int)",
    )
    .bind(hours)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
