//! Periodic clean-up that no user action triggers.

use super::Context;
use crate::error::Result;
use crate::store;

/// How long the development outbox keeps a message.
pub const OUTBOX_RETENTION_DAYS: i64 = 14;
/// Finished jobs deleted per statement, so no pass holds long locks.
const PRUNE_BATCH: i64 = 10_000;
/// At most this many batches per pass; the next pass goes on.
const PRUNE_ROUNDS: usize = 100;

/// Deletes dead sessions (revoked, expired or idle past the limit), finished jobs
/// older than `SWITCHBOARD_JOB_RETENTION_DAYS` (with the emails rendered in them)
/// old outbox messages, idempotency keys and the reachability model's old change notes. Audit events are the record and are kept. Safe to run
/// from several processes.
pub async fn sweep(ctx: &Context) -> Result<()> {
    let sessions =
        store::sessions::delete_dead(&ctx.pool, ctx.settings.session_idle_seconds).await?;
    if sessions > 0 {
        tracing::info!(sessions, "housekeeping: deleted dead sessions");
    }
    let mut jobs = 0;
    for _ in 0..PRUNE_ROUNDS {
        let pruned =
            store::queue::prune_finished(&ctx.pool, ctx.settings.job_retention_days, PRUNE_BATCH)
                .await?;
        jobs += pruned;
        if pruned < PRUNE_BATCH as u64 {
            break;
        }
    }
    if jobs > 0 {
        tracing::info!(
            jobs,
            "housekeeping: deleted finished jobs past their retention"
        );
    }
    let outbox = store::outbox::prune(&ctx.pool, OUTBOX_RETENTION_DAYS).await?;
    if outbox > 0 {
        tracing::info!(outbox, "housekeeping: deleted old outbox messages");
    }
    let keys = store::idempotency::prune(&ctx.pool, super::idempotency::RETENTION_HOURS).await?;
    if keys > 0 {
        tracing::info!(
            keys,
            "housekeeping: forgot idempotency keys past their retention"
        );
    }
    store::reach::prune_changes(&ctx.pool).await?;
    Ok(())
}
