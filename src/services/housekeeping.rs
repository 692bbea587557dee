//! Periodic clean-up that no user action triggers.

use super::Context;
use crate::error::Result;
use crate::store;

/// Deletes dead sessions (revoked, expired or idle past the limit), so the table
/// holds only sessions someone can still use. Safe to run from several processes.
pub async fn sweep(ctx: &Context) -> Result<()> {
    let sessions =
        store::sessions::delete_dead(&ctx.pool, ctx.settings.session_idle_seconds).await?;
    if sessions > 0 {
        tracing::info!(sessions, "housekeeping: deleted dead sessions");
    }
    Ok(())
}
