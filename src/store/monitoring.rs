//! What the monitor reads and writes: the connections it watches, what it saw,
//! drift episodes, and the sweep's own bookkeeping.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use super::connections::SELECT;

/// An `active` or `drifted` connection, as the monitor needs it.
#[derive(Debug, Clone, FromRow)]
pub struct Watched {
    pub id: Uuid,
    pub status: crate::domain::connection::Status,
    pub plan: serde_json::Value,
    pub repair: String,
    pub observed_state: Option<String>,
    pub observed_detail: serde_json::Value,
}

/// The next page of watched connections after `after`, in id order.
pub async fn watched_page(
    db: impl PgExecutor<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Watched>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, plan, repair, observed_state, observed_detail FROM connections
          WHERE status IN ('active', 'drifted') AND ($1::uuid IS NULL OR id > $1)
          ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// One watched connection, if it is watched.
pub async fn watched_one(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Watched>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, plan, repair, observed_state, observed_detail FROM connections
          WHERE id = $1 AND status IN ('active', 'drifted')",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Claims the next sweep for `holder`: not while another holder's lease runs,
/// nor within `gap_seconds` of the last sweep's start.
pub async fn claim_sweep(
    db: impl PgExecutor<'_>,
    holder: &str,
    gap_seconds: f64,
    lease_seconds: f64,
) -> Result<bool, sqlx::Error> {
    let started: Option<bool> = sqlx::query_scalar(
        "INSERT INTO monitor_sweeps (id, started_at, holder, lease_until)
         VALUES (true, now(), $1, now() + make_interval(secs => $3))
         ON CONFLICT (id) DO UPDATE SET started_at = now(), finished_at = NULL,
                holder = $1, lease_until = now() + make_interval(secs => $3)
          WHERE monitor_sweeps.started_at < now() - make_interval(secs => $2)
            AND (monitor_sweeps.lease_until IS NULL OR monitor_sweeps.lease_until < now())
         RETURNING true",
    )
    .bind(holder)
    .bind(gap_seconds)
    .bind(lease_seconds)
    .fetch_optional(db)
    .await?;
    Ok(started.is_some())
}

/// Keeps the sweep's lease while it goes on; `false` once another took it over.
pub async fn renew_sweep(
    db: impl PgExecutor<'_>,
    holder: &str,
    lease_seconds: f64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE monitor_sweeps SET lease_until = now() + make_interval(secs => $2)
          WHERE id AND holder = $1",
    )
    .bind(holder)
    .bind(lease_seconds)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_sweep(
    db: impl PgExecutor<'_>,
    holder: &str,
    duration_ms: i32,
    observed: i32,
    unreadable: (i32, &[Uuid]),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE monitor_sweeps SET finished_at = now(), duration_ms = $2, observed = $3,
                unreadable = $4, unreadable_ids = $5, lease_until = NULL
          WHERE id AND holder = $1",
    )
    .bind(holder)
    .bind(duration_ms)
    .bind(observed)
    .bind(unreadable.0)
    .bind(unreadable.1)
    .execute(db)
    .await
    .map(drop)
}

/// Records how an account answered; returns since when it has been unreachable
/// (None when it answered) and whether admins were already told.
pub async fn record_account(
    db: impl PgExecutor<'_>,
    account: Uuid,
    duration_ms: i32,
    observed: i32,
    error: Option<&str>,
) -> Result<(Option<DateTime<Utc>>, bool), sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO monitor_accounts (account_id, observed_at, duration_ms, observed, error, unknown_since)
         VALUES ($1, now(), $2, $3, $4, CASE WHEN $4::text IS NULL THEN NULL ELSE now() END)
         ON CONFLICT (account_id) DO UPDATE SET
             observed_at = now(), duration_ms = $2, observed = $3, error = $4,
             unknown_since = CASE WHEN $4::text IS NULL THEN NULL
                                  ELSE coalesce(monitor_accounts.unknown_since, now()) END,
             admins_told_at = CASE WHEN $4::text IS NULL THEN NULL
                                   ELSE monitor_accounts.admins_told_at END
         RETURNING unknown_since, admins_told_at IS NOT NULL",
    )
    .bind(account)
    .bind(duration_ms)
    .bind(observed)
    .bind(error)
    .fetch_one(db)
    .await
}

pub async fn admins_told(db: impl PgExecutor<'_>, account: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE monitor_accounts SET admins_told_at = now() WHERE account_id = $1")
        .bind(account)
        .execute(db)
        .await
        .map(drop)
}

/// Stores what was seen of connections whose observation changed.
pub async fn record_observations(
    conn: &mut PgConnection,
    ids: &[Uuid],
    states: &[String],
    details: &[serde_json::Value],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections c SET observed_state = v.state, observed_detail = v.detail,
                observed_since = CASE WHEN c.observed_state IS DISTINCT FROM v.state
                                      THEN now() ELSE c.observed_since END,
                unknown_since = CASE WHEN v.state = 'unknown'
                                     THEN coalesce(c.unknown_since, now()) END
           FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS v(id, state, detail)
          WHERE c.id = v.id",
    )
    .bind(ids)
    .bind(states)
    .bind(details)
    .execute(conn)
    .await
    .map(drop)
}

/// Opens a drift episode (one open per connection).
pub async fn open_drift(
    conn: &mut PgConnection,
    id: Uuid,
    differences: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO drift_events (connection_id, differences, latest) VALUES ($1, $2, $2)
         ON CONFLICT (connection_id) WHERE closed_at IS NULL DO UPDATE SET latest = $2",
    )
    .bind(id)
    .bind(differences)
    .execute(conn)
    .await
    .map(drop)
}

pub async fn update_drift(
    conn: &mut PgConnection,
    id: Uuid,
    latest: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE drift_events SET latest = $2 WHERE connection_id = $1 AND closed_at IS NULL",
    )
    .bind(id)
    .bind(latest)
    .execute(conn)
    .await
    .map(drop)
}

/// Closes the open episode; returns when it opened and how it closed
/// (`repaired` when a repair was asked for during it).
pub async fn close_drift(
    conn: &mut PgConnection,
    id: Uuid,
    closed_as: &str,
) -> Result<Option<(DateTime<Utc>, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE drift_events SET closed_at = now(),
                closed_as = CASE WHEN $2 = 'recovered' AND repair_asked_at IS NOT NULL
                                 THEN 'repaired' ELSE $2 END
          WHERE connection_id = $1 AND closed_at IS NULL
         RETURNING opened_at, closed_as",
    )
    .bind(id)
    .bind(closed_as)
    .fetch_optional(conn)
    .await
}

/// Notes a repair of the open episode, unless one was asked for less than
/// `gap_seconds` ago; true when this call should queue it.
pub async fn ask_repair(
    conn: &mut PgConnection,
    id: Uuid,
    gap_seconds: f64,
) -> Result<bool, sqlx::Error> {
    let asked: Option<i64> = sqlx::query_scalar(
        "UPDATE drift_events SET repair_asked_at = now()
          WHERE connection_id = $1 AND closed_at IS NULL
            AND (repair_asked_at IS NULL OR repair_asked_at < now() - make_interval(secs => $2))
         RETURNING id",
    )
    .bind(id)
    .bind(gap_seconds)
    .fetch_optional(conn)
    .await?;
    Ok(asked.is_some())
}

#[derive(Debug, Clone, FromRow)]
pub struct DriftEvent {
    pub id: i64,
    pub opened_at: DateTime<Utc>,
    pub differences: serde_json::Value,
    pub latest: serde_json::Value,
    pub repair_asked_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_as: Option<String>,
}

pub async fn drift_history(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<DriftEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, opened_at, differences, latest, repair_asked_at, closed_at, closed_as
           FROM drift_events WHERE connection_id = $1 ORDER BY opened_at DESC LIMIT 50",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// When the accounts a connection lives in were last observed (the oldest).
pub async fn last_observed(
    db: impl PgExecutor<'_>,
    accounts: &[String],
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(m.observed_at) FROM monitor_accounts m
           JOIN provider_accounts a ON a.id = m.account_id WHERE a.name = ANY($1)",
    )
    .bind(accounts)
    .fetch_one(db)
    .await
}

/// What the monitor's last sweep did, for the metrics.
pub struct Figures {
    pub sweep_seconds: Option<f64>,
    pub observed: Option<i64>,
    /// Connections the last sweep could not read, and some of their ids.
    pub unreadable: (i64, Vec<Uuid>),
    /// (account, seconds, connections observed, could not be asked)
    pub accounts: Vec<(String, f64, i64, bool)>,
    pub open_drift: i64,
}

pub async fn figures(db: &sqlx::PgPool) -> Result<Figures, sqlx::Error> {
    /// duration_ms, observed, unreadable, unreadable_ids
    type LastSweep = (Option<i32>, Option<i32>, i32, Vec<Uuid>);
    let last: Option<LastSweep> = sqlx::query_as(
        "SELECT duration_ms, observed, unreadable, unreadable_ids FROM monitor_sweeps WHERE id",
    )
    .fetch_optional(db)
    .await?;
    let accounts: Vec<(String, i32, i32, bool)> = sqlx::query_as(
        "SELECT a.name, m.duration_ms, m.observed, m.error IS NOT NULL
           FROM monitor_accounts m JOIN provider_accounts a ON a.id = m.account_id ORDER BY 1",
    )
    .fetch_all(db)
    .await?;
    let open_drift: i64 =
        sqlx::query_scalar("SELECT count(*) FROM drift_events WHERE closed_at IS NULL")
            .fetch_one(db)
            .await?;
    let (duration, observed, unreadable, unreadable_ids) =
        last.unwrap_or((None, None, 0, Vec::new()));
    Ok(Figures {
        sweep_seconds: duration.map(|ms| f64::from(ms) / 1000.0),
        observed: observed.map(i64::from),
        unreadable: (i64::from(unreadable), unreadable_ids),
        accounts: accounts
            .into_iter()
            .map(|(n, ms, o, unknown)| (n, f64::from(ms) / 1000.0, i64::from(o), unknown))
            .collect(),
        open_drift,
    })
}

/// The people to tell about each connection: its requester and the leads of
/// its teams, as (connection, email, name).
pub async fn owners(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id, u.email, u.name FROM connections c JOIN users u ON u.id = c.requested_by
          WHERE c.id = ANY($1)
         UNION
         SELECT s.connection_id, u.email, u.name FROM connection_sides s
           JOIN memberships m ON m.team_id = s.team_id AND m.role = 'lead'
           JOIN users u ON u.id = m.user_id
          WHERE s.connection_id = ANY($1)
         ORDER BY 2, 1",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

pub async fn admins(db: impl PgExecutor<'_>) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT email, name FROM users WHERE is_admin ORDER BY email")
        .fetch_all(db)
        .await
}

/// What the dashboard shows: `active` and `drifted` connections the provider
/// could not be asked about count as `unknown`.
const CATEGORY: &str =
    "CASE WHEN c.status IN ('active', 'drifted') AND c.observed_state = 'unknown'
                            THEN 'unknown' ELSE c.status END";

const VISIBLE: &str = "($2 OR c.requested_by = $1 OR EXISTS (
             SELECT 1 FROM connection_sides s JOIN memberships m ON m.team_id = s.team_id
             WHERE s.connection_id = c.id AND m.user_id = $1))";

/// Connections the person can see that drifted, failed or could not be
/// read: what their home page lists first, most recently changed first.
pub async fn needing_attention(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    all: bool,
    limit: i64,
) -> Result<Vec<super::connections::Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT}
          WHERE {VISIBLE} AND {CATEGORY} IN ('drifted', 'unknown', 'failed')
          ORDER BY c.updated_at DESC
          LIMIT $3"
    )))
    .bind(user_id)
    .bind(all)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Built connections the person can see that expire before `before`, soonest first.
pub async fn expiring(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    all: bool,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<super::connections::Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT}
          WHERE {VISIBLE} AND c.expires_at IS NOT NULL AND c.expires_at < $3
            AND c.status IN ('approved', 'provisioning', 'active', 'drifted')
          ORDER BY c.expires_at
          LIMIT $4"
    )))
    .bind(user_id)
    .bind(all)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How many connections the person can see, by dashboard category.
pub async fn counts(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    all: bool,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CATEGORY} AS category, count(*) FROM connections c
          WHERE {VISIBLE} GROUP BY 1"
    )))
    .bind(user_id)
    .bind(all)
    .fetch_all(db)
    .await
}

/// The connections of the dashboard, what needs attention first.
pub async fn board(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    all: bool,
    limit: i64,
) -> Result<Vec<super::connections::Connection>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT}
          WHERE {VISIBLE}
            AND c.status IN ('active', 'drifted', 'provisioning', 'approved', 'failed', 'deprovisioning')
          ORDER BY CASE {CATEGORY} WHEN 'drifted' THEN 0 WHEN 'unknown' THEN 1 WHEN 'failed' THEN 2
                   WHEN 'provisioning' THEN 3 WHEN 'approved' THEN 3 WHEN 'deprovisioning' THEN 4 ELSE 5 END,
                   c.updated_at DESC
          LIMIT $3"
    )))
    .bind(user_id)
    .bind(all)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Records the proofs that passed this sweep, per connection.
pub async fn record_proofs(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
    proofs: &[String],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE connections c SET verified_at = now(), verified = m.proof
           FROM unnest($1::uuid[], $2::text[]) AS m(id, proof) WHERE c.id = m.id",
    )
    .bind(ids)
    .bind(proofs)
    .execute(db)
    .await?;
    Ok(())
}
