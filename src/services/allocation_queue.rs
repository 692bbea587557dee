//! Allocations in one pool are made one at a time (the pool's row lock), and each
//! commit waits for the disk to flush (~4 ms here), which would cap a busy pool at
//! a few hundred allocations a second. So requests that arrive while a pool is busy
//! wait in this per-pool queue, and whoever gets the pool's turn makes all of them
//! in one transaction: one lock, one commit for the lot, each with its own audit
//! event. Other pools proceed in parallel; other processes still serialize on the
//! pool's row lock, and the exclusion constraint still refuses any overlap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::address_plan::{
    AllocateError, Allocated, AllocationRequest, allocate_locked, lock_pool, unlock_pool,
};
use super::{Caller, Context, audit};
use crate::error::Error;

#[derive(Default)]
pub struct AllocationQueues {
    pools: Mutex<HashMap<Uuid, Arc<PoolQueue>>>,
}

impl std::fmt::Debug for AllocationQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AllocationQueues")
    }
}

#[derive(Default)]
struct PoolQueue {
    waiting: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
}

impl PoolQueue {
    fn holds(&self, ticket: Uuid) -> bool {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        waiting.iter().any(|w| w.ticket == ticket)
    }
}

struct Waiting {
    ticket: Uuid,
    caller: Caller,
    request: AllocationRequest,
    done: oneshot::Sender<Result<Allocated, AllocateError>>,
}

/// Requests made together at most; keeps one transaction short.
const MAX_BATCH: usize = 256;

impl AllocationQueues {
    fn queue(&self, pool_id: Uuid) -> Arc<PoolQueue> {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pools.entry(pool_id).or_default().clone()
    }

    /// Makes the allocation, possibly together with others waiting for the pool.
    pub(super) async fn allocate(
        &self,
        ctx: &Context,
        caller: &Caller,
        pool_id: Uuid,
        request: AllocationRequest,
    ) -> Result<Allocated, AllocateError> {
        let queue = self.queue(pool_id);
        let ticket = Uuid::new_v4();
        let (done, outcome) = oneshot::channel();
        queue
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Waiting {
                ticket,
                caller: caller.clone(),
                request,
                done,
            });
        // Whoever holds the turn makes every allocation waiting, maybe ours; when we
        // get the turn and ours is still waiting, we make it (and the others').
        while queue.holds(ticket) {
            let turn = queue.turn.lock().await;
            if queue.holds(ticket) {
                let batch: Vec<Waiting> = {
                    let mut waiting = queue
                        .waiting
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let n = waiting.len().min(MAX_BATCH);
                    waiting.drain(..n).collect()
                };
                // A task of its own: a client hanging up must not abort the others.
                let _ = tokio::spawn(make_batch(ctx.clone(), pool_id, batch)).await;
            }
            drop(turn);
        }
        outcome.await.unwrap_or(Err(AllocateError::Race))
    }
}

/// Errors that concern one request and leave the transaction usable.
fn concerns_one_request(e: &Error) -> bool {
    matches!(
        e,
        Error::Invalid(_) | Error::NotFound(_) | Error::Conflict(_) | Error::Forbidden(_)
    )
}

async fn make_batch(ctx: Context, pool_id: Uuid, batch: Vec<Waiting>) {
    let outcome = async {
        let mut tx = ctx.pool.begin().await?;
        let mut pool = match lock_pool(&mut tx, pool_id).await {
            Ok(pool) => pool,
            Err(AllocateError::Other(Error::NotFound(what))) => {
                let missing = || Err(AllocateError::Other(Error::NotFound(what.clone())));
                return Ok(batch.iter().map(|_| missing()).collect());
            }
            Err(e) => return Err(e),
        };
        let mut results = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        for w in &batch {
            let key = w.request.idempotency_key.as_deref();
            // Each request in a savepoint of its own: whatever one of them
            // makes the database refuse, the others are still made.
            let mut one = sqlx::Connection::begin(&mut *tx).await?;
            let before = pool.clone();
            let made = allocate_locked(&mut one, &w.caller, &mut pool, &w.request, key, None).await;
            if made.is_ok() {
                one.commit().await?;
            } else {
                one.rollback().await?;
                pool = before;
            }
            match made {
                Ok(done) => {
                    if done.created {
                        let a = &done.allocation;
                        let action = if a.reserved_until.is_some() {
                            "allocation.reserved"
                        } else {
                            "allocation.created"
                        };
                        let after = json!({ "after": { "cidr": a.cidr.to_string(), "pool_id": a.pool_id, "reserved_until": a.reserved_until } });
                        events.push((&w.caller, action, "allocation", a.id.to_string(), after));
                    }
                    results.push(Ok(done));
                }
                Err(AllocateError::Other(e)) if concerns_one_request(&e) => {
                    results.push(Err(AllocateError::Other(e)));
                }
                // Another process took the block meanwhile: this one tries again.
                Err(AllocateError::Race) => results.push(Err(AllocateError::Race)),
                Err(AllocateError::Other(e)) => {
                    tracing::warn!(error = %e, "an allocation failed; the others of its batch go on");
                    results.push(Err(AllocateError::Other(Error::Internal(
                        "the allocation failed".into(),
                    ))));
                }
            }
        }
        unlock_pool(&mut tx, pool).await?;
        audit::by_each(&mut tx, &events).await?;
        tx.commit().await?;
        Ok::<_, AllocateError>(results)
    }
    .await;
    match outcome {
        Ok(results) => {
            for (w, result) in batch.into_iter().zip(results) {
                let _ = w.done.send(result);
            }
        }
        Err(e) => {
            let retry = matches!(e, AllocateError::Race);
            if !retry && let AllocateError::Other(e) = &e {
                tracing::warn!(error = %e, "an allocation batch failed");
            }
            for w in batch {
                let _ = w.done.send(Err(if retry {
                    AllocateError::Race
                } else {
                    AllocateError::Other(Error::Internal("the allocation failed".into()))
                }));
            }
        }
    }
}
