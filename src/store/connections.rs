//! Connection requests and the consent of each side's team.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::connection::{Kind, Status};

#[derive(Debug, Clone, FromRow)]
pub struct Connection {
    pub id: Uuid,
    pub kind: Kind,
    pub status: Status,
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
    /// When the monitor last proved the approved traffic passes, and how.
    pub verified_at: Option<DateTime<Utc>>,
    pub verified: Option<String>,
    pub observed_detail: serde_json::Value,
}

impl Connection {
    /// The plan's one-line summary, as pages list the connection.
    pub fn summary(&self) -> &str {
        self.plan
            .get("summary")
            .and_then(|s| s.as_str())
            .unwrap_or("a connection")
    }

    /// The first difference the monitor found, if it recorded any (a detail
    /// that is not a list of differences has none to show).
    pub fn first_difference(&self) -> Option<String> {
        serde_json::from_value::<Vec<String>>(self.observed_detail.clone())
            .ok()?
            .into_iter()
            .next()
    }
}

/// Every column of a connection with its requester, for queries elsewhere in the store.
pub(super) const SELECT: &str = "SELECT c.*, u.email AS requester_email, u.name AS requester_name
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
    /// The requester is a member of this side's team: its leads renew alone.
    pub requester_member: bool,
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

/// The guardrails' verdicts shown in a plan: outside its hash, so the
/// approvals given stand.
pub async fn set_guardrail_verdicts(
    db: impl PgExecutor<'_>,
    id: Uuid,
    verdicts: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE connections SET plan = jsonb_set(plan, '{guardrails}', $2) WHERE id = $1")
        .bind(id)
        .bind(verdicts)
        .execute(db)
        .await?;
    Ok(())
}

/// A team asked to approve a waiting request too (none is taken away).
pub async fn add_side(db: impl PgExecutor<'_>, id: Uuid, team: Uuid) -> Result<bool, sqlx::Error> {
    let added = sqlx::query(
        "INSERT INTO connection_sides (connection_id, team_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(team)
    .execute(db)
    .await?;
    Ok(added.rows_affected() == 1)
}

pub async fn sides(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Side>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.*, t.slug AS team_slug, u.name AS decided_by_name,
                EXISTS (SELECT 1 FROM connections c JOIN memberships m ON m.user_id = c.requested_by
                         WHERE c.id = s.connection_id AND m.team_id = s.team_id) AS requester_member
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

/// A page of connections a user may see, narrowed by what is given.
pub struct ListQuery<'a> {
    pub user_id: Uuid,
    /// Admins see every connection.
    pub all: bool,
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub team: Option<&'a str>,
    pub network: Option<Uuid>,
    pub requested_by: Option<&'a str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// The last one of the page before: (created_at, id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub fetch: i64,
}

/// Connections a user may see (theirs, their teams', or all for admins),
/// newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    q: &ListQuery<'_>,
) -> Result<Vec<Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($2 OR c.requested_by = $1 OR EXISTS (
             SELECT 1 FROM connection_sides s JOIN memberships m ON m.team_id = s.team_id
             WHERE s.connection_id = c.id AND m.user_id = $1))
           AND ($3::text IS NULL OR c.status = $3)
           AND ($4::text IS NULL OR c.kind = $4)
           AND ($5::text IS NULL OR EXISTS (
               SELECT 1 FROM connection_sides s JOIN teams t ON t.id = s.team_id
               WHERE s.connection_id = c.id AND t.slug = $5))
           AND ($6::uuid IS NULL OR c.spec->>'source_network_id' = $6::text
                OR c.spec->>'destination_network_id' = $6::text)
           AND ($7::text IS NULL OR lower(u.email) = lower($7))
           AND ($8::timestamptz IS NULL OR c.created_at >= $8)
           AND ($9::timestamptz IS NULL OR c.created_at < $9)
           AND ($10::timestamptz IS NULL OR (c.created_at, c.id) < ($10, $11))
         ORDER BY c.created_at DESC, c.id DESC LIMIT $12"
    )))
    .bind(q.user_id)
    .bind(q.all)
    .bind(q.status)
    .bind(q.kind)
    .bind(q.team)
    .bind(q.network)
    .bind(q.requested_by)
    .bind(q.created_after)
    .bind(q.created_before)
    .bind(q.after.map(|a| a.0))
    .bind(q.after.map(|a| a.1))
    .bind(q.fetch)
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

/// The provider ids connection `id` recorded finding for `resource`.
pub async fn found_by(
    db: impl PgExecutor<'_>,
    id: Uuid,
    resource: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT provider_id FROM connection_steps
          WHERE connection_id = $1 AND action = 'found' AND resource = $2 AND provider_id IS NOT NULL",
    )
    .bind(id)
    .bind(resource)
    .fetch_all(db)
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

/// Takes (or renews) the connection's actor lease for `holder` for `seconds`:
/// `false` while another holder's lease runs.
pub async fn take_lease(
    db: impl PgExecutor<'_>,
    id: Uuid,
    holder: &str,
    what: &str,
    seconds: f64,
) -> Result<bool, sqlx::Error> {
    let taken: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO connection_actors (connection_id, holder, what, until)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT (connection_id) DO UPDATE
            SET holder = EXCLUDED.holder, what = EXCLUDED.what, until = EXCLUDED.until
          WHERE connection_actors.holder = EXCLUDED.holder OR connection_actors.until < now()
         RETURNING connection_id",
    )
    .bind(id)
    .bind(holder)
    .bind(what)
    .bind(seconds)
    .fetch_optional(db)
    .await?;
    Ok(taken.is_some())
}

/// Gives the lease back, if `holder` still has it.
pub async fn release_lease(
    db: impl PgExecutor<'_>,
    id: Uuid,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM connection_actors WHERE connection_id = $1 AND holder = $2")
        .bind(id)
        .bind(holder)
        .execute(db)
        .await?;
    Ok(())
}

/// A connection in work (approved, provisioning, deprovisioning) that nothing
/// works on: no actor holds it, no job for it waits or runs, and it has not
/// moved for `quiet_seconds`. With the newest job there was for it, if any:
/// (status, attempts, max_attempts, last_result).
#[derive(Debug, Clone, FromRow)]
pub struct Unattended {
    pub id: Uuid,
    pub status: Status,
    pub plan_hash: String,
    pub job_status: Option<String>,
    pub job_attempts: Option<i32>,
    pub job_max_attempts: Option<i32>,
    pub job_result: Option<serde_json::Value>,
}

pub async fn unattended(
    db: impl PgExecutor<'_>,
    quiet_seconds: f64,
    limit: i64,
) -> Result<Vec<Unattended>, sqlx::Error> {
    sqlx::query_as(
        "WITH stuck AS (
            SELECT c.id, c.status, c.plan_hash,
                   CASE WHEN c.status = 'deprovisioning' THEN 'switchboard.deprovision'
                        ELSE 'switchboard.provision' END AS queue
              FROM connections c
             WHERE c.status IN ('approved', 'provisioning', 'deprovisioning')
               AND c.updated_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (SELECT 1 FROM connection_actors a
                                WHERE a.connection_id = c.id AND a.until > now())
             ORDER BY c.updated_at
             LIMIT $2
         )
         SELECT s.id, s.status, s.plan_hash, last.status AS job_status, last.attempts AS job_attempts,
                last.max_attempts AS job_max_attempts, last.last_result AS job_result
           FROM stuck s
           LEFT JOIN LATERAL (
                SELECT j.status, j.attempts, j.max_attempts, j.last_result, j.done_at
                  FROM apalis.jobs j
                 WHERE j.job_type = s.queue
                   AND convert_from(j.job, 'UTF8')::jsonb ->> 'connection_id' = s.id::text
                 ORDER BY j.run_at DESC
                 LIMIT 1
           ) last ON true
          WHERE last.status IS NULL
             OR NOT (last.status IN ('Pending', 'Queued', 'Running')
                     OR (last.status = 'Failed' AND last.attempts < last.max_attempts))",
    )
    .bind(quiet_seconds)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Connections whose plan hash is not of the current version, by id after
/// `after`: (id, stored plan, stored hash).
pub async fn with_hash_not_of(
    conn: &mut PgConnection,
    version: &str,
    after: Uuid,
    limit: i64,
) -> Result<Vec<(Uuid, serde_json::Value, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, plan, plan_hash FROM connections
          WHERE id > $1 AND plan_hash NOT LIKE $2 || ':%'
          ORDER BY id LIMIT $3 FOR UPDATE",
    )
    .bind(after)
    .bind(version)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Renames plan hashes everywhere they are held: the connection, the sides
/// that approved it, and jobs not yet done that carry it.
pub async fn rename_hashes(
    conn: &mut PgConnection,
    ids: &[Uuid],
    old: &[String],
    new: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections c SET plan_hash = m.new
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS m(id, old, new)
          WHERE c.id = m.id AND c.plan_hash = m.old",
    )
    .bind(ids)
    .bind(old)
    .bind(new)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE connection_sides s SET plan_hash = m.new
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS m(id, old, new)
          WHERE s.connection_id = m.id AND s.plan_hash = m.old",
    )
    .bind(ids)
    .bind(old)
    .bind(new)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        // apalis keeps a job as JSON bytes; a hash is unique text, so it is
        // replaced where it stands and the rest keeps its exact bytes.
        "UPDATE apalis.jobs j
            SET job = convert_to(replace(convert_from(j.job, 'UTF8'), m.old, m.new), 'UTF8')
           FROM unnest($1::text[], $2::text[]) AS m(old, new)
          WHERE j.status <> 'Done' AND strpos(convert_from(j.job, 'UTF8'), m.old) > 0",
    )
    .bind(old)
    .bind(new)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
