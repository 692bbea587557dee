//! The sandbox's simulated cloud, for admins: see what it holds, and change or
//! delete a resource behind Switchboard's back, so drift can be demonstrated.

use serde_json::json;
use uuid::Uuid;

use super::{Caller, Context, audit};
use crate::auth::policy::Action;
use crate::error::{Error, Result};
use crate::providers::sandbox::{self, Resource};

/// The page and the API list at most this many (newest first).
pub const LIST_LIMIT: i64 = 500;

pub async fn resources(
    ctx: &Context,
    caller: &Caller,
    connection: Option<Uuid>,
) -> Result<Vec<Resource>> {
    caller.actor.require(Action::ManageProviderAccounts)?;
    Ok(sandbox::resources(&ctx.pool, connection, LIST_LIMIT).await?)
}

pub async fn delete(ctx: &Context, caller: &Caller, id: &str) -> Result<Resource> {
    caller.actor.require(Action::ManageProviderAccounts)?;
    let mut tx = ctx.pool.begin().await?;
    let found = sandbox::resource(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that sandbox resource".into()))?;
    sandbox::delete_behind_the_back(&mut *tx, id).await?;
    audit::by(
        &mut tx,
        caller,
        "sandbox.resource_deleted",
        "sandbox_resource",
        id,
        json!({ "connection_id": found.connection_id, "before": { "kind": found.kind, "name": found.name, "detail": found.detail } }),
    )
    .await?;
    tx.commit().await?;
    Ok(found)
}

pub async fn change(ctx: &Context, caller: &Caller, id: &str, detail: &str) -> Result<Resource> {
    caller.actor.require(Action::ManageProviderAccounts)?;
    let detail = detail.trim();
    if detail.is_empty() || detail.chars().count() > 500 {
        return Err(Error::invalid("detail", "must be 1 to 500 characters"));
    }
    let mut tx = ctx.pool.begin().await?;
    let mut found = sandbox::resource(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that sandbox resource".into()))?;
    sandbox::change_behind_the_back(&mut *tx, id, detail).await?;
    audit::by(
        &mut tx,
        caller,
        "sandbox.resource_changed",
        "sandbox_resource",
        id,
        json!({ "connection_id": found.connection_id, "before": { "detail": found.detail }, "after": { "detail": detail } }),
    )
    .await?;
    tx.commit().await?;
    found.detail = detail.to_owned();
    Ok(found)
}
