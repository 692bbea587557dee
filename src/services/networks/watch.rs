//! The monitor's look at the networks Switchboard built: each account is asked
//! in bulk whether every built network still exists as planned (a VPC deleted,
//! its range disassociated, a subnet gone). A network that stops matching is
//! `drifted` and its team hears of it once; when it matches again it is
//! `ready` and they hear that too. An account that cannot be asked changes
//! nothing (the connections' monitor reports the account to admins).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::Context;
use super::build::{item_of, tell_team};
use crate::domain::network::Status;
use crate::domain::notification::Topic;
use crate::error::Result;
use crate::notify::messages::PlainNotice;
use crate::providers::Wanted;
use crate::services::{audit, monitor::lasted};
use crate::store::{self, networks::Network};

/// Observes every built network once; returns how many were compared.
#[tracing::instrument(skip_all)]
pub async fn watch_networks(ctx: &Context) -> Result<usize> {
    let networks = store::networks::watched(&ctx.pool).await?;
    if networks.is_empty() {
        return Ok(0);
    }
    let (registry, _) = ctx.providers().await?;
    let mut by_account: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
    let mut known: BTreeMap<Uuid, &Network> = BTreeMap::new();
    for n in &networks {
        match item_of(n) {
            Ok(item) => {
                by_account
                    .entry(n.provider_account_name.clone())
                    .or_default()
                    .push(Wanted {
                        connection_id: n.id,
                        items: vec![item],
                    });
                known.insert(n.id, n);
            }
            Err(e) => {
                tracing::error!(network = %n.id, error = %e, "cannot read a built network's plan")
            }
        }
    }
    let timeout = Duration::from_secs(ctx.settings.monitor_interval_seconds.max(5).unsigned_abs());
    let mut compared = 0;
    for (account, wanted) in by_account {
        let Ok(provider) = registry.get(&account) else {
            continue;
        };
        let seen = match tokio::time::timeout(timeout, provider.observe(&wanted)).await {
            Ok(Ok(seen)) => seen,
            Ok(Err(e)) => {
                tracing::warn!(%account, error = %e, "could not observe the account's networks");
                continue;
            }
            Err(_) => {
                tracing::warn!(%account, "the account's networks were not observed in time");
                continue;
            }
        };
        for s in seen {
            let Some(n) = known.get(&s.connection_id) else {
                continue;
            };
            compared += 1;
            settle(ctx, n, &s.differences).await?;
        }
    }
    Ok(compared)
}

/// Records what was seen of one network and tells its team when it starts or
/// stops matching.
async fn settle(ctx: &Context, n: &Network, differences: &[String]) -> Result<()> {
    let seen = json!(differences);
    if seen == n.differences {
        return Ok(());
    }
    let mut tx = ctx.pool.begin().await?;
    if !store::networks::observed(&mut *tx, n.id, &n.status, &seen).await? {
        return Ok(());
    }
    let now = if differences.is_empty() {
        Status::Ready
    } else {
        Status::Drifted
    };
    if now != n.status() {
        let action = if now == Status::Drifted {
            "network.drifted"
        } else {
            "network.recovered"
        };
        audit::record(
            &mut tx,
            Some("switchboard"),
            None,
            None,
            action,
            "network",
            &n.id.to_string(),
            json!({ "differences": seen, "before": { "status": n.status }, "after": { "status": now.as_str() } }),
        )
        .await?;
        let notice = |name: String| {
            match now {
            Status::Drifted => PlainNotice {
                name,
                about: format!("Network {}", n.name),
                subject: "drifted from what was built".into(),
                headline: format!(
                    "The network {} of {} no longer matches what Switchboard built:",
                    n.name, n.team_slug
                ),
                lines: differences.to_vec(),
                footer: "Connections through it may stop working. Put it back, or delete the network so Switchboard removes the rest.".into(),
                url: String::new(),
            },
            _ => PlainNotice {
                name,
                about: format!("Network {}", n.name),
                subject: "matches again".into(),
                headline: format!(
                    "The network {} of {} matches what Switchboard built again.",
                    n.name, n.team_slug
                ),
                lines: n
                    .drifted_since
                    .map(|since| vec![format!("It differed for {}.", lasted(since, chrono::Utc::now()))])
                    .unwrap_or_default(),
                footer: "Nothing more to do.".into(),
                url: String::new(),
            },
        }
        };
        tell_team(ctx, &mut tx, n, Topic::Drift, notice).await?;
    }
    tx.commit().await?;
    Ok(())
}
