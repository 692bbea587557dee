//! Changes of active connections, their sides' decisions, and the versions
//! they make once applied.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct Change {
    pub id: Uuid,
    pub connection_id: Uuid,
    /// The connection's version it made once applied (the request itself is
    /// version 1); 0 until then.
    pub version: i32,
    pub requested_by: Uuid,
    pub requester_name: String,
    pub requester_email: String,
    pub spec: serde_json::Value,
    pub plan: serde_json::Value,
    pub plan_hash: String,
    pub previous_plan_hash: String,
    pub difference: serde_json::Value,
    /// same | narrower | wider
    pub scope: String,
    /// pending | approved | applied | rejected | failed
    pub status: String,
    pub failure: Option<String>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
    /// What the connection is now, in words.
    pub connection_summary: Option<String>,
}

const SELECT: &str = "SELECT ch.*, u.name AS requester_name, u.email AS requester_email,
            c.plan->>'summary' AS connection_summary
       FROM connection_changes ch JOIN users u ON u.id = ch.requested_by
       JOIN connections c ON c.id = ch.connection_id";

pub struct NewChange<'a> {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub requested_by: Uuid,
    pub spec: &'a serde_json::Value,
    pub plan: &'a serde_json::Value,
    pub plan_hash: &'a str,
    pub previous_plan_hash: &'a str,
    pub difference: &'a serde_json::Value,
    pub scope: &'a str,
    pub status: &'a str,
}

/// `false` when another change of the connection is still open.
pub async fn insert(db: impl PgExecutor<'_>, c: NewChange<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO connection_changes (id, connection_id, version, requested_by, spec, plan, plan_hash,
                                         previous_plan_hash, difference, scope, status)
         VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT DO NOTHING",
    )
    .bind(c.id)
    .bind(c.connection_id)
    .bind(c.requested_by)
    .bind(c.spec)
    .bind(c.plan)
    .bind(c.plan_hash)
    .bind(c.previous_plan_hash)
    .bind(c.difference)
    .bind(c.scope)
    .bind(c.status)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Change>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE ch.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Change>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ch.id = $1 FOR UPDATE OF ch"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The connection's changes, newest first.
pub async fn of_connection(
    db: impl PgExecutor<'_>,
    connection_id: Uuid,
) -> Result<Vec<Change>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ch.connection_id = $1 ORDER BY ch.created_at DESC, ch.id LIMIT 100"
    )))
    .bind(connection_id)
    .fetch_all(db)
    .await
}

/// Moves a change from `from` to `to` (with a failure or comment); `false`
/// when it was no longer in `from`.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &str,
    to: &str,
    note: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connection_changes ch SET status = $3,
                failure = CASE WHEN $3 = 'failed' THEN $4 ELSE ch.failure END,
                comment = CASE WHEN $3 = 'rejected' THEN coalesce($4, '') ELSE ch.comment END,
                applied_at = CASE WHEN $3 = 'applied' THEN now() ELSE ch.applied_at END,
                version = CASE WHEN $3 = 'applied' THEN 2 + (
                    SELECT count(*) FROM connection_changes o
                     WHERE o.connection_id = ch.connection_id AND o.status = 'applied')::int
                    ELSE ch.version END
          WHERE ch.id = $1 AND ch.status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(note)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sides that must consent to a change that lets more through.
pub async fn add_sides(
    db: impl PgExecutor<'_>,
    id: Uuid,
    teams: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO change_sides (change_id, team_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(teams)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct ChangeSide {
    pub change_id: Uuid,
    pub team_id: Uuid,
    pub team_slug: String,
    pub decision: Option<String>,
    pub decided_by_name: Option<String>,
}

/// The sides of these changes, in one query, by change and team.
pub async fn sides(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<Vec<ChangeSide>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.change_id, s.team_id, t.slug AS team_slug, s.decision, u.name AS decided_by_name
           FROM change_sides s JOIN teams t ON t.id = s.team_id
           LEFT JOIN users u ON u.id = s.decided_by
          WHERE s.change_id = ANY($1) ORDER BY s.change_id, t.slug",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Records a lead's decision for the undecided sides among `teams`.
pub async fn decide(
    db: impl PgExecutor<'_>,
    id: Uuid,
    teams: &[Uuid],
    decision: &str,
    by: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE change_sides SET decision = $3, decided_by = $4, decided_at = now()
          WHERE change_id = $1 AND team_id = ANY($2) AND decision IS NULL",
    )
    .bind(id)
    .bind(teams)
    .bind(decision)
    .bind(by)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Replaces what the connection asks for and its plan with the change's, if
/// its plan is still the one the change was made from.
pub async fn apply_to_connection(db: impl PgExecutor<'_>, c: &Change) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connections SET spec = $2, plan = $3, plan_hash = $4,
                reason = coalesce($2->>'reason', reason), updated_at = now()
          WHERE id = $1 AND plan_hash = $5",
    )
    .bind(c.connection_id)
    .bind(&c.spec)
    .bind(&c.plan)
    .bind(&c.plan_hash)
    .bind(&c.previous_plan_hash)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Changes approved and not yet applied, oldest first.
pub async fn approved(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<Change>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ch.status = 'approved' ORDER BY ch.created_at LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Changes waiting for this user: they lead an undecided side and did not ask.
pub async fn awaiting_lead(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<Change>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ch.status = 'pending' AND ch.requested_by <> $1 AND EXISTS (
             SELECT 1 FROM change_sides s
               JOIN memberships m ON m.team_id = s.team_id AND m.user_id = $1 AND m.role = 'lead'
              WHERE s.change_id = ch.id AND s.decision IS NULL)
         ORDER BY ch.created_at LIMIT 100"
    )))
    .bind(user_id)
    .fetch_all(db)
    .await
}
