//! Guardrail evaluation: one request judged against 1,000 rules (a mix of
//! label, port, source-range, expiry, approval and limit rules, as an
//! organisation's set might hold), repeated; prints the time per evaluation.
//!
//!     cargo bench --bench guardrails -- [--rules N] [--rounds R]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed assumption fails the run

use std::time::Instant;

use switchboard::domain::connection::Kind;
use switchboard::domain::guardrail::{End, Outcome, Proposal, RuleSet};

#[path = "common/mod.rs"]
mod common;

fn main() {
    let count = common::world::arg("--rules", 1000) as usize;
    let rounds = common::world::arg("--rounds", 2000) as usize;
    let rules: Vec<serde_json::Value> = (0..count)
        .map(|i| match i % 6 {
            0 => serde_json::json!({"name": format!("r{i}"), "from": {"environment": format!("env{i}")},
                                    "to": {"environment": "prod"}, "then": "forbid"}),
            1 => serde_json::json!({"name": format!("r{i}"), "ports": format!("{}", 1000 + i), "from_outside_team": true, "then": "forbid"}),
            2 => serde_json::json!({"name": format!("r{i}"), "source_covers": "0.0.0.0/0", "then": "forbid"}),
            3 => serde_json::json!({"name": format!("r{i}"), "kinds": ["firewall-opening"], "to": {"tier": format!("t{i}")},
                                    "then": {"max_expiry_days": 30}}),
            4 => serde_json::json!({"name": format!("r{i}"), "kinds": ["service-exposure"], "to": {"environment": "prod"},
                                    "then": {"approval_from": "security"}}),
            _ => serde_json::json!({"name": format!("r{i}"), "to": {"team-size": format!("s{i}")},
                                    "then": {"at_most": {"count": 100, "per": "team"}}}),
        })
        .collect();
    let set: RuleSet = serde_json::from_value(serde_json::json!({"rules": rules})).unwrap();
    assert!(set.problems().is_empty());
    let end = |team: &str, env: &str| End {
        team: team.into(),
        labels: [("environment".to_owned(), env.to_owned())].into(),
    };
    let request = Proposal {
        kind: Kind::NetworkToNetwork,
        from: Some(end("web", "env6")),
        source_cidr: None,
        to: Some(end("payments", "prod")),
        ports: "443, 1001".into(),
        expires_in_days: Some(14),
        open_for_team: 3,
        open_into_network: 1,
    };
    // The request is refused by two rules (a label rule and a port rule).
    let denied = set
        .judge(&request)
        .iter()
        .filter(|v| v.outcome == Outcome::Deny)
        .count();
    assert_eq!(denied, 2);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let verdicts = set.judge(std::hint::black_box(&request));
        std::hint::black_box(verdicts);
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "guardrails: one request against {count} rules, {rounds} rounds: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}
