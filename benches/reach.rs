//! "Who can reach this network on this port" over 100,000 open connections,
//! measured twice: the model alone (flows between 2,000 networks of /20s,
//! evaluated as the service does once it has read them), then the service
//! itself over a scratch PostgreSQL database holding that many active
//! connections between 200 networks: the first question (which reads the
//! model), the next ones (the model kept: one indexed check that nothing
//! changed), and a question right after a connection changed (read again).
//!
//!     cargo bench --bench reach -- [--connections N] [--rounds R]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::time::Instant;

use ipnet::{IpNet, Ipv4Net};
use switchboard::domain::connection::{Kind, PortRange, Protocol};
use switchboard::domain::reach::{Flow, Question, reaching};
use switchboard::services::networks::{self, NetworkRequest};
use switchboard::services::{connections, reach};
use uuid::Uuid;

#[path = "common/mod.rs"]
mod common;

#[tokio::main]
async fn main() {
    let count = common::world::arg("--connections", 100_000) as usize;
    let rounds = common::world::arg("--rounds", 200) as usize;
    let networks: Vec<IpNet> = "10.0.0.0/8"
        .parse::<Ipv4Net>()
        .unwrap()
        .subnets(20)
        .unwrap()
        .take(2000)
        .map(IpNet::V4)
        .collect();
    // A deterministic spread: connection i links network (i * 7) to (i * 13 + 1).
    let flows: Vec<Flow> = (0..count)
        .map(|i| Flow {
            connection_id: Uuid::from_u128(i as u128),
            kind: Kind::NetworkToNetwork,
            from_name: format!("n{}", (i * 7) % networks.len()),
            from: vec![networks[(i * 7) % networks.len()]],
            to_name: format!("n{}", (i * 13 + 1) % networks.len()),
            to: vec![networks[(i * 13 + 1) % networks.len()]],
            protocol: Protocol::Tcp,
            ports: vec![PortRange {
                from: 400 + (i % 100) as u16,
                to: 443 + (i % 100) as u16,
            }],
        })
        .collect();
    let question = Question {
        from: None,
        to: vec![networks[1]],
        port: Some(443),
    };
    let found = reaching(&flows, &question).count();
    assert!(found > 0, "the question has answers");
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let n = reaching(std::hint::black_box(&flows), &question).count();
        std::hint::black_box(n);
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "reach, the model alone: who reaches one network on port 443 among {count} connections ({found} do), {rounds} rounds: p50 {:.2} ms, p99 {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
    through_the_service(count, rounds).await;
}

/// The same question through `services::reach` over PostgreSQL.
async fn through_the_service(count: usize, rounds: usize) {
    let world = common::world::world(&[]).await;
    let ctx = &world.ctx;
    let account: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM provider_accounts WHERE name = 'demo'")
            .fetch_one(&ctx.pool)
            .await
            .unwrap();
    let mut ids = Vec::new();
    for i in 0..200 {
        let net = networks::create_network(
            ctx,
            &world.admin,
            NetworkRequest {
                name: format!("n{i}"),
                team: if i % 2 == 0 { "payments" } else { "search" }.into(),
                provider_account_id: Some(account),
                region: "local".into(),
                environment: None,
                pool_id: None,
                prefix_length: None,
                cidr: Some(format!("10.100.{i}.0/24")),
                external_id: None,
                tags: serde_json::json!({}),
            },
            None,
        )
        .await
        .unwrap();
        ids.push(net.network.id);
    }
    let template = connections::request(ctx, &world.requester, world.ask.clone(), None)
        .await
        .unwrap()
        .connection
        .id;
    let started = Instant::now();
    // The same spread as the model's: connection i links network (i * 7) to
    // (i * 13 + 1), on ports 400-443 shifted by i % 100.
    sqlx::query(
        "INSERT INTO connections
         SELECT (jsonb_populate_record(NULL::connections, to_jsonb(c) || jsonb_build_object(
                   'id', gen_random_uuid(),
                   'status', 'active',
                   'spec', c.spec || jsonb_build_object(
                       'source_network_id', ($3::uuid[])[1 + (i * 7) % 200],
                       'destination_network_id', ($3::uuid[])[1 + (i * 13 + 1) % 200],
                       'ports', (400 + i % 100)::text || '-' || (443 + i % 100)::text)))).*
           FROM generate_series(0, $2 - 1) AS i, connections c WHERE c.id = $1",
    )
    .bind(template)
    .bind(count as i64)
    .bind(&ids)
    .execute(&ctx.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(&ctx.pool).await.unwrap();
    println!(
        "{count} active connections in the database ({:.1} s to make them)",
        started.elapsed().as_secs_f64()
    );
    let ask = || reach::reach(ctx, &world.admin, None, "n1", Some("443"));
    let started = Instant::now();
    let found = ask().await.unwrap().flows.len();
    assert!(found > 0, "the question has answers");
    let first = started.elapsed();
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(ask().await.unwrap());
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let mut after_change = Vec::new();
    for _ in 0..5 {
        sqlx::query(
            "UPDATE connections SET status = 'drifted'
              WHERE id = (SELECT id FROM connections WHERE status = 'active' LIMIT 1)",
        )
        .execute(&ctx.pool)
        .await
        .unwrap();
        let started = Instant::now();
        std::hint::black_box(ask().await.unwrap());
        after_change.push(started.elapsed());
    }
    after_change.sort();
    println!(
        "reach, through the service and PostgreSQL: {count} active connections ({found} answer): first question {:.0} ms; then {rounds} rounds p50 {:.2} ms, p99 {:.2} ms; right after a change (median of 5) {:.0} ms",
        first.as_secs_f64() * 1e3,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        after_change[2].as_secs_f64() * 1e3,
    );
    world.db.drop().await;
}
