//! The reachability model, kept between questions. Reading 100,000 open
//! connections for every question (and every approver's page) would make each
//! cost what that read costs; instead each process keeps the model with the
//! database snapshot it was read in, and before using it asks one indexed
//! question: did a change to what the model is made of commit since that
//! snapshot (`reach_changes`, noted by triggers)? If connections changed, only
//! they are read again; if a network or an allocation did, everything is. An
//! answer is never older than the last commit the question could have seen.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use uuid::Uuid;

use super::{Flow, Networks, flows_from, open_flows};
use crate::error::Result;
use crate::store;

/// A kept model is read again at least this often, whatever the notes say:
/// housekeeping forgets notes older than a day, long after.
const LONGEST_KEPT: Duration = Duration::from_secs(600);

/// More changed connections than this share of the flows: read everything.
const MOSTLY_CHANGED: usize = 10;

/// The networks' prefixes and the open connections' flows, as read at once.
pub(super) struct Model {
    pub(super) nets: Arc<Networks>,
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
    /// since it was read, else brought up to date and kept.
    pub(super) async fn model(&self, pool: &PgPool) -> Result<Arc<Model>> {
        let kept = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        let kept = kept.filter(|m| m.read_at.elapsed() < LONGEST_KEPT);
        if let Some(model) = &kept
            && !store::reach::changed_since(pool, &model.snapshot).await?
        {
            return Ok(model.clone());
        }
        // One snapshot for the notes, what is read, and the new mark.
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        let snapshot = store::reach::repeatable_snapshot(&mut tx).await?;
        let changed = match &kept {
            Some(model) => {
                let notes = store::reach::notes_since(&mut *tx, &model.snapshot).await?;
                let ids: Option<HashSet<Uuid>> = notes.into_iter().collect();
                ids.filter(|ids| ids.len() * MOSTLY_CHANGED <= model.flows.len().max(1))
                    .map(|ids| (model, ids))
            }
            None => None,
        };
        let (nets, flows, read_at) = match changed {
            // Only these connections changed: the others' flows stand.
            Some((model, ids)) => {
                let list: Vec<Uuid> = ids.iter().copied().collect();
                let rows = store::reach::open_requests_of(&mut *tx, &list).await?;
                let mut flows: Vec<Flow> = model
                    .flows
                    .iter()
                    .filter(|f| !ids.contains(&f.connection_id))
                    .cloned()
                    .collect();
                flows.extend(flows_from(rows, &model.nets));
                tracing::debug!(
                    connections = ids.len(),
                    flows = flows.len(),
                    ms = started.elapsed().as_millis(),
                    "reachability model: changed connections read again"
                );
                // Read whole again within LONGEST_KEPT all the same.
                (model.nets.clone(), flows, model.read_at)
            }
            None => {
                let nets = Networks::load(&mut tx).await?;
                let flows = open_flows(&mut tx, &nets).await?;
                tracing::info!(
                    flows = flows.len(),
                    ms = started.elapsed().as_millis(),
                    "reachability model read whole"
                );
                (Arc::new(nets), flows, Instant::now())
            }
        };
        tx.commit().await?;
        let model = Arc::new(Model {
            nets,
            flows,
            snapshot,
            read_at,
        });
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(model.clone());
        Ok(model)
    }
}
