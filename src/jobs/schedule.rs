//! Periodic work run by every worker process (`work`, `up`). Each task is safe to
//! run from several processes at once.

use std::time::Duration;

use tokio::sync::watch;

use crate::services::{Context, connections, housekeeping, monitor, networks, provisioning};

/// How often dead sessions are deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often connections are checked for expiry and reminders.
const EXPIRY_EVERY: Duration = Duration::from_secs(60);

pub async fn run(ctx: Context, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry = tokio::time::interval(EXPIRY_EVERY);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The monitor: every process ticks, the sweep itself makes sure only one
    // runs per interval.
    let every = Duration::from_secs(ctx.settings.monitor_interval_seconds.unsigned_abs());
    let mut sweep = tokio::time::interval(every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sweep.tick() => {
                match monitor::sweep(&ctx).await {
                    Ok(r) if !r.skipped => tracing::info!(
                        observed = r.observed, drifted = r.drifted, recovered = r.recovered,
                        unknown = r.unknown, ms = r.duration.as_millis() as u64, "monitor sweep"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e.chain(), "the monitor's sweep failed; trying again next interval"),
                }
            }
            _ = expiry.tick() => {
                if let Err(e) = connections::remind_expiring(&ctx).await {
                    tracing::warn!(error = %e.chain(), "expiry reminders failed; trying again later");
                }
                if let Err(e) = connections::expire_due(&ctx).await {
                    tracing::warn!(error = %e.chain(), "expiring connections failed; trying again later");
                }
                match provisioning::resume_unattended(&ctx).await {
                    Ok(r) if r.requeued + r.failed > 0 => tracing::warn!(
                        requeued = r.requeued, failed = r.failed,
                        "connections nothing worked on were put back in motion"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e.chain(), "looking for unattended connections failed; trying again later"),
                }
                match networks::resume_unattended_networks(&ctx).await {
                    Ok((requeued, failed)) if requeued + failed > 0 => tracing::warn!(
                        requeued, failed, "networks nothing worked on were put back in motion"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e.chain(), "looking for unattended networks failed; trying again later"),
                }
                match provisioning::resume_unattended_changes(&ctx).await {
                    Ok((requeued, failed)) if requeued + failed > 0 => tracing::warn!(
                        requeued, failed, "changes nothing worked on were put back in motion"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e.chain(), "looking for unattended changes failed; trying again later"),
                }
            }
            _ = tick.tick() => {
                if let Err(e) = housekeeping::sweep(&ctx).await {
                    tracing::warn!(error = %e.chain(), "housekeeping failed; trying again later");
                }
            }
            _ = super::stopped(&mut shutdown) => return,
        }
    }
}
