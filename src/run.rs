//! What each process subcommand runs: `up`, `serve`, `work`, `migrate`.

use std::net::TcpListener;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;

use crate::app::Application;
use crate::config::Settings;
use crate::embedded_postgres::EmbeddedPostgres;
use crate::jobs::{self, WorkerSettings};
use crate::notify::Mailer;
use crate::services::Context;
use crate::store;
use crate::telemetry::Metrics;

/// A reason the process could not start or run, for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

impl From<crate::Error> for RunError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Database(db) => RunError(format!("database: {db}")),
            crate::Error::Invalid(errors) => RunError(
                errors
                    .iter()
                    .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => RunError(other.to_string()),
        }
    }
}

/// The database to use: `DATABASE_URL`, or (for `up`/`migrate`) the embedded cluster.
enum Database {
    External(Box<PgConnectOptions>),
    Embedded(EmbeddedPostgres),
}

impl Database {
    async fn open(
        settings: &Settings,
        allow_embedded: bool,
        command: &str,
    ) -> Result<Self, RunError> {
        match &settings.database_url {
            Some(url) => url
                .expose()
                .parse::<PgConnectOptions>()
                .map(|options| Database::External(Box::new(options)))
                .map_err(|_| RunError("DATABASE_URL could not be used as a PostgreSQL URL".into())),
            None if allow_embedded => {
                let root = std::env::current_dir()
                    .map_err(|e| RunError(format!("current directory: {e}")))?;
                EmbeddedPostgres::start(&root)
                    .await
                    .map(Database::Embedded)
                    .map_err(|e| RunError(format!("embedded PostgreSQL: {e}")))
            }
            None => Err(RunError(format!(
                "DATABASE_URL must be set for `{command}` (only `up` and `migrate` start an embedded database)"
            ))),
        }
    }

    /// The pool of this process: `SWITCHBOARD_DATABASE_POOL_SIZE` connections at most.
    fn pool(&self, settings: &Settings) -> PgPool {
        let options = match self {
            Database::External(options) => (**options).clone(),
            Database::Embedded(pg) => pg.connect_options(),
        };
        store::pool(options, settings.database_pool_size)
    }

    async fn close(self, pool: PgPool) {
        pool.close().await;
        if let Database::Embedded(pg) = self {
            pg.stop().await;
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}

async fn migrate_pool(pool: &PgPool) -> Result<(), RunError> {
    store::migrate(pool).await?;
    crate::services::connections::carry_plans_forward(pool).await?;
    tracing::info!("database schema is up to date");
    Ok(())
}

/// `switchboard admin create-token`: prints a new API token once.
pub async fn create_token(
    settings: Settings,
    email: String,
    name: String,
    admin: bool,
    expires_in_days: Option<i64>,
) -> Result<String, RunError> {
    let db = Database::open(&settings, true, "admin create-token").await?;
    let pool = db.pool(&settings);
    let result = async {
        migrate_pool(&pool).await?;
        let ctx = Context::new(pool.clone(), Arc::new(settings))?;
        let created = crate::services::tokens::create_bootstrap_token(
            &ctx,
            &email,
            &name,
            admin,
            expires_in_days,
        )
        .await?;
        Ok(created.secret)
    }
    .await;
    db.close(pool).await;
    result
}

pub async fn migrate(settings: Settings) -> Result<(), RunError> {
    let db = Database::open(&settings, true, "migrate").await?;
    let pool = db.pool(&settings);
    let result = migrate_pool(&pool).await;
    db.close(pool).await;
    result
}

/// web + workers in one process; with no DATABASE_URL, also the database.
pub async fn up(settings: Settings) -> Result<(), RunError> {
    let db = Database::open(&settings, true, "up").await?;
    let pool = db.pool(&settings);
    let result = async {
        migrate_pool(&pool).await?;
        crate::services::networks::ensure_default_sandbox(&pool).await?;
        run_processes(settings, pool.clone(), true, true).await
    }
    .await;
    db.close(pool).await;
    result
}

pub async fn serve(settings: Settings) -> Result<(), RunError> {
    let db = Database::open(&settings, false, "serve").await?;
    let pool = db.pool(&settings);
    let result = run_processes(settings, pool.clone(), true, false).await;
    db.close(pool).await;
    result
}

pub async fn work(settings: Settings) -> Result<(), RunError> {
    let db = Database::open(&settings, false, "work").await?;
    let pool = db.pool(&settings);
    let result = run_processes(settings, pool.clone(), false, true).await;
    db.close(pool).await;
    result
}

/// One task tree per process: the web server, the workers and the scheduler.
/// When any of them ends before a shutdown was asked for (a panic, an error),
/// the process says why and stops with an error, so the platform restarts it:
/// never a process that looks healthy with a part missing.
async fn run_processes(
    settings: Settings,
    pool: PgPool,
    web: bool,
    workers: bool,
) -> Result<(), RunError> {
    let settings = Arc::new(settings);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut parts: Vec<Part> = Vec::new();

    if workers {
        let mailer = Mailer::from_settings(&settings, &pool)?;
        if settings.mail_goes_to_outbox() {
            tracing::info!("no SWITCHBOARD_SMTP_URL: email goes to the outbox at /dev/outbox");
        }
        let ctx = Context::new(pool.clone(), settings.clone())?;
        parts.push((
            "scheduler",
            tokio::spawn(jobs::schedule::run(ctx.clone(), stop_rx.clone())),
        ));
        parts.push((
            "workers",
            tokio::spawn(jobs::run(
                ctx,
                mailer,
                WorkerSettings {
                    heartbeat: std::time::Duration::from_secs(
                        settings.worker_heartbeat_seconds.unsigned_abs(),
                    ),
                    ..WorkerSettings::new(settings.worker_concurrency)
                },
                stop_rx,
            )),
        ));
    }

    let mut web_handle = None;
    if web {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| RunError(format!("SWITCHBOARD_BIND {}: {e}", settings.bind)))?;
        if settings.session_key.is_none() {
            tracing::warn!("no SWITCHBOARD_SESSION_KEY: sessions end when this process restarts");
        }
        let ctx = Context::new(pool.clone(), settings.clone())?;
        let app = Application::build(listener, ctx, Arc::new(Metrics::new()))
            .map_err(|e| RunError(format!("starting the web server: {e}")))?;
        tracing::info!(url = %settings.base_url, bind = %settings.bind, "Switchboard is serving");
        let server = app.into_server();
        web_handle = Some(server.handle());
        parts.push((
            "web server",
            tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "the web server failed");
                }
            }),
        ));
    }

    let failed = tokio::select! {
        _ = shutdown_signal() => None,
        ended = first_to_end(&mut parts) => Some(ended),
    };
    if let Some((part, why)) = &failed {
        tracing::error!(%part, %why, "a part of the process ended unexpectedly; stopping");
    }
    // Stop taking requests and jobs; let the ones in flight finish.
    if let Some(handle) = web_handle {
        handle.stop(true).await;
    }
    let _ = stop_tx.send(true);
    for (_, task) in parts {
        let _ = task.await;
    }
    match failed {
        None => Ok(()),
        Some((part, why)) => Err(RunError(format!("the {part} ended unexpectedly: {why}"))),
    }
}

/// A named part of the process and its task.
type Part = (&'static str, tokio::task::JoinHandle<()>);

/// Waits for the first part to end, and says which and how; never, with none.
async fn first_to_end(parts: &mut [Part]) -> (&'static str, String) {
    if parts.is_empty() {
        return std::future::pending().await;
    }
    let waits = parts.iter_mut().map(|(name, task)| {
        Box::pin(async move {
            let how = match task.await {
                Ok(()) => "it returned".to_owned(),
                Err(e) if e.is_panic() => "it panicked".to_owned(),
                Err(e) => e.to_string(),
            };
            (*name, how)
        })
    });
    futures::future::select_all(waits).await.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_part_that_panics_is_named() {
        let mut parts: Vec<Part> = vec![
            ("web server", tokio::spawn(std::future::pending())),
            ("scheduler", tokio::spawn(async { panic!("a bug") })),
        ];
        assert_eq!(
            first_to_end(&mut parts).await,
            ("scheduler", "it panicked".to_owned())
        );
        let mut parts: Vec<Part> = vec![("workers", tokio::spawn(async {}))];
        assert_eq!(first_to_end(&mut parts).await.0, "workers");
    }
}
