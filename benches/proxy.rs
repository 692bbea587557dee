//! Service exposures through the proxy provider, for each backend: N exposures
//! (host name → a backend on loopback) are requested, then the lead approves
//! them all at once and the workers build them through the queue.
//!
//!     cargo bench --bench proxy -- [--routes N] [--concurrency C]
//!
//! Caddy: a Caddy of the benchmark's own (the `caddy` command must be
//! installed) on 127.0.0.1:2119 (admin) and :8580 (HTTP); every host name is
//! asked through it until each answers with the backend's body. Redis: the
//! Ceryx-style store at REDIS_URL (default redis://127.0.0.1:6379), under a
//! key prefix of its own; every key is read until each holds its upstream.
//! Then, with N routes present, one more exposure: from its approval until it
//! answers, and the provider's write of one route change alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use switchboard::jobs::{self, WorkerSettings};
use switchboard::notify::mailer::Mailer;
use switchboard::providers::{Build, Item, Registry};
use switchboard::services::connections::{self, ConnectionRequest};
use switchboard::services::{address_plan, networks};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

#[path = "common/mod.rs"]
mod common;

const CADDY_ADMIN: &str = "127.0.0.1:2119";
const CADDY_HTTP: &str = "127.0.0.1:8580";

/// A backend answering every request with "ok"; its port.
async fn backend() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                // Keep-alive: one answer per request read.
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0
                        || socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A Caddy of the benchmark's own, stopped when dropped.
struct Caddy(std::process::Child, std::path::PathBuf);

impl Caddy {
    async fn start() -> Caddy {
        let dir = std::env::temp_dir().join(format!("switchboard-bench-caddy-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("caddy.json");
        std::fs::write(
            &config,
            json!({"admin": {"listen": CADDY_ADMIN},
                   "apps": {"http": {"servers": {"switchboard": {
                       "listen": [CADDY_HTTP], "automatic_https": {"disable": true}, "routes": []}}}}})
            .to_string(),
        )
        .unwrap();
        let child = std::process::Command::new("caddy")
            .args(["run", "--config"])
            .arg(&config)
            .env("XDG_DATA_HOME", &dir)
            .env("XDG_CONFIG_HOME", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("caddy is installed (apt install caddy)");
        // Stopped by Drop, even when it does not come up.
        let caddy = Caddy(child, dir);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(CADDY_ADMIN).await.is_ok() {
                return caddy;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("caddy did not start");
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

enum Backend {
    Caddy(reqwest::Client),
    Redis(redis::aio::MultiplexedConnection, String),
}

impl Backend {
    /// Those of `hosts` whose route does not work yet.
    async fn waiting(&mut self, hosts: &BTreeSet<String>, upstream: &str) -> BTreeSet<String> {
        match self {
            Backend::Caddy(http) => {
                futures::stream::iter(hosts.iter().cloned())
                    .map(|host| {
                        let http = http.clone();
                        async move {
                            let body = match http
                                .get(format!("http://{CADDY_HTTP}/"))
                                .header("Host", &host)
                                .send()
                                .await
                            {
                                Ok(r) => r.text().await.unwrap_or_default(),
                                Err(_) => String::new(),
                            };
                            (body != "ok").then_some(host)
                        }
                    })
                    .buffer_unordered(64)
                    .filter_map(|h| async { h })
                    .collect()
                    .await
            }
            Backend::Redis(redis, prefix) => {
                let hosts: Vec<&String> = hosts.iter().collect();
                let mut waiting = BTreeSet::new();
                for chunk in hosts.chunks(1000) {
                    let mut get = redis::cmd("MGET");
                    for host in chunk {
                        get.arg(format!("{prefix}:routes:{host}"));
                    }
                    let values: Vec<Option<String>> = get.query_async(redis).await.unwrap();
                    for (host, value) in chunk.iter().zip(values) {
                        if value.as_deref() != Some(upstream) {
                            waiting.insert((*host).clone());
                        }
                    }
                }
                waiting
            }
        }
    }

    /// Waits until every one of `hosts` works; how long it took.
    async fn until_all_work(&mut self, hosts: &[String], upstream: &str) -> Duration {
        let started = Instant::now();
        let mut waiting: BTreeSet<String> = hosts.iter().cloned().collect();
        while !waiting.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(900), "timed out");
            waiting = self.waiting(&waiting, upstream).await;
            if !waiting.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        started.elapsed()
    }
}

async fn run(name: &str, n: usize, concurrency: usize) {
    let _caddy = if name == "caddy" {
        Some(Caddy::start().await)
    } else {
        None
    };
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("ceryx-bench-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let w = common::world::world(&[]).await;
    let (ctx, pool) = (&w.ctx, w.ctx.pool.clone());
    let port = backend().await;
    let upstream = format!("127.0.0.1:{port}");

    address_plan::create_pool(
        ctx,
        &w.admin,
        address_plan::PoolRequest {
            name: "loopback".into(),
            cidr: "127.0.0.0/8".into(),
            parent_id: None,
            labels: json!({}),
            default_prefix_length: None,
        },
        None,
    )
    .await
    .unwrap();
    let sandbox = networks::list_accounts(ctx, &w.admin).await.unwrap()[0].id;
    let lab = networks::create_network(
        ctx,
        &w.admin,
        networks::NetworkRequest {
            name: "payments-lab".into(),
            team: "payments".into(),
            provider_account_id: Some(sandbox),
            region: "local".into(),
            environment: None,
            pool_id: None,
            prefix_length: None,
            cidr: Some("127.0.0.0/16".into()),
            external_id: None,
            tags: json!({}),
        },
        None,
    )
    .await
    .unwrap()
    .network
    .id;
    let settings = match name {
        "caddy" => {
            json!({"backend": "caddy", "admin_url": format!("http://{CADDY_ADMIN}"), "address": "127.0.0.1"})
        }
        _ => {
            json!({"backend": "redis", "redis_url": redis_url, "key_prefix": prefix, "address": "127.0.0.1"})
        }
    };
    networks::create_account(
        ctx,
        &w.admin,
        networks::AccountRequest {
            kind: "proxy".into(),
            name: "edge".into(),
            regions: vec![],
            settings,
            credentials_ref: None,
        },
    )
    .await
    .unwrap();
    let ask = |host: &str| ConnectionRequest {
        kind: "service-exposure".into(),
        reason: "benchmark".into(),
        destination_network_id: Some(lab),
        target_address: Some("127.0.0.1".into()),
        target_port: Some(port),
        hostname: Some(host.to_owned()),
        ..ConnectionRequest::default()
    };
    let hosts: Vec<String> = (0..n).map(|i| format!("r{i}.bench.test")).collect();

    // Requested outside the measurement.
    let made: Vec<Uuid> = futures::stream::iter(hosts.iter())
        .map(|host| {
            let (ctx, requester, ask) = (ctx, &w.requester, ask(host));
            async move {
                connections::request(ctx, requester, ask, None)
                    .await
                    .unwrap()
                    .connection
                    .id
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mailer = Mailer::from_settings(&w.settings, &pool).unwrap();
    let workers = tokio::spawn(jobs::run(
        ctx.clone(),
        mailer,
        WorkerSettings::new(concurrency),
        stop_rx,
    ));

    let mut backend = match name {
        "caddy" => Backend::Caddy(reqwest::Client::new()),
        _ => Backend::Redis(
            redis::Client::open(redis_url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
            prefix.clone(),
        ),
    };

    // The lead approves them all at once; the workers take it from there.
    let started = Instant::now();
    futures::stream::iter(made.iter().copied())
        .map(|id| {
            let lead = &w.payments_lead;
            async move { connections::approve(ctx, lead, id, "", None).await.unwrap() }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let approved_in = started.elapsed();
    backend.until_all_work(&hosts, &upstream).await;
    let all_work = started.elapsed();
    // A route works a moment before its connection is marked active.
    common::world::until_active(&pool, n, started, Duration::from_secs(900)).await;
    let all_active = started.elapsed();

    // One more, with N present: from its approval until it works.
    let one = connections::request(ctx, &w.requester, ask("one-more.bench.test"), None)
        .await
        .unwrap()
        .connection
        .id;
    let one_started = Instant::now();
    connections::approve(ctx, &w.payments_lead, one, "", None)
        .await
        .unwrap();
    backend
        .until_all_work(&["one-more.bench.test".to_owned()], &upstream)
        .await;
    let one_end_to_end = one_started.elapsed();
    let _ = stop.send(true);
    let _ = workers.await;

    // The provider's write alone: the last route sent somewhere else, 5 times.
    let accounts = switchboard::store::provider_accounts::list(&pool)
        .await
        .unwrap();
    let edge = Registry::build(&pool, &accounts).get("edge").unwrap();
    let mut writes = Vec::new();
    for i in 0..5 {
        let item = Item {
            label: "proxy route".into(),
            name: "one-more.bench.test/".into(),
            detail: String::new(),
            build: Build::ProxyRoute {
                hostname: "one-more.bench.test".into(),
                path: "/".into(),
                upstream: std::net::SocketAddr::from(([127, 0, 0, 1], 20000 + i)),
            },
        };
        let t = Instant::now();
        let step = edge.apply(one, &item).await.unwrap();
        writes.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(step.action, "repaired");
    }
    writes.sort_by(f64::total_cmp);

    println!("proxy ({name}): {n} service exposures, {concurrency} workers per job type");
    println!(
        "  approvals                        {:.2} s for {n}",
        approved_in.as_secs_f64()
    );
    println!(
        "  every route working              {:.2} s after the first approval, {:.2} s after the last",
        all_work.as_secs_f64(),
        all_work.as_secs_f64() - approved_in.as_secs_f64()
    );
    println!(
        "  every connection active          {:.2} s after the first approval",
        all_active.as_secs_f64()
    );
    println!(
        "  one more with {n} present         {:.0} ms from its approval until it works",
        one_end_to_end.as_secs_f64() * 1000.0
    );
    println!(
        "  one route change, provider alone  median {:.1} ms, max {:.1} ms (5 changes)",
        writes[2], writes[4]
    );
    if let Backend::Redis(redis, prefix) = &mut backend {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(redis)
            .await
            .unwrap();
        let mut del = redis::cmd("DEL");
        for k in &keys {
            del.arg(k);
        }
        if !keys.is_empty() {
            let _: () = del.query_async(redis).await.unwrap();
        }
    }
    pool.close().await;
    w.db.drop().await;
}

#[tokio::main]
async fn main() {
    let n = common::world::arg("--routes", 10_000) as usize;
    let concurrency = common::world::arg("--concurrency", 256) as usize;
    for backend in ["caddy", "redis"] {
        run(backend, n, concurrency).await;
    }
}
