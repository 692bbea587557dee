//! Periodic work run by every worker process (`work`, `up`). Each task is safe to
//! run from several processes at once.

use std::time::Duration;

use tokio::sync::watch;

use crate::services::{Context, housekeeping};

/// How often dead sessions are deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

pub async fn run(ctx: Context, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = housekeeping::sweep(&ctx).await {
                    tracing::warn!(error = %e, "housekeeping failed; trying again later");
                }
            }
            _ = super::stopped(&mut shutdown) => return,
        }
    }
}
