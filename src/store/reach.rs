//! What the reachability model reads: the open connections' requests and
//! every network's prefixes.

use ipnet::IpNet;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Connections whose traffic passes now (or should: drifted ones are being
/// repaired), with what they asked for.
pub async fn open_requests(
    db: impl PgExecutor<'_>,
) -> Result<Vec<(Uuid, String, serde_json::Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, spec FROM connections WHERE status IN ('active', 'drifted') ORDER BY created_at, id",
    )
    .fetch_all(db)
    .await
}

/// Every network's prefixes, with its name.
pub async fn prefixes(db: impl PgExecutor<'_>) -> Result<Vec<(Uuid, String, IpNet)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT n.id, n.name, a.cidr FROM networks n JOIN allocations a ON a.network_id = n.id ORDER BY n.id, a.cidr",
    )
    .fetch_all(db)
    .await
}

/// The networks called `name`.
pub async fn named(db: impl PgExecutor<'_>, name: &str) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM networks WHERE name = $1")
        .bind(name)
        .fetch_all(db)
        .await
}
