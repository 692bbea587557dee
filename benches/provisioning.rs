//! Provisioning throughput through the queue: N connections between two sandbox
//! networks (zero latency) are requested and approved by the first lead; then the
//! second lead approves all of them at once, and the workers build them end to
//! end (re-plan, five sandbox resources, steps, status, audit, email).
//!
//!     cargo bench --bench provisioning -- [--connections N] [--concurrency C]
//!
//! It reports connections/s, p50/p99 from the approval to `active` (both read
//! from the audit log), the database's commits/s during the run, and the commit
//! ceiling of single-row inserts measured right after, in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard::jobs::{self, WorkerSettings};
use switchboard::notify::mailer::Mailer;
use switchboard::services::connections;
use uuid::Uuid;

#[path = "common/mod.rs"]
mod common;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn commits(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::main]
async fn main() {
    let n = common::world::arg("--connections", 2000) as usize;
    let concurrency = common::world::arg("--concurrency", 16) as usize;
    let common::world::World {
        db,
        ctx,
        settings,
        requester,
        payments_lead,
        search_lead,
        ask,
        ..
    } = common::world::world(&[]).await;
    let pool = ctx.pool.clone();

    // Requested and approved by one side, outside the measurement.
    let made: Vec<Uuid> = futures::stream::iter(0..n)
        .map(|_| {
            let (ctx, requester, lead, ask) = (&ctx, &requester, &payments_lead, ask.clone());
            async move {
                let c = connections::request(ctx, requester, ask, None)
                    .await
                    .unwrap();
                let id = c.connection.id;
                connections::approve(ctx, lead, id, "", None).await.unwrap();
                id
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mailer = Mailer::from_settings(&settings, &pool).unwrap();
    let workers = tokio::spawn(jobs::run(
        ctx.clone(),
        mailer,
        WorkerSettings::new(concurrency),
        stop_rx,
    ));

    // The other side approves them all at once; the workers take it from there.
    let commits_before = commits(&pool).await;
    let started = Instant::now();
    futures::stream::iter(made.iter().copied())
        .map(|id| {
            let (ctx, lead) = (&ctx, &search_lead);
            async move { connections::approve(ctx, lead, id, "", None).await.unwrap() }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let approved_in = started.elapsed();
    common::world::until_active(&pool, n, started, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    let commits_during = commits(&pool).await - commits_before;

    // From the last approval to `active`, per connection, from the audit log.
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM active.at - approved.at)::float8 * 1000
           FROM (SELECT object_id, max(at) AS at FROM audit_events
                  WHERE action = 'connection.approved' GROUP BY object_id) approved
           JOIN audit_events active
             ON active.object_id = approved.object_id AND active.action = 'connection.active'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    latencies.sort_by(f64::total_cmp);
    let resources: i64 = sqlx::query_scalar("SELECT count(*) FROM sandbox_resources")
        .fetch_one(&pool)
        .await
        .unwrap();
    let _ = stop.send(true);
    let _ = workers.await;
    let ceiling = common::commit_ceiling(&db.url, 32, 5).await;

    println!("provisioning: {n} sandbox connections, {concurrency} workers per job type");
    println!(
        "  throughput                       {:>9.0} connections/s ({n} in {:.2} s; the approvals took {:.2} s)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        approved_in.as_secs_f64()
    );
    println!(
        "  approval → active                p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "  resources built                  {resources} (expected {})",
        n * 5
    );
    println!(
        "  commits during the run           {:>9.0} /s ({:.1} per connection)",
        commits_during as f64 / elapsed.as_secs_f64(),
        commits_during as f64 / n as f64
    );
    println!("  ceiling: single-row commits      {ceiling:>9.0} /s (32 connections)");
    assert_eq!(
        latencies.len(),
        n,
        "every connection has its approval and its activation"
    );
    assert_eq!(resources as usize, n * 5, "each built once");
    pool.close().await;
    db.drop().await;
}
