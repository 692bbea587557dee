//! Allocation throughput through the HTTP API: 32 concurrent clients carve a /16
//! into /28s (4,096 allocations) until the pool is full; then a check that
//! nothing overlaps; then the database's commit ceiling measured in the same run.
//!
//!     cargo bench --bench allocations -- [--clients N] [--seconds S]
//!
//! It also measures authenticated API reads with the same clients: the HTTP layer's
//! own ceiling on this machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use switchboard::app::Application;
use switchboard::config::Settings;
use switchboard::services::{Context, tokens};
use switchboard::telemetry::Metrics;

#[path = "common/mod.rs"]
mod common;

#[tokio::main]
async fn main() {
    let clients = common::world::arg("--clients", 32) as usize;
    let seconds = common::world::arg("--seconds", 5);
    let db = common::ScratchDatabase::create().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(40)
        .connect(&db.url)
        .await
        .unwrap();
    switchboard::store::migrate(&pool).await.unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let settings = Settings::from_lookup(|k| match k {
        "DATABASE_URL" => Some(db.url.clone()),
        "SWITCHBOARD_BASE_URL" => Some(format!("http://127.0.0.1:{port}")),
        _ => None,
    })
    .unwrap();
    let ctx = Context::new(pool.clone(), Arc::new(settings)).unwrap();
    let token = tokens::create_bootstrap_token(&ctx, "bench@example.test", "bench", true, None)
        .await
        .unwrap()
        .secret;
    let app = Application::build(listener, ctx, Arc::new(Metrics::new())).unwrap();
    tokio::spawn(app.into_server());

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let (http_reads, token_reads, base_reads) = (http.clone(), token.clone(), base.clone());
    let post = move |path: String, body: serde_json::Value| {
        let (http, token, base) = (http.clone(), token.clone(), base.clone());
        async move {
            http.post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let space: serde_json::Value = post(
        "/api/v1/pools".into(),
        serde_json::json!({"name": "bench", "cidr": "10.0.0.0/8"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let target: serde_json::Value = post(
        "/api/v1/pools".into(),
        serde_json::json!({"name": "carve", "cidr": "10.99.0.0/16", "parent_id": space["id"], "default_prefix_length": 28}),
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!(
        "/api/v1/pools/{}/allocations",
        target["id"].as_str().unwrap()
    );

    println!(
        "allocation benchmark: {clients} concurrent API clients carve 10.99.0.0/16 into /28s (4,096 allocations)"
    );
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (post, path) = (post.clone(), path.clone());
        workers.push(tokio::spawn(async move {
            let mut made = 0u64;
            loop {
                let res = post(path.clone(), serde_json::json!({"prefix_length": 28})).await;
                match res.status().as_u16() {
                    201 => made += 1,
                    409 => return made, // the pool is full
                    other => panic!(
                        "unexpected {other}: {}",
                        res.text().await.unwrap_or_default()
                    ),
                }
            }
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = total as f64 / elapsed;

    let overlaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM allocations a JOIN allocations b ON a.id < b.id AND a.cidr && b.cidr",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // What the HTTP layer alone allows on this machine: the same clients reading
    // `/api/v1/me` (token check, one query), so the allocation rate can be read
    // against it as well as against the commit ceiling.
    let reads = {
        let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
        let mut readers = Vec::new();
        for _ in 0..clients {
            let (http, token, base) = (http_reads.clone(), token_reads.clone(), base_reads.clone());
            readers.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let res = http
                        .get(format!("{base}/api/v1/me"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    res.bytes().await.unwrap();
                    n += 1;
                }
                n
            }));
        }
        let mut n = 0;
        for r in readers {
            n += r.await.unwrap();
        }
        n as f64 / seconds as f64
    };
    let ceiling = common::commit_ceiling(&db.url, clients.min(32), seconds).await;
    pool.close().await;

    println!("  allocations made                 {total:>9}");
    println!("  allocations per second           {rate:>9.0} /s ({elapsed:.1} s)");
    println!("  overlapping pairs                {overlaps:>9}");
    println!(
        "  ceiling: single-row commits      {ceiling:>9.0} /s ({} connections)",
        clients.min(32)
    );
    println!("  allocations / ceiling            {:>9.2}", rate / ceiling);
    println!(
        "  ceiling: authenticated API reads {reads:>9.0} /s (GET /api/v1/me, {clients} clients)"
    );
    println!("  allocations / API reads          {:>9.2}", rate / reads);
    assert_eq!(total, 4096, "the /16 is carved completely");
    assert_eq!(overlaps, 0, "no two allocations overlap");
    db.drop().await;
}
