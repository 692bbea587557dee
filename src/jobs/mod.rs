//! apalis workers: one per job type, all fed from PostgreSQL, supervised so a
//! lost database connection (or a panic inside apalis) restarts them instead of
//! ending the process.

mod noop;
mod provision;
pub mod schedule;
mod send_email;
mod send_webhook;

use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage, Pubsub};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::domain::jobs::{
    ApplyChange, BuildNetwork, Deprovision, Job, Noop, Provision, RemoveNetwork, Repair, SendEmail,
    SendWebhook,
};
use crate::notify::Mailer;
use crate::services::Context;

/// How a process runs its workers.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Jobs in flight at once per job type.
    pub concurrency: usize,
    /// Jobs fetched per round trip: the main lever on throughput.
    pub batch_size: usize,
    /// Fallback poll interval when a notification is missed.
    pub poll_interval: Duration,
    /// How long in-flight jobs get to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// How often workers say they are alive.
    pub heartbeat: Duration,
}

impl WorkerSettings {
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
        }
    }
}

fn storage<J: Job>(
    pool: &PgPool,
    settings: &WorkerSettings,
) -> PollWith<PostgresStorage<J>, Strategy> {
    let config = Config::default()
        .queue(J::QUEUE)
        .batch_size(settings.batch_size)
        .heartbeat_interval(settings.heartbeat)
        // A job held by a worker silent for three heartbeats (killed, cut off)
        // goes back to the queue for another worker.
        .missed_heartbeats(3);
    // Wake on LISTEN/NOTIFY for low latency, and poll as a safety net.
    let strategy = Strategy::new()
        .stream(Pubsub::new(pool.clone(), J::QUEUE.to_owned()))
        .interval(settings.poll_interval);
    PostgresStorage::<J>::new(pool)
        .with_config(config)
        .poll_with_strategy(strategy)
}

/// A name unique to this start of this worker, so several processes share a
/// queue, and a restart never collides with its previous self: apalis registers
/// a worker under a session advisory lock on a pooled connection, which may
/// outlive the worker (a pool time-out), and a second worker by the same name
/// would be refused (`WorkerAlreadyExists`) for as long as that connection lives.
fn worker_name(job: &str, run: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .or_else(|_| std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()))
        .unwrap_or_else(|_| "localhost".into());
    format!("{job}@{host}:{}:{run}", std::process::id())
}

fn monitor(ctx: &Context, mailer: &Mailer, settings: &WorkerSettings) -> Monitor {
    // One name suffix per start of the workers.
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (r1, r2, r3, r4, r5, r6) = (
        run.clone(),
        run.clone(),
        run.clone(),
        run.clone(),
        run.clone(),
        run,
    );
    let (pool, mailer, settings) = (ctx.pool.clone(), mailer.clone(), settings.clone());
    let (pool2, settings2) = (pool.clone(), settings.clone());
    let (ctx3, settings3) = (ctx.clone(), settings.clone());
    let (ctx4, settings4) = (ctx.clone(), settings.clone());
    let (ctx5, settings5) = (ctx.clone(), settings.clone());
    let (ctx6, settings6) = (ctx.clone(), settings.clone());
    let (ctx7, settings7, r7) = (ctx.clone(), settings.clone(), r3.clone());
    let (ctx8, settings8, r8) = (ctx.clone(), settings.clone(), r3.clone());
    let (ctx9, settings9, r9) = (ctx.clone(), settings.clone(), r3.clone());
    Monitor::new()
        .register(move |_| {
            WorkerBuilder::new(worker_name(ApplyChange::QUEUE, &r9))
                .backend(storage::<ApplyChange>(&ctx9.pool, &settings9))
                .data(ctx9.clone())
                .concurrency(settings9.concurrency)
                .build(provision::apply_change)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(BuildNetwork::QUEUE, &r7))
                .backend(storage::<BuildNetwork>(&ctx7.pool, &settings7))
                .data(ctx7.clone())
                .concurrency(settings7.concurrency)
                .build(provision::build_network)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(RemoveNetwork::QUEUE, &r8))
                .backend(storage::<RemoveNetwork>(&ctx8.pool, &settings8))
                .data(ctx8.clone())
                .concurrency(settings8.concurrency)
                .build(provision::remove_network)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(Provision::QUEUE, &r3))
                .backend(storage::<Provision>(&ctx3.pool, &settings3))
                .data(ctx3.clone())
                .concurrency(settings3.concurrency)
                .build(provision::provision)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(Deprovision::QUEUE, &r4))
                .backend(storage::<Deprovision>(&ctx4.pool, &settings4))
                .data(ctx4.clone())
                .concurrency(settings4.concurrency)
                .build(provision::deprovision)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(Repair::QUEUE, &r5))
                .backend(storage::<Repair>(&ctx5.pool, &settings5))
                .data(ctx5.clone())
                .concurrency(settings5.concurrency)
                .build(provision::repair)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(SendWebhook::QUEUE, &r6))
                .backend(storage::<SendWebhook>(&ctx6.pool, &settings6))
                .data(ctx6.clone())
                .concurrency(settings6.concurrency)
                .build(send_webhook::handle)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(SendEmail::QUEUE, &r1))
                .backend(storage::<SendEmail>(&pool, &settings))
                .data(mailer.clone())
                .concurrency(settings.concurrency)
                .build(send_email::handle)
        })
        .register(move |_| {
            WorkerBuilder::new(worker_name(Noop::QUEUE, &r2))
                .backend(storage::<Noop>(&pool2, &settings2))
                .concurrency(settings2.concurrency)
                .build(noop::handle)
        })
}

/// Runs every worker until `shutdown` turns true, then lets in-flight jobs finish.
pub async fn run(
    ctx: Context,
    mailer: Mailer,
    settings: WorkerSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let monitor = monitor(&ctx, &mailer, &settings);
        let control = monitor.context();
        // The monitor waits for every worker: when one fails (its database
        // connection died), stop them all, so the loop below starts all afresh.
        let stop_all = control.clone();
        let monitor = monitor.should_restart(move |worker, error| {
            tracing::warn!(worker = %worker.name(), %error, "a worker failed; restarting all");
            let _ = stop_all.shutdown();
            false
        });
        let running = monitor.run();
        tokio::pin!(running);
        tracing::info!(concurrency = settings.concurrency, "workers started");
        let outcome = tokio::select! {
            outcome = &mut running => outcome,
            _ = stopped(&mut shutdown) => {
                tracing::info!("stopping workers: finishing in-flight jobs");
                let _ = control.shutdown();
                if tokio::time::timeout(settings.shutdown_timeout, &mut running).await.is_err() {
                    tracing::warn!("workers did not finish within the shutdown timeout");
                }
                tracing::info!("workers stopped");
                return;
            }
        };
        // Workers only end on their own when something broke (e.g. the database
        // went away): wait a little and start them again.
        match outcome {
            Ok(()) => tracing::warn!("workers stopped unexpectedly; restarting"),
            Err(e) => tracing::error!(error = %e, "workers failed; restarting"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut shutdown) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Completes once the shutdown flag is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Backoff for a failed attempt: 2^attempt seconds, capped, with jitter.
fn retry_delay(attempt: usize) -> Duration {
    let base = 2u64.saturating_pow(attempt.min(10) as u32).min(600);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base / 2 + 1);
    Duration::from_secs(base + jitter)
}
