//! Periodic work run by every worker process (`work`, `up`). Each task is safe to
//! run from several processes at once.

use std::time::Duration;

use tokio::sync::watch;

use crate::services::{Context, connections, housekeeping};

/// How often dead sessions are deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often connections are checked for expiry and reminders.
const EXPIRY_EVERY: Duration = Duration::from_secs(60);

pub async fn run(ctx: Context, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry = tokio::time::interval(EXPIRY_EVERY);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = expiry.tick() => {
                if let Err(e) = connections::remind_expiring(&ctx).await {
                    tracing::warn!(error = %e, "expiry reminders failed; trying again later");
                }
                if let Err(e) = connections::expire_due(&ctx).await {
                    tracing::warn!(error = %e, "expiring connections failed; trying again later");
                }
            }
            _ = tick.tick() => {
                if let Err(e) = housekeeping::sweep(&ctx).await {
                    tracing::warn!(error = %e, "housekeeping failed; trying again later");
                }
            }
            _ = super::stopped(&mut shutdown) => return,
        }
    }
}
