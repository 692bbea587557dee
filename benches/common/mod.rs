//! Shared by the benchmarks: a scratch database, the commit-rate ceiling, and a
//! world of two teams with a sandbox network each. Each benchmark uses part of it.
#![allow(dead_code)]

pub mod world;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

fn admin_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one run, dropped at its end.
pub struct ScratchDatabase {
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create() -> Self {
        let name = format!("sb_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("connect to the database server (BENCH_DATABASE_URL)");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop(self) {
        let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {} WITH (FORCE)",
                self.name
            )))
            .await
            .unwrap();
    }
}

/// Single-row INSERT commits per second from `connections` clients: the most
/// this database can commit, measured in the same run as the figure it bounds.
pub async fn commit_ceiling(url: &str, connections: usize, seconds: u64) -> f64 {
    let mut setup = PgConnection::connect(url).await.unwrap();
    setup
        .execute(
            "CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, payload text)",
        )
        .await
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, count) = (url.to_owned(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO bench_commits (payload) VALUES ($1)")
                    .bind("{\"n\":1}")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / seconds as f64
}
