//! Connection requests and the consent of each side's team.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::connection::Status;

#[derive(Debug, Clone, FromRow)]
pub struct Connection {
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub requested_by: Uuid,
    pub requester_email: String,
    pub requester_name: String,
    pub reason: String,
    pub spec: serde_json::Value,
    pub plan: serde_json::Value,
    pub plan_hash: String,
    pub desired_state: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// account | notify | auto: what happens when it drifts.
    pub repair: String,
    /// matches | differs | unknown, since when, and the differences (or why unknown).
    pub observed_state: Option<String>,
    pub observed_since: Option<DateTime<Utc>>,
    pub observed_detail: serde_json::Value,
}

const SELECT: &str = "SELECT c.*, u.email AS requester_email, u.name AS requester_name
    FROM connections c JOIN users u ON u.id = c.requested_by";

/// A team that must consent, and what its lead decided.
#[derive(Debug, Clone, FromRow)]
pub struct Side {
    pub connection_id: Uuid,
    pub team_id: Uuid,
    pub team_slug: String,
    pub decision: Option<String>,
    pub decided_by: Option<Uuid>,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub plan_hash: Option<String>,
    pub comment: String,
}

pub struct NewConnection<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub requested_by: Uuid,
    pub reason: &'a str,
    pub spec: &'a serde_json::Value,
    pub plan: &'a serde_json::Value,
    pub plan_hash: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    c: NewConnection<'_>,
    sides: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connections (id, kind, status, requested_by, reason, spec, plan, plan_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(c.id)
    .bind(c.kind)
    .bind(Status::PendingApproval.as_str())
    .bind(c.requested_by)
    .bind(c.reason)
    .bind(c.spec)
    .bind(c.plan)
    .bind(c.plan_hash)
    .bind(c.expires_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO connection_sides (connection_id, team_id) SELECT $1, unnest($2::uuid[])",
    )
    .bind(c.id)
    .bind(sides)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE c.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Locks the connection for a decision: concurrent approvals queue up behind it.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE c.id = $1 FOR UPDATE OF c"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Moves the status only if it is still `from`: `false` when someone else moved it.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: Status,
    to: Status,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connections SET status = $3, updated_at = now() WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A new plan replaces the old one; every consent given to the old one lapses.
pub async fn replace_plan(
    conn: &mut PgConnection,
    id: Uuid,
    plan: &serde_json::Value,
    plan_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET plan = $2, plan_hash = $3, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(plan)
    .bind(plan_hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE connection_sides SET decision = NULL, decided_by = NULL, decided_at = NULL, plan_hash = NULL
         WHERE connection_id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn sides(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Side>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.*, t.slug AS team_slug, u.name AS decided_by_name
         FROM connection_sides s JOIN teams t ON t.id = s.team_id
         LEFT JOIN users u ON u.id = s.decided_by
         WHERE s.connection_id = $1 ORDER BY t.slug",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Records a lead's decision for the sides of the given teams still undecided.
pub async fn decide(
    db: impl PgExecutor<'_>,
    id: Uuid,
    teams: &[Uuid],
    decision: &str,
    by: Uuid,
    plan_hash: &str,
    comment: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE connection_sides SET decision = $3, decided_by = $4, decided_at = now(), plan_hash = $5, comment = $6
         WHERE connection_id = $1 AND team_id = ANY($2) AND decision IS NULL",
    )
    .bind(id)
    .bind(teams)
    .bind(decision)
    .bind(by)
    .bind(plan_hash)
    .bind(comment)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Connections a user may see: theirs, their teams', or all of them for admins.
pub async fn visible_to(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    all: bool,
    status: Option<&str>,
) -> Result<Vec<Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($2 OR c.requested_by = $1 OR EXISTS (
             SELECT 1 FROM connection_sides s JOIN memberships m ON m.team_id = s.team_id
             WHERE s.connection_id = c.id AND m.user_id = $1))
           AND ($3::text IS NULL OR c.status = $3)
         ORDER BY c.created_at DESC LIMIT 500"
    )))
    .bind(user_id)
    .bind(all)
    .bind(status)
    .fetch_all(db)
    .await
}

/// Pending requests waiting for a decision from a team this user leads, not their own.
pub async fn awaiting_lead(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE c.status = 'pending_approval' AND c.requested_by <> $1 AND EXISTS (
             SELECT 1 FROM connection_sides s JOIN memberships m ON m.team_id = s.team_id
             WHERE s.connection_id = c.id AND s.decision IS NULL AND m.user_id = $1 AND m.role = 'lead')
         ORDER BY c.created_at"
    )))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Leads of the given teams (who must approve), with their addresses.
pub async fn leads_of(
    db: impl PgExecutor<'_>,
    teams: &[Uuid],
) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT u.id, u.email, u.name FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.team_id = ANY($1) AND m.role = 'lead' ORDER BY u.email",
    )
    .bind(teams)
    .fetch_all(db)
    .await
}

/// Connections whose time is up and that still exist or wait, locked for the sweep.
pub async fn lock_expired(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE c.expires_at <= now()
           AND c.status IN ('pending_approval', 'approved', 'active', 'drifted', 'failed')
         ORDER BY c.expires_at LIMIT $1 FOR UPDATE OF c SKIP LOCKED"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Live connections expiring within `hours` whose owners were not reminded yet.
pub async fn lock_due_reminders(
    conn: &mut PgConnection,
    hours: i64,
    limit: i64,
) -> Result<Vec<Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE c.reminded_at IS NULL AND c.expires_at > now()
           AND c.expires_at <= now() + make_interval(hours => $1::int)
           AND c.status IN ('pending_approval', 'approved', 'provisioning', 'active', 'drifted')
         ORDER BY c.expires_at LIMIT $2 FOR UPDATE OF c SKIP LOCKED"
    )))
    .bind(hours)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn mark_reminded(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE connections SET reminded_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// The audit trail of one connection, oldest first.
pub async fn events(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<crate::store::audit::AuditEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_events WHERE object_type = 'connection' AND object_id = $1 ORDER BY at, id",
    )
    .bind(id.to_string())
    .fetch_all(db)
    .await
}

/// One step provisioning took, as shown on the connection's page.
#[derive(Debug, Clone, FromRow)]
pub struct StepRow {
    pub at: DateTime<Utc>,
    pub action: String,
    pub resource: String,
    pub provider_id: Option<String>,
}

pub async fn add_step(
    db: impl PgExecutor<'_>,
    id: Uuid,
    action: &str,
    resource: &str,
    provider_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connection_steps (connection_id, action, resource, provider_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(action)
    .bind(resource)
    .bind(provider_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Another connection holding resources whose plan contains `probe` (a plan
/// entry), if any.
pub async fn needed_by_another(
    db: impl PgExecutor<'_>,
    id: Uuid,
    probe: &serde_json::Value,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM connections
          WHERE id <> $1 AND status IN ('provisioning', 'active', 'drifted', 'failed')
            AND plan @> $2
          LIMIT 1",
    )
    .bind(id)
    .bind(probe)
    .fetch_optional(db)
    .await
}

/// The provider ids Switchboard recorded making for `resource` (by any connection).
pub async fn made_for(db: impl PgExecutor<'_>, resource: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT provider_id FROM connection_steps
          WHERE action = 'created' AND resource = $1 AND provider_id IS NOT NULL",
    )
    .bind(resource)
    .fetch_all(db)
    .await
}

pub async fn steps(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<StepRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, action, resource, provider_id FROM connection_steps WHERE connection_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Records why it failed (or clears it), in words for the user.
pub async fn set_failure(
    db: impl PgExecutor<'_>,
    id: Uuid,
    failure: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE connections SET failure = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(failure)
        .execute(db)
        .await?;
    Ok(())
}
