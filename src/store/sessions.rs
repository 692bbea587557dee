//! Browser sessions, keyed by the SHA-256 of the cookie value.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub login_state: Option<String>,
    pub login_nonce: Option<String>,
    pub login_return_to: Option<String>,
    pub login_started_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    id_hash: &[u8],
    user_id: Option<Uuid>,
    expires_at: DateTime<Utc>,
    user_agent: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, expires_at, user_agent) VALUES ($1, $2, $3, $4)",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(expires_at)
    .bind(user_agent.map(|ua| ua.chars().take(200).collect::<String>()))
    .execute(db)
    .await?;
    Ok(())
}

/// A live session: not revoked, not past its absolute expiry, not idle too long.
pub async fn find_live(
    db: impl PgExecutor<'_>,
    id_hash: &[u8],
    idle_seconds: i64,
) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id_hash, user_id, created_at, last_seen_at, expires_at, login_state, login_nonce,
                login_return_to, login_started_at, user_agent
         FROM sessions
         WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > now()
           AND last_seen_at > now() - make_interval(secs => $2)",
    )
    .bind(id_hash)
    .bind(idle_seconds as f64)
    .fetch_optional(db)
    .await
}

/// Marks activity, at most once a minute per session to spare the database;
/// a request never waits for another one's mark (a page's parallel requests).
pub async fn touch(db: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET last_seen_at = now()
         WHERE id_hash = (SELECT id_hash FROM sessions
                           WHERE id_hash = $1 AND last_seen_at < now() - interval '1 minute'
                           FOR UPDATE SKIP LOCKED)",
    )
    .bind(id_hash)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn begin_login(
    db: impl PgExecutor<'_>,
    id_hash: &[u8],
    state: &str,
    nonce: &str,
    return_to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET login_state = $2, login_nonce = $3, login_return_to = $4,
                login_started_at = now()
         WHERE id_hash = $1",
    )
    .bind(id_hash)
    .bind(state)
    .bind(nonce)
    .bind(return_to)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes the pending sign-in of this session if `state` matches, exactly once:
/// a replayed or forged callback finds nothing.
pub async fn take_login(
    db: impl PgExecutor<'_>,
    id_hash: &[u8],
    state: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE sessions s SET login_state = NULL, login_nonce = NULL, login_return_to = NULL,
                login_started_at = NULL
         FROM (SELECT id_hash, login_nonce, login_return_to FROM sessions
               WHERE id_hash = $1 AND login_state = $2
                 AND login_started_at > now() - interval '10 minutes'
               FOR UPDATE) old
         WHERE s.id_hash = old.id_hash
         RETURNING old.login_nonce, coalesce(old.login_return_to, '/')",
    )
    .bind(id_hash)
    .bind(state)
    .fetch_optional(db)
    .await
}

pub async fn revoke(db: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL")
        .bind(id_hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn revoke_all_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Live sessions per user, for every user that has any (one query).
pub async fn live_counts(
    db: impl PgExecutor<'_>,
) -> Result<std::collections::HashMap<Uuid, i64>, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT user_id, count(*) FROM sessions
         WHERE user_id IS NOT NULL AND revoked_at IS NULL AND expires_at > now()
         GROUP BY user_id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Deletes sessions nobody can use any more: revoked, past their absolute expiry,
/// or idle longer than the limit. Returns how many.
pub async fn delete_dead(db: impl PgExecutor<'_>, idle_seconds: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM sessions
         WHERE revoked_at IS NOT NULL OR expires_at <= now()
            OR last_seen_at <= now() - make_interval(secs => $1)",
    )
    .bind(idle_seconds as f64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
