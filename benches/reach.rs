//! The reachability model: "who can reach this network on this port" over
//! 100,000 open connections (flows between 2,000 networks of /20s), pure
//! evaluation as the service does once it has read them; prints the time
//! per question.
//!
//!     cargo bench --bench reach -- [--connections N] [--rounds R]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::time::Instant;

use ipnet::{IpNet, Ipv4Net};
use switchboard::domain::connection::{Kind, PortRange, Protocol};
use switchboard::domain::reach::{Flow, Question, reaching};
use uuid::Uuid;

#[path = "common/mod.rs"]
mod common;

fn main() {
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
        "reach: who reaches one network on port 443 among {count} connections ({found} do), {rounds} rounds: p50 {:.2} ms, p99 {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
}
