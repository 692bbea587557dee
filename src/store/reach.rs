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

/// Those of `ids` that are open, with what they asked for.
pub async fn open_requests_of(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String, serde_json::Value)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, spec FROM connections
          WHERE id = ANY($1) AND status IN ('active', 'drifted') ORDER BY created_at, id",
    )
    .bind(ids)
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

/// Makes the transaction (before its first query) read one snapshot
/// throughout, and says which.
pub async fn repeatable_snapshot(conn: &mut sqlx::PgConnection) -> Result<String, sqlx::Error> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&mut *conn)
        .await
}

/// Did a change to what the reachability model is made of commit since
/// `snapshot` was taken? Planned for each snapshot (not a prepared
/// statement): a generic plan cannot see that the index holds few notes past
/// the snapshot's xmin, and reads them all.
pub async fn changed_since(db: impl PgExecutor<'_>, snapshot: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM reach_changes
                         WHERE xid >= pg_snapshot_xmin($1::pg_snapshot)
                           AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot))",
    )
    .persistent(false)
    .bind(snapshot)
    .fetch_one(db)
    .await
}

/// The notes of the changes committed since `snapshot` (and before the
/// reading transaction's own): a connection's id, or None when a network or
/// an allocation changed.
pub async fn notes_since(
    db: impl PgExecutor<'_>,
    snapshot: &str,
) -> Result<Vec<Option<Uuid>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT connection_id FROM reach_changes
          WHERE xid >= pg_snapshot_xmin($1::pg_snapshot)
            AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)",
    )
    .persistent(false)
    .bind(snapshot)
    .fetch_all(db)
    .await
}

/// Forgets the notes of changes older than a day (a kept model is far younger).
pub async fn prune_changes(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM reach_changes WHERE noted_at < now() - interval '1 day'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}
