//! A signed-in person's home page: what waits for their decision, what needs
//! attention among the connections they can see, their own recent requests,
//! and what expires soon.

use chrono::{Duration, Utc};

use crate::error::Result;
use crate::services::{Caller, Context};
use crate::store;
use crate::store::connections::{Connection, ListQuery};

/// How far ahead "expires soon" looks.
pub const EXPIRING_WITHIN_DAYS: i64 = 7;
/// How many of each list the home page shows (each links to the whole list).
const SHOWN: i64 = 8;

pub struct Overview {
    /// Requests waiting for a team this person leads, oldest first.
    pub waiting: Vec<Connection>,
    /// Renewals this person decides, oldest first.
    pub renewals: Vec<store::renewals::Renewal>,
    /// Changes this person decides for their side, oldest first.
    pub changes: Vec<store::changes::Change>,
    /// Drifted, failed, or not readable by the monitor.
    pub attention: Vec<Connection>,
    /// This person's own latest requests.
    pub mine: Vec<Connection>,
    pub expiring: Vec<Connection>,
}

pub async fn overview(ctx: &Context, caller: &Caller) -> Result<Overview> {
    let (user, all) = (caller.actor.user_id, caller.actor.is_admin);
    let mut waiting = store::connections::awaiting_lead(&ctx.pool, user).await?;
    waiting.truncate(SHOWN as usize);
    let mine = store::connections::list(
        &ctx.pool,
        &ListQuery {
            user_id: user,
            all,
            status: None,
            kind: None,
            team: None,
            network: None,
            requested_by: Some(&caller.actor.email),
            created_after: None,
            created_before: None,
            after: None,
            fetch: SHOWN,
        },
    )
    .await?;
    let soon = Utc::now() + Duration::days(EXPIRING_WITHIN_DAYS);
    let mut renewals = store::renewals::awaiting_lead(&ctx.pool, user).await?;
    renewals.truncate(SHOWN as usize);
    let mut changes = store::changes::awaiting_lead(&ctx.pool, user).await?;
    changes.truncate(SHOWN as usize);
    Ok(Overview {
        waiting,
        renewals,
        changes,
        attention: store::monitoring::needing_attention(&ctx.pool, user, all, SHOWN).await?,
        mine,
        expiring: store::monitoring::expiring(&ctx.pool, user, all, soon, SHOWN).await?,
    })
}

/// How many connections the network map draws at most (the newest).
pub const MAP_LIMIT: i64 = 1000;

/// The connections the person can see that exist or are on their way (not
/// removed, refused, cancelled or expired), newest first: what the map draws.
pub async fn live(ctx: &Context, caller: &Caller) -> Result<Vec<Connection>> {
    use crate::domain::connection::Status;
    let all = store::connections::list(
        &ctx.pool,
        &ListQuery {
            user_id: caller.actor.user_id,
            all: caller.actor.is_admin,
            status: None,
            kind: None,
            team: None,
            network: None,
            requested_by: None,
            created_after: None,
            created_before: None,
            after: None,
            fetch: MAP_LIMIT,
        },
    )
    .await?;
    Ok(all
        .into_iter()
        .filter(|c| {
            !matches!(
                c.status,
                Status::Deleted | Status::Rejected | Status::Cancelled | Status::Expired
            )
        })
        .collect())
}
