//! The reachability model, kept between questions. Reading 100,000 open
//! connections for every question (and every approver's page) would make each
//! cost what that read costs; instead each process keeps the model with the
//! database snapshot it was read in, and before using it asks one indexed
//! question: did a change to what the model is made of commit since that
//! snapshot (`reach_changes`, noted by triggers)? If so it is read again. An
//! answer is never older than the last commit the question could have seen.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::{Flow, Networks, open_flows};
use crate::error::Result;
use crate::store;

/// A kept model is read again at least this often, whatever the notes say:
/// housekeeping forgets notes older than a day, long after.
const LONGEST_KEPT: Duration = Duration::from_secs(600);

/// The networks' prefixes and the open connections' flows, as read at once.
pub(super) struct Model {
    pub(super) nets: Networks,
    pub(super) flows: Vec<Flow>,
    /// The snapshot it was read in (`pg_snapshot` as text).
    snapshot: String,
    read_at: Instant,
}

/// The model kept by one process (shared by the clones of its context).
#[derive(Default)]
pub struct Kept(RwLock<Option<Arc<Model>>>);

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept")
    }
}

impl Kept {
    /// The model as of now: the kept one when nothing it is made of changed
    /// since it was read, else read afresh and kept.
    pub(super) async fn model(&self, pool: &PgPool) -> Result<Arc<Model>> {
        let kept = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(model) = kept
            && model.read_at.elapsed() < LONGEST_KEPT
            && !store::reach::changed_since(pool, &model.snapshot).await?
        {
            return Ok(model);
        }
        // One snapshot for the networks, the flows and the mark.
        let mut tx = pool.begin().await?;
        let snapshot = store::reach::repeatable_snapshot(&mut tx).await?;
        let nets = Networks::load(&mut tx).await?;
        let flows = open_flows(&mut tx, &nets).await?;
        tx.commit().await?;
        let model = Arc::new(Model {
            nets,
            flows,
            snapshot,
            read_at: Instant::now(),
        });
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(model.clone());
        Ok(model)
    }
}
