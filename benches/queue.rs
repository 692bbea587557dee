//! Queue throughput: how fast no-op jobs travel push → PostgreSQL → worker →
//! done with the workers `switchboard work` runs, against the database's own
//! ceiling for single-row insert commits, measured in the same run.
//!
//!     cargo bench --bench queue -- [--jobs N] [--seconds S] [--completed M]
//!
//! `--completed M` first fills the table with M finished jobs (as a busy
//! deployment keeps them until their retention ends), to measure the queue at
//! that size rather than empty.
//!
//! Uses `BENCH_DATABASE_URL` (else `TEST_DATABASE_URL`, else the local server)
//! to create a scratch database, which it drops at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::time::{Duration, Instant};

use sqlx::PgPool;
use switchboard::domain::jobs::{Job, Noop};
use switchboard::jobs::{self, WorkerSettings};
use switchboard::notify::Mailer;
use switchboard::store;
use tokio::sync::watch;

#[path = "common/mod.rs"]
mod common;

struct Args {
    jobs: u64,
    seconds: u64,
    completed: u64,
}

fn args() -> Args {
    let mut out = Args {
        jobs: 20_000,
        seconds: 5,
        completed: 0,
    };
    let argv: Vec<String> = std::env::args().collect();
    for pair in argv.windows(2) {
        match pair[0].as_str() {
            "--jobs" => out.jobs = pair[1].parse().unwrap_or(out.jobs),
            "--seconds" => out.seconds = pair[1].parse().unwrap_or(out.seconds),
            "--completed" => out.completed = pair[1].parse().unwrap_or(out.completed),
            _ => {}
        }
    }
    out
}

async fn done_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'")
        .bind(Noop::QUEUE)
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

async fn wait_done(pool: &PgPool, target: i64) {
    while done_count(pool).await < target {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn push(pool: &PgPool, from: u64, count: u64, per_tx: u64) {
    let mut n = from;
    while n < from + count {
        let batch: Vec<Noop> = (n..(n + per_tx).min(from + count))
            .map(|n| Noop { n })
            .collect();
        let mut tx = pool.begin().await.unwrap();
        store::queue::enqueue_many(&mut tx, &batch).await.unwrap();
        tx.commit().await.unwrap();
        n += batch.len() as u64;
    }
}

fn start_workers(pool: &PgPool) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, rx) = watch::channel(false);
    let mailer = Mailer::Outbox { pool: pool.clone() };
    let settings = WorkerSettings::new(8);
    let server = switchboard::config::Settings::from_lookup(|_| None).expect("defaults");
    let ctx = switchboard::services::Context::new(pool.clone(), std::sync::Arc::new(server))
        .expect("a context");
    (stop, tokio::spawn(jobs::run(ctx, mailer, settings, rx)))
}

#[tokio::main]
async fn main() {
    let args = args();
    let db = common::ScratchDatabase::create().await;
    let url = db.url.clone();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .unwrap();
    store::migrate(&pool).await.unwrap();
    if args.completed > 0 {
        // Finished jobs of another queue (delivered emails are most of them).
        let t = Instant::now();
        push(&pool, 0, args.completed, 10_000).await;
        sqlx::query(
            "UPDATE apalis.jobs SET status = 'Done', done_at = now(), job_type = 'switchboard.send_email'",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("VACUUM ANALYZE apalis.jobs")
            .execute(&pool)
            .await
            .unwrap();
        println!(
            "  table filled with {} finished jobs in {:.0} s",
            args.completed,
            t.elapsed().as_secs_f64()
        );
    }
    let settings = WorkerSettings::new(8);
    let n = args.jobs;
    println!(
        "queue benchmark: {n} no-op jobs, workers as `switchboard work` runs them \
         (batch {}, concurrency {}), {} cores",
        settings.batch_size,
        settings.concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    // 1. Backlog: push everything, then let the workers drain it.
    let t = Instant::now();
    push(&pool, 0, n, 1000).await;
    let push_rate = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (stop, workers) = start_workers(&pool);
    wait_done(&pool, n as i64).await;
    let drain_rate = n as f64 / t.elapsed().as_secs_f64();

    // 2. Live: workers already running while a producer pushes 100 per commit.
    let t = Instant::now();
    push(&pool, n, n, 100).await;
    wait_done(&pool, 2 * n as i64).await;
    let live_rate = n as f64 / t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = workers.await;

    // 3. The ceiling: what this database commits, one row per transaction.
    let ceiling_8 = common::commit_ceiling(&url, 8, args.seconds).await;
    let ceiling_1 = common::commit_ceiling(&url, 1, args.seconds).await;
    pool.close().await;

    println!("  push, 1000 jobs per transaction      {push_rate:>9.0} jobs/s");
    println!("  drain a backlog (push → done)         {drain_rate:>9.0} jobs/s");
    println!("  live: push 100/commit while running   {live_rate:>9.0} jobs/s");
    println!("  ceiling: single-row insert commits    {ceiling_8:>9.0} /s (8 connections)");
    println!("                                        {ceiling_1:>9.0} /s (1 connection)");
    println!(
        "  drain / ceiling (8 connections)       {:>9.2}",
        drain_rate / ceiling_8
    );

    db.drop().await;
}
