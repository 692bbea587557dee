//! Network creation through the provider: N networks (a /24 each, three
//! subnets) are asked for by a member in an aws account pointing at moto that
//! wants the lead's approval; then the lead approves all of them at once and the
//! workers build them (a VPC found by tag or made, three subnets, steps, status,
//! audit). Needs moto (`source tests/peers.sh && ensure_moto`, or MOTO_URL).
//!
//!     cargo bench --bench networks -- [--networks N] [--concurrency C]
//!
//! It reports networks/s and p50/p99 from the approval to `ready` (both read
//! from the audit log), and checks that each network has one VPC with its range.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard::jobs::{self, WorkerSettings};
use switchboard::notify::mailer::Mailer;
use switchboard::services::networks::{self, AccountRequest, NetworkRequest};
use uuid::Uuid;

#[path = "common/mod.rs"]
mod common;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A credentials file for moto (mode 600), removed when the run ends.
fn credentials() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("switchboard-bench-{}", Uuid::new_v4()));
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = bench\naws_secret_access_key = bench\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::main]
async fn main() {
    let n = common::world::arg("--networks", 200) as usize;
    let concurrency = common::world::arg("--concurrency", 16) as usize;
    let moto = std::env::var("MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".into());
    let common::world::World {
        db,
        ctx,
        settings,
        requester,
        payments_lead,
        admin,
        ..
    } = common::world::world(&[]).await;
    let pool = ctx.pool.clone();
    let file = credentials();
    let account = networks::create_account(
        &ctx,
        &admin,
        AccountRequest {
            kind: "aws".into(),
            name: "bench-aws".into(),
            regions: vec!["us-east-1".into()],
            settings: serde_json::json!({"endpoint_url": moto, "network_approval": "lead"}),
            credentials_ref: Some(format!("file:{}", file.display())),
        },
    )
    .await
    .unwrap();
    let corp: Uuid = sqlx::query_scalar("SELECT id FROM pools WHERE name = 'corp'")
        .fetch_one(&pool)
        .await
        .unwrap();

    // Asked for by the member, outside the measurement: each waits for approval.
    let asked: Vec<(Uuid, String)> = futures::stream::iter(0..n)
        .map(|i| {
            let (ctx, requester) = (&ctx, &requester);
            async move {
                let d = networks::create_network(
                    ctx,
                    requester,
                    NetworkRequest {
                        name: format!("bench-{i}"),
                        team: "payments".into(),
                        provider_account_id: Some(account.id),
                        region: "us-east-1".into(),
                        environment: None,
                        pool_id: Some(corp),
                        prefix_length: Some(24),
                        cidr: None,
                        external_id: None,
                        tags: serde_json::json!({}),
                    },
                    None,
                )
                .await
                .unwrap();
                (d.network.id, d.network.plan_hash.unwrap())
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

    // The lead approves them all at once; the workers take it from there.
    let started = Instant::now();
    futures::stream::iter(asked.iter())
        .map(|(id, hash)| {
            let (ctx, lead) = (&ctx, &payments_lead);
            async move {
                networks::approve_network(ctx, lead, *id, hash)
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let approved_in = started.elapsed();
    loop {
        let ready: i64 =
            sqlx::query_scalar("SELECT count(*) FROM networks WHERE status IN ('ready', 'failed')")
                .fetch_one(&pool)
                .await
                .unwrap();
        if ready as usize >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "{ready} of {n} networks built after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();

    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM ready.at - approved.at)::float8 * 1000
           FROM audit_events approved
           JOIN audit_events ready
             ON ready.object_id = approved.object_id AND ready.action = 'network.ready'
          WHERE approved.action = 'network.approved'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    latencies.sort_by(f64::total_cmp);
    let (failed, vpcs): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'failed'), count(DISTINCT external_id)
           FROM networks WHERE plan IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let _ = stop.send(true);
    let _ = workers.await;

    println!(
        "networks: {n} VPCs (a /24 and three subnets each) in moto, {concurrency} workers per job type"
    );
    println!(
        "  throughput                       {:>9.1} networks/s ({n} in {:.2} s; the approvals took {:.2} s)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        approved_in.as_secs_f64()
    );
    println!(
        "  approval → VPC ready             p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!("  distinct VPCs                    {vpcs} (expected {n}); failed: {failed}");
    assert_eq!(failed, 0, "every network was built");
    assert_eq!(vpcs as usize, n, "one VPC per network");
    assert_eq!(
        latencies.len(),
        n,
        "every network has its approval and its readiness"
    );
    let _ = std::fs::remove_file(file);
    pool.close().await;
    db.drop().await;
}
