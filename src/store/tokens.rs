//! Personal API tokens (hashes only).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    pub name: String,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at";

pub async fn insert(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    name: &str,
    secret_hash: &[u8],
    prefix: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<ApiToken, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_tokens (id, user_id, name, secret_hash, prefix, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(name)
    .bind(secret_hash)
    .bind(prefix)
    .bind(expires_at)
    .fetch_one(db)
    .await
}

pub async fn list_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<ApiToken>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY revoked_at IS NOT NULL, created_at DESC"
    )))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// The owner of a usable token (not revoked, not expired); records the use at
/// most once a minute, so scripts hammering the API do not queue on one row.
pub async fn authenticate(
    db: &sqlx::PgPool,
    secret_hash: &[u8],
) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    let found: Option<(Uuid, Uuid, bool)> = sqlx::query_as(
        "SELECT id, user_id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
         FROM api_tokens
         WHERE secret_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(secret_hash)
    .fetch_optional(db)
    .await?;
    let Some((id, user_id, stale)) = found else {
        return Ok(None);
    };
    // "Last used" is a hint: a request never waits for another one's update of it.
    if stale {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = now()
             WHERE id = (SELECT id FROM api_tokens
                          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                          FOR UPDATE SKIP LOCKED)",
        )
        .bind(id)
        .execute(db)
        .await?;
    }
    let found = Some((id, user_id));
    Ok(found)
}

/// Revokes one of `user_id`'s tokens; `None` when no such token is theirs.
pub async fn revoke(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<ApiToken>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}
