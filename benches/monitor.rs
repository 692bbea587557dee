//! The monitor at scale: how long one sweep takes with 10,000 active sandbox
//! connections and more (doubling until a sweep no longer fits the interval, or
//! --max is reached), then the time from a change made behind Switchboard's back
//! to the drift email reaching the SMTP sink.
//!
//!     cargo bench --bench monitor -- [--start 10000] [--max 160000] [--interval 60]
//!     cargo bench --bench monitor -- --process 100000,1000000
//!
//! With `--process`, it measures instead, at each of those counts, a real
//! `switchboard work` process: how long its first sweep takes, and its peak
//! resident memory (VmHWM) while sweeping.
//!
//! Connections are cloned in SQL from one built through the services, each with
//! its own five sandbox resources. The email goes to maildev when MAILDEV_SMTP_URL
//! and MAILDEV_API_URL are set (tests/run starts it), else to the outbox.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::time::{Duration, Instant};

use switchboard::jobs::{self, WorkerSettings};
use switchboard::notify::mailer::Mailer;
use switchboard::services::{connections, monitor, provisioning};
use uuid::Uuid;

#[path = "common/mod.rs"]
mod common;

/// Grows the active connections to `n` by cloning `template` (sides and
/// sandbox resources included).
async fn grow_to(pool: &sqlx::PgPool, template: Uuid, n: i64) {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM connections WHERE status = 'active'")
        .fetch_one(pool)
        .await
        .unwrap();
    if have >= n {
        return;
    }
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "CREATE TEMP TABLE new_ids ON COMMIT DROP AS
         SELECT gen_random_uuid() AS id FROM generate_series(1, $1)",
    )
    .bind(n - have)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO connections (id, kind, status, requested_by, reason, spec, plan, plan_hash,
                                  desired_state, observed_state, observed_since)
         SELECT n.id, c.kind, c.status, c.requested_by, c.reason, c.spec, c.plan, c.plan_hash,
                c.desired_state, 'matches', now()
           FROM new_ids n, connections c WHERE c.id = $1",
    )
    .bind(template)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO connection_sides (connection_id, team_id, decision, decided_by, decided_at, plan_hash)
         SELECT n.id, s.team_id, s.decision, s.decided_by, s.decided_at, s.plan_hash
           FROM new_ids n, connection_sides s WHERE s.connection_id = $1",
    )
    .bind(template)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sandbox_resources (id, account_id, connection_id, kind, name, detail)
         SELECT 'sbx-' || substr(md5(random()::text), 1, 12), r.account_id, n.id, r.kind, r.name, r.detail
           FROM new_ids n, sandbox_resources r WHERE r.connection_id = $1",
    )
    .bind(template)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}

/// A sweep now, whatever the last one did.
async fn sweep_now(ctx: &switchboard::services::Context) -> monitor::SweepReport {
    sqlx::query("UPDATE monitor_sweeps SET started_at = now() - interval '1 day'")
        .execute(&ctx.pool)
        .await
        .unwrap();
    let report = monitor::sweep(ctx).await.unwrap();
    assert!(!report.skipped);
    report
}

async fn delivered(pool: &sqlx::PgPool, maildev: Option<&str>, to: &str) -> bool {
    match maildev {
        Some(api) => {
            let all: Vec<serde_json::Value> = reqwest::get(format!("{api}/api/email"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all.iter().any(|m| {
                m["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Drifted:"))
                    && m["to"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|a| a["address"] == to))
            })
        }
        None => sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox_emails WHERE to_address = $1 AND subject LIKE 'Drifted:%')",
        )
        .bind(to)
        .fetch_one(pool)
        .await
        .unwrap(),
    }
}

/// One sweep by a real `switchboard work` process over `n` connections: (the
/// sweep's seconds, connections observed, the process's peak RSS in MiB).
async fn process_sweep(pool: &sqlx::PgPool, url: &str) -> (f64, i64, f64) {
    sqlx::query(
        "UPDATE monitor_sweeps SET started_at = now() - interval '1 day', finished_at = NULL",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("work")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("SWITCHBOARD_OUTBOX", "1")
        .env("SWITCHBOARD_LOG", "warn")
        // One sweep at start, none after it.
        .env("SWITCHBOARD_MONITOR_INTERVAL", "86400")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let peak = |pid: u32| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    };
    let figures = loop {
        let done: Option<(i32, i32)> = sqlx::query_as(
            "SELECT duration_ms, observed FROM monitor_sweeps WHERE finished_at IS NOT NULL",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some((ms, observed)) = done {
            break (
                f64::from(ms) / 1000.0,
                i64::from(observed),
                peak(worker.id()),
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "no sweep finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = worker.kill();
    let _ = worker.wait();
    figures
}

#[tokio::main]
async fn main() {
    let process: Vec<i64> = std::env::args()
        .skip_while(|a| a != "--process")
        .nth(1)
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let start = common::world::arg("--start", 10_000) as i64;
    let max = common::world::arg("--max", 160_000) as i64;
    let interval = common::world::arg("--interval", 60);
    let smtp = std::env::var("MAILDEV_SMTP_URL").ok();
    let maildev = std::env::var("MAILDEV_API_URL")
        .ok()
        .filter(|_| smtp.is_some());
    // A recipient of its own, so earlier runs' emails do not count.
    let lead = format!("lead-{}@bench.test", Uuid::new_v4().simple());
    let mut env = vec![("SWITCHBOARD_MONITOR_INTERVAL", interval.to_string())];
    if let Some(url) = &smtp {
        env.push(("SWITCHBOARD_SMTP_URL", url.clone()));
    }
    let w = common::world::world(&env).await;
    let ctx = w.ctx.clone();
    sqlx::query("UPDATE users SET email = $1 WHERE email = 'pat@bench.test'")
        .bind(&lead)
        .execute(&ctx.pool)
        .await
        .unwrap();

    // One connection built for real; the rest are its copies.
    let c = connections::request(&ctx, &w.requester, w.ask.clone(), None)
        .await
        .unwrap();
    let id = c.connection.id;
    for lead in [&w.payments_lead, &w.search_lead] {
        connections::approve(&ctx, lead, id, "", None)
            .await
            .unwrap();
    }
    provisioning::provision(&ctx, id, &c.connection.plan_hash, false)
        .await
        .unwrap();

    if !process.is_empty() {
        println!("monitor: one `switchboard work` process sweeping sandbox connections");
        for n in process {
            grow_to(&ctx.pool, id, n).await;
            let (seconds, observed, rss) = process_sweep(&ctx.pool, &w.db.url).await;
            println!(
                "  {observed:>8} connections: first sweep {seconds:>6.2} s ({:>7.0} connections/s), peak RSS {rss:.0} MiB",
                observed as f64 / seconds
            );
        }
        ctx.pool.close().await;
        w.db.drop().await;
        return;
    }
    println!("monitor: sandbox connections, interval {interval} s");
    let mut n = start;
    let mut largest = 0;
    let mut at_start = None;
    loop {
        grow_to(&ctx.pool, id, n).await;
        sweep_now(&ctx).await; // warm
        let report = sweep_now(&ctx).await;
        let seconds = report.duration.as_secs_f64();
        println!(
            "  {:>7} connections: sweep {seconds:>6.2} s ({:>7.0} connections/s), {} drifted",
            report.observed,
            report.observed as f64 / seconds,
            report.drifted
        );
        if n == start {
            at_start = Some(seconds);
        }
        if seconds > interval as f64 {
            break;
        }
        largest = report.observed;
        if n >= max {
            break;
        }
        n = (n * 2).min(max);
    }
    println!("  largest count swept within the interval: {largest}");

    // Drift to inbox at the starting size, with the scheduler and workers running
    // and the interval set to fit the sweep.
    sqlx::query(
        "DELETE FROM connections WHERE id IN (
             SELECT id FROM connections WHERE id <> $1 AND status = 'active'
             OFFSET $2)",
    )
    .bind(id)
    .bind(start - 1)
    .execute(&ctx.pool)
    .await
    .unwrap();
    let every = (at_start.unwrap_or(1.0) * 2.0).ceil().max(2.0) as i64;
    let mut settings = (*w.settings).clone();
    settings.monitor_interval_seconds = every;
    let ctx = switchboard::services::Context::new(ctx.pool.clone(), std::sync::Arc::new(settings))
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mailer = Mailer::from_settings(&ctx.settings, &ctx.pool).unwrap();
    tokio::spawn(jobs::schedule::run(ctx.clone(), stop_rx.clone()));
    tokio::spawn(jobs::run(
        ctx.clone(),
        mailer,
        WorkerSettings::new(8),
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_secs(every as u64)).await;
    let changed = Instant::now();
    sqlx::query("DELETE FROM sandbox_resources WHERE connection_id = $1 AND kind = 'route'")
        .bind(id)
        .execute(&ctx.pool)
        .await
        .unwrap();
    while !delivered(&ctx.pool, maildev.as_deref(), &lead).await {
        assert!(
            changed.elapsed() < Duration::from_secs(every as u64 * 10),
            "no email"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = changed.elapsed().as_secs_f64();
    println!(
        "  drift to inbox ({}), {start} connections, interval {every} s: {took:.2} s ({:.2} intervals)",
        if maildev.is_some() {
            "maildev over SMTP"
        } else {
            "outbox"
        },
        took / every as f64
    );
    let _ = stop.send(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    ctx.pool.close().await;
    w.db.drop().await;
}
