//! sqlx queries, one file per aggregate. No pages, no job handlers here.

pub mod audit;
pub mod changes;
pub mod connections;
pub mod guardrails;
pub mod idempotency;
pub mod monitoring;
pub mod networks;
pub mod notifications;
pub mod outbox;
pub mod pools;
pub mod provider_accounts;
pub mod queue;
pub mod reach;
pub mod renewals;
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
/// says so until it is back. No transaction of Switchboard's waits on anything
/// but the database, so one idle for a minute was abandoned (a task cancelled
/// between two statements): the server ends it, and the locks it held, rather
/// than let it block every request that needs the same rows.
pub fn pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options.options([("idle_in_transaction_session_timeout", "60s")]))
}

/// Applies the portal's migrations and apalis' own.
pub async fn migrate(pool: &PgPool) -> Result<(), crate::Error> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| crate::Error::because("applying migrations", e))?;
    apalis_postgres::PostgresStorage::setup(pool)
        .await
        .map_err(|e| crate::Error::because("applying job-queue migrations", e))?;
    sqlx::raw_sql(QUEUE_ADDITIONS)
        .execute(pool)
        .await
        .map_err(|e| crate::Error::because("the job queue's additions", e))?;
    Ok(())
}

/// What Switchboard adds to apalis' job table, applied after apalis' own
/// migrations (its table must exist), idempotent:
/// - when a dead worker's jobs are put back, apalis charges each an attempt,
///   even those it had only fetched (`Queued`) and never started, so after a few
///   crashes a job could fail for good at its first real error: a trigger charges
///   only jobs that ran;
/// - indexes that keep retention (finished jobs by `done_at`) and the metrics
///   (jobs not done, by queue and state) cheap at any table size.
pub const QUEUE_ADDITIONS: &str = "
CREATE OR REPLACE FUNCTION apalis.switchboard_reclaim_without_charge() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.attempts = OLD.attempts + 1 AND NEW.lock_by IS NULL THEN
        NEW.attempts := OLD.attempts;
    END IF;
    RETURN NEW;
END
$$;
-- Each is made only when missing: making one locks the job table, which must
-- not wait behind running workers' transactions on every start.
DO $$
BEGIN
    IF to_regclass('apalis.switchboard_jobs_finished') IS NULL THEN
        CREATE INDEX switchboard_jobs_finished ON apalis.jobs (done_at)
            WHERE status IN ('Done', 'Killed', 'Failed');
    END IF;
    IF to_regclass('apalis.switchboard_jobs_not_done') IS NULL THEN
        CREATE INDEX switchboard_jobs_not_done ON apalis.jobs (job_type, status)
            WHERE status <> 'Done';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgname = 'switchboard_reclaim_without_charge'
                      AND tgrelid = 'apalis.jobs'::regclass) THEN
        CREATE TRIGGER switchboard_reclaim_without_charge
            BEFORE UPDATE ON apalis.jobs
            FOR EACH ROW
            WHEN (OLD.status = 'Queued' AND NEW.status = 'Pending')
            EXECUTE FUNCTION apalis.switchboard_reclaim_without_charge();
    END IF;
END
$$;
";

/// Is the database answering? Used by `/readyz`.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// Stored enums decode into their types, or the row fails loudly naming the
/// value: a kind or status no release knows is a fault to see, never a default.
macro_rules! stored_as_text {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl sqlx::Type<sqlx::Postgres> for $ty {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }
        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $ty {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                <$ty>::parse(text).ok_or_else(|| format!("{text:?} is not a {}", $what).into())
            }
        }
    )*};
}

stored_as_text! {
    crate::domain::connection::Kind => "connection kind",
    crate::domain::connection::Status => "connection status",
}
