//! Networks being built or removed that nothing works on (their job lost, or
//! one the workers gave up on): given a new job, or failed with what the last
//! attempt said. Run by the housekeeping pass; safe from several processes.

use super::Context;
use super::build::fail;
use crate::domain::jobs::{BuildNetwork, Job, RemoveNetwork};
use crate::domain::network::Status;
use crate::error::Result;
use crate::store;

/// How long a network may sit building or removing before the pass looks.
const QUIET_SECONDS: f64 = 120.0;

/// (given a new job, failed)
pub async fn resume_unattended_networks(ctx: &Context) -> Result<(usize, usize)> {
    let (mut requeued, mut failed) = (0, 0);
    for n in store::networks::in_work(&ctx.pool, QUIET_SECONDS, 100).await? {
        let queue = match n.status() {
            Status::Removing => RemoveNetwork::QUEUE,
            _ => BuildNetwork::QUEUE,
        };
        let last = store::queue::last_job(&ctx.pool, queue, "network_id", n.id).await?;
        if let Some((status, attempts, max, _)) = &last
            && store::queue::job_alive(status, *attempts, *max)
        {
            continue;
        }
        if let Some((status, attempts, max, result)) = &last
            && matches!(status.as_str(), "Failed" | "Killed")
            && attempts >= max
        {
            let said = result
                .as_ref()
                .and_then(|r| r.get("Err"))
                .and_then(|e| e.as_str())
                .unwrap_or("no error was recorded");
            let why =
                format!("the workers gave up after {attempts} attempts; the last one said: {said}");
            fail(ctx, &n, n.status(), &why).await?;
            failed += 1;
            continue;
        }
        let mut tx = ctx.pool.begin().await?;
        match n.status() {
            Status::Removing => {
                store::queue::enqueue_unless_waiting(&mut tx, &RemoveNetwork { network_id: n.id })
                    .await?;
            }
            _ => {
                let job = BuildNetwork {
                    network_id: n.id,
                    plan_hash: n.plan_hash.clone().unwrap_or_default(),
                };
                store::queue::enqueue_unless_waiting(&mut tx, &job).await?;
            }
        }
        tx.commit().await?;
        tracing::warn!(network = %n.id, status = %n.status, "a network nothing worked on was given a new job");
        requeued += 1;
    }
    Ok((requeued, failed))
}
