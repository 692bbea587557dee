//! Connections in work that nothing works on: put back in motion, or failed
//! when their job used up its attempts.

use super::*;

/// How long a connection in work may sit with nothing working on it before
/// the housekeeping pass looks at it.
pub(super) const UNATTENDED_AFTER_SECONDS: f64 = 120.0;

/// What the housekeeping pass did with connections nothing was working on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Given a new job (theirs was lost).
    pub requeued: usize,
    /// Marked failed (the workers gave up on them).
    pub failed: usize,
}

/// Finds connections left in `approved`, `provisioning` or `deprovisioning`
/// with no live job and no actor (a job lost, or one the workers gave up on),
/// and puts each back in motion: a new job when the last one was lost or ended
/// without finishing, `failed` (with everyone told) when the last one used up
/// its attempts. Safe to run from several processes at once.
#[tracing::instrument(skip_all)]
pub async fn resume_unattended(ctx: &Context) -> Result<Resumed> {
    let mut resumed = Resumed::default();
    for u in store::connections::unattended(&ctx.pool, UNATTENDED_AFTER_SECONDS, 100).await? {
        let gave_up = matches!(u.job_status.as_deref(), Some("Failed" | "Killed"))
            && u.job_attempts >= u.job_max_attempts;
        if gave_up {
            let last = u
                .job_result
                .as_ref()
                .and_then(|r| r.get("Err"))
                .and_then(|e| e.as_str())
                .unwrap_or("no error was recorded")
                .to_owned();
            let why = format!(
                "the workers gave up after {} attempts; the last one said: {last}",
                u.job_attempts.unwrap_or_default()
            );
            fail(ctx, u.id, &why).await?;
            resumed.failed += 1;
            continue;
        }
        let mut tx = ctx.pool.begin().await?;
        let Some(c) = store::connections::lock(&mut tx, u.id).await? else {
            continue;
        };
        if c.status != u.status {
            continue;
        }
        if c.status == Status::Deprovisioning {
            store::queue::enqueue_unless_waiting(
                &mut tx,
                &Deprovision {
                    connection_id: c.id,
                },
            )
            .await?;
        } else {
            let job = Provision {
                connection_id: c.id,
                plan_hash: c.plan_hash.clone(),
            };
            store::queue::enqueue_unless_waiting(&mut tx, &job).await?;
        }
        audit::record(
            &mut tx,
            Some("switchboard"),
            None,
            None,
            "connection.resumed",
            "connection",
            &c.id.to_string(),
            json!({ "status": c.status, "why": "nothing was working on it: its job was lost or ended unfinished" }),
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(connection = %c.id, status = %c.status, "a connection nothing worked on was given a new job");
        resumed.requeued += 1;
    }
    Ok(resumed)
}
