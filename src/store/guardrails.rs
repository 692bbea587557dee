//! The versions of the guardrails.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct Version {
    pub version: i32,
    pub rule_set: serde_json::Value,
    pub comment: String,
    pub saved_by: Option<Uuid>,
    pub saved_by_name: Option<String>,
    pub saved_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT g.*, u.name AS saved_by_name
    FROM guardrail_versions g LEFT JOIN users u ON u.id = g.saved_by";

/// The version in force, if any was ever saved.
pub async fn current(db: impl PgExecutor<'_>) -> Result<Option<Version>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} ORDER BY g.version DESC LIMIT 1"
    )))
    .fetch_optional(db)
    .await
}

/// Every version, newest first.
pub async fn history(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<Version>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} ORDER BY g.version DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Saves `rule_set` as the version after `based_on`; `None` when another
/// version was saved since (the primary key refuses a second `based_on + 1`).
pub async fn save(
    conn: &mut PgConnection,
    based_on: i32,
    rule_set: &serde_json::Value,
    comment: &str,
    saved_by: Uuid,
) -> Result<Option<i32>, sqlx::Error> {
    let latest: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM guardrail_versions")
        .fetch_one(&mut *conn)
        .await?;
    if latest.unwrap_or(0) != based_on {
        return Ok(None);
    }
    sqlx::query_scalar(
        "INSERT INTO guardrail_versions (version, rule_set, comment, saved_by)
         VALUES ($1 + 1, $2, $3, $4)
         ON CONFLICT (version) DO NOTHING
         RETURNING version",
    )
    .bind(based_on)
    .bind(rule_set)
    .bind(comment)
    .bind(saved_by)
    .fetch_optional(&mut *conn)
    .await
}

/// Statuses of connections that no longer count as open.
const CLOSED: &str = "('deleted', 'rejected', 'cancelled', 'expired', 'failed')";

/// Open connections the team `slug` takes part in (not counting `except`).
pub async fn open_for_team(
    db: impl PgExecutor<'_>,
    slug: &str,
    except: Option<Uuid>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM connections c
          WHERE c.status NOT IN {CLOSED} AND c.id IS DISTINCT FROM $2
            AND EXISTS (SELECT 1 FROM connection_sides s JOIN teams t ON t.id = s.team_id
                         WHERE s.connection_id = c.id AND t.slug = $1)"
    )))
    .bind(slug)
    .bind(except)
    .fetch_one(db)
    .await
}

/// Open connections into `network_id` (not counting `except`).
pub async fn open_into_network(
    db: impl PgExecutor<'_>,
    network_id: Uuid,
    except: Option<Uuid>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM connections c
          WHERE c.status NOT IN {CLOSED} AND c.id IS DISTINCT FROM $2
            AND c.spec->>'destination_network_id' = $1::text"
    )))
    .bind(network_id)
    .bind(except)
    .fetch_one(db)
    .await
}

/// An open connection as a changed rule set looks at it.
#[derive(sqlx::FromRow)]
pub struct Open {
    pub id: Uuid,
    pub spec: serde_json::Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: String,
}

/// The open connections a changed rule set is checked against.
pub async fn open_connections(db: impl PgExecutor<'_>) -> Result<Vec<Open>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, spec, expires_at, status FROM connections WHERE status NOT IN {CLOSED} ORDER BY created_at, id"
    )))
    .fetch_all(db)
    .await
}

/// The labels of the pools a network's ranges come from, the widest pool
/// first and the nearest last (a nearer pool's label wins).
pub async fn pool_labels(
    db: impl PgExecutor<'_>,
    network_id: Uuid,
) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE chain AS (
             SELECT p.id, p.parent_id, p.labels, 0 AS depth
               FROM pools p JOIN allocations a ON a.pool_id = p.id
              WHERE a.network_id = $1
             UNION ALL
             SELECT p.id, p.parent_id, p.labels, c.depth + 1
               FROM pools p JOIN chain c ON p.id = c.parent_id
              WHERE c.depth < 32)
         SELECT labels FROM chain ORDER BY depth DESC",
    )
    .bind(network_id)
    .fetch_all(db)
    .await
}
