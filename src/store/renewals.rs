//! Asking to keep a connection longer, and the lead's decision.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct Renewal {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub requested_by: Uuid,
    pub requester_name: String,
    pub requester_email: String,
    pub previous_expiry: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// pending | approved | rejected
    pub status: String,
    pub decided_by: Option<Uuid>,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    /// What the connection is, in words.
    pub connection_summary: Option<String>,
}

const SELECT: &str = "SELECT r.*, u.name AS requester_name, u.email AS requester_email,
            d.name AS decided_by_name, c.plan->>'summary' AS connection_summary
       FROM connection_renewals r JOIN users u ON u.id = r.requested_by
       JOIN connections c ON c.id = r.connection_id
       LEFT JOIN users d ON d.id = r.decided_by";

/// Pending renewals this user decides: they lead a side whose team the
/// connection's requester is in (or any side, when the requester is in none).
pub async fn awaiting_lead(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<Renewal>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.status = 'pending' AND EXISTS (
             SELECT 1 FROM connection_sides s
               JOIN memberships lead ON lead.team_id = s.team_id AND lead.user_id = $1 AND lead.role = 'lead'
              WHERE s.connection_id = r.connection_id
                AND (EXISTS (SELECT 1 FROM memberships m WHERE m.team_id = s.team_id AND m.user_id = c.requested_by)
                     OR NOT EXISTS (SELECT 1 FROM connection_sides s2 JOIN memberships m2 ON m2.team_id = s2.team_id
                                     WHERE s2.connection_id = r.connection_id AND m2.user_id = c.requested_by)))
         ORDER BY r.created_at LIMIT 100"
    )))
    .bind(user_id)
    .fetch_all(db)
    .await
}

pub struct NewRenewal {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub requested_by: Uuid,
    pub previous_expiry: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub comment: String,
}

/// Records a renewal: pending, or approved at once by its asker (`decided`).
/// `false` when a pending one already waits for this connection.
pub async fn insert(
    db: impl PgExecutor<'_>,
    r: &NewRenewal,
    decided: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO connection_renewals (id, connection_id, requested_by, previous_expiry, expires_at, comment,
                                          status, decided_by, decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN 'approved' ELSE 'pending' END,
                 CASE WHEN $7 THEN $3 END, CASE WHEN $7 THEN now() END)
         ON CONFLICT (connection_id) WHERE status = 'pending' DO NOTHING",
    )
    .bind(r.id)
    .bind(r.connection_id)
    .bind(r.requested_by)
    .bind(r.previous_expiry)
    .bind(r.expires_at)
    .bind(&r.comment)
    .bind(decided)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Renewal>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE r.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A connection's renewals, newest first.
pub async fn of_connection(
    db: impl PgExecutor<'_>,
    connection_id: Uuid,
) -> Result<Vec<Renewal>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.connection_id = $1 ORDER BY r.created_at DESC, r.id LIMIT 100"
    )))
    .bind(connection_id)
    .fetch_all(db)
    .await
}

/// Decides a pending renewal; `false` when it was no longer pending (decided
/// by someone else a moment before).
pub async fn decide(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: &str,
    decided_by: Uuid,
    comment: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connection_renewals
            SET status = $2, decided_by = $3, decided_at = now(),
                comment = CASE WHEN $4 = '' THEN comment ELSE $4 END
          WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(decided_by)
    .bind(comment)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The connection keeps its new expiry, and will be reminded again before it.
pub async fn extend(
    db: impl PgExecutor<'_>,
    connection_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET expires_at = $2, reminded_at = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(connection_id)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}
