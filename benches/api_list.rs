//! The connection list through the API at scale: `wrk` on
//! `GET /api/v1/connections?limit=50` against a `switchboard serve` process whose
//! database holds 100,000 connection requests. Measured as an admin (who sees
//! every request) and as a team member (who sees the tenth that involves their
//! team), on the first page and on a page deep in the list (its cursor).
//!
//!     cargo bench --bench api_list -- [--connections 100000] [--seconds 20] [--threads 2] [--clients 8]
//!
//! Needs `wrk` (Debian: apt install wrk). Connections are cloned in SQL from one
//! made through the services, a second apart, each with its two sides: nine in
//! ten between teams `search` and `ads`, requested by someone else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::domain::team::TeamSlug;
use switchboard::services::{connections, tokens};
use uuid::Uuid;

#[path = "common/mod.rs"]
mod common;

/// Clones `template` into `n - 1` more requests, newest first a second apart.
async fn clone_requests(pool: &sqlx::PgPool, template: Uuid, n: i64, other: Uuid, ads: Uuid) {
    let payments: Uuid = sqlx::query_scalar("SELECT id FROM teams WHERE slug = 'payments'")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "CREATE TEMP TABLE new_ids ON COMMIT DROP AS
         SELECT gen_random_uuid() AS id, i FROM generate_series(1, $1) AS i",
    )
    .bind(n - 1)
    .execute(&mut *tx)
    .await
    .unwrap();
    // Every column as the template has it, but the id, the time and (nine in
    // ten) the requester.
    sqlx::query(
        "INSERT INTO connections
         SELECT (jsonb_populate_record(NULL::connections, to_jsonb(c) || jsonb_build_object(
                   'id', n.id,
                   'created_at', c.created_at - n.i * interval '1 second',
                   'updated_at', c.created_at - n.i * interval '1 second',
                   'requested_by', CASE WHEN n.i % 10 = 0 THEN c.requested_by ELSE $2 END))).*
           FROM new_ids n, connections c WHERE c.id = $1",
    )
    .bind(template)
    .bind(other)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO connection_sides
         SELECT (jsonb_populate_record(NULL::connection_sides, to_jsonb(s) || jsonb_build_object(
                   'connection_id', n.id,
                   'team_id', CASE WHEN n.i % 10 <> 0 AND s.team_id = $2 THEN $3 ELSE s.team_id END))).*
           FROM new_ids n, connection_sides s WHERE s.connection_id = $1",
    )
    .bind(template)
    .bind(payments)
    .bind(ads)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}

/// A free port on the loopback address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// wrk's summary: (requests/s, p50 ms, p99 ms, non-2xx answers).
fn wrk(url: &str, token: &str, threads: u64, clients: u64, seconds: u64) -> (f64, f64, f64, u64) {
    let out = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{clients}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Authorization: Bearer {token}"),
            url,
        ])
        .output()
        .expect("run wrk (apt install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    let after = |prefix: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.trim_start()[prefix.len()..].split_whitespace().next())
            .map(str::to_owned)
    };
    let ms = |v: String| -> f64 {
        if let Some(us) = v.strip_suffix("us") {
            us.parse::<f64>().unwrap() / 1000.0
        } else if let Some(ms) = v.strip_suffix("ms") {
            ms.parse().unwrap()
        } else if let Some(s) = v.strip_suffix('s') {
            s.parse::<f64>().unwrap() * 1000.0
        } else {
            panic!("a latency wrk did not write as expected: {v}")
        }
    };
    let rps: f64 = after("Requests/sec:").unwrap().parse().unwrap();
    let p50 = ms(after("50%").unwrap());
    let p99 = ms(after("99%").unwrap());
    let non_2xx = after("Non-2xx or 3xx responses:").map_or(0, |n| n.parse().unwrap());
    (rps, p50, p99, non_2xx)
}

#[tokio::main]
async fn main() {
    let n = common::world::arg("--connections", 100_000) as i64;
    let seconds = common::world::arg("--seconds", 20);
    let threads = common::world::arg("--threads", 2);
    let clients = common::world::arg("--clients", 8);
    let world = common::world::world(&[]).await;
    let (ctx, db) = (&world.ctx, &world.db);

    let template = connections::request(ctx, &world.requester, world.ask.clone(), None)
        .await
        .unwrap()
        .connection
        .id;
    let ads = {
        let mut conn = ctx.pool.acquire().await.unwrap();
        let slug = TeamSlug::parse("ads").unwrap();
        switchboard::store::teams::ensure(&mut conn, &slug, "Ads")
            .await
            .unwrap()
            .id
    };
    let started = Instant::now();
    clone_requests(&ctx.pool, template, n, world.admin.actor.user_id, ads).await;
    println!(
        "{n} connection requests in the database ({:.1} s to make them)",
        started.elapsed().as_secs_f64()
    );
    let admin_token = tokens::create(ctx, &world.admin, "bench", None, None)
        .await
        .unwrap()
        .secret;
    let member_token = tokens::create(ctx, &world.requester, "bench", None, None)
        .await
        .unwrap()
        .secret;

    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))
        // `serve` fails closed without an identity provider and mail.
        .env("SWITCHBOARD_DEV_SIGN_IN", "1")
        .env("SWITCHBOARD_OUTBOX", "1")
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while http.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A cursor deep in each caller's list: the page after the first half.
    let deep_cursor = |token: String, skip: i64| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut cursor: Option<String> = None;
            let mut seen = 0;
            while seen < skip {
                let mut url = format!("{base}/api/v1/connections?limit=500");
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let answer = http.get(url).bearer_auth(&token).send().await.unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
                cursor = answer
                    .headers()
                    .get("next-cursor")
                    .map(|v| v.to_str().unwrap().to_owned());
                seen += 500;
            }
            cursor.unwrap()
        }
    };
    let admin_deep = deep_cursor(admin_token.clone(), n / 2).await;
    let member_deep = deep_cursor(member_token.clone(), n / 20).await;

    println!(
        "wrk -t{threads} -c{clients} -d{seconds}s, GET /api/v1/connections?limit=50 \
         (`switchboard serve`, debug={})",
        cfg!(debug_assertions)
    );
    println!(
        "{:<32} {:>10} {:>9} {:>9} {:>8}",
        "caller and page", "req/s", "p50 ms", "p99 ms", "non-2xx"
    );
    for (label, token, cursor) in [
        ("admin (all 100%), first page", &admin_token, None),
        ("admin, page at the middle", &admin_token, Some(&admin_deep)),
        ("member (10%), first page", &member_token, None),
        (
            "member, page at the middle",
            &member_token,
            Some(&member_deep),
        ),
    ] {
        let mut url = format!("{base}/api/v1/connections?limit=50");
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (rps, p50, p99, non_2xx) = wrk(&url, token, threads, clients, seconds);
        println!("{label:<32} {rps:>10.0} {p50:>9.2} {p99:>9.2} {non_2xx:>8}");
        assert_eq!(non_2xx, 0, "every answer must be a page");
    }

    let _ = server.kill();
    let _ = server.wait();
    world.db.drop().await;
}
