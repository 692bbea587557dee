//! sqlx queries, one file per aggregate. No pages, no job handlers here.

pub mod audit;
pub mod connections;
pub mod monitoring;
pub mod networks;
pub mod notifications;
pub mod outbox;
pub mod pools;
pub mod provider_accounts;
pub mod queue;
pub mod sessions;
pub mod teams;
pub mod tokens;
pub mod users;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The portal's own schema (`migrations/`); apalis keeps its own in schema `apalis`.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// A lazy pool: processes start even while the database is down, and `/readyz`
/// says so until it is back.
pub fn pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options)
}

/// Applies the portal's migrations and apalis' own.
pub async fn migrate(pool: &PgPool) -> Result<(), crate::Error> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| crate::Error::internal(format!("applying migrations: {e}")))?;
    apalis_postgres::PostgresStorage::setup(pool)
        .await
        .map_err(|e| crate::Error::internal(format!("applying job-queue migrations: {e}")))?;
    Ok(())
}

/// Is the database answering? Used by `/readyz`.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
