//! Removing what a connection built: account by account, keeping what another
//! connection still needs, and only what Switchboard made.

use super::*;

/// Removes everything the connection built, newest first.
#[tracing::instrument(skip_all, fields(connection = %id))]
pub async fn deprovision(ctx: &Context, id: Uuid, last_attempt: bool) -> Result<Outcome> {
    let outcome = as_only_actor(ctx, id, "remove", deprovision_alone(ctx, id, last_attempt)).await;
    ended_visibly(ctx, id, outcome, "removing it failed").await
}

pub(super) async fn deprovision_alone(
    ctx: &Context,
    id: Uuid,
    last_attempt: bool,
) -> Result<Outcome> {
    let Some(c) = store::connections::find(&ctx.pool, id).await? else {
        return Ok(Outcome::Done);
    };
    if c.status != Status::Deprovisioning {
        return Ok(Outcome::Done);
    }
    let plan = plan_of(&c)?;
    let (registry, _) = ctx.providers().await?;
    let removed = async {
        for account in providers::accounts_of(&plan).into_iter().rev() {
            // An account no module serves built nothing: there is nothing to remove.
            let Ok(provider) = registry.get(&account) else {
                continue;
            };
            let removals = removals(ctx, id, &plan, &account, provider.shares())
                .await
                .map_err(|e| ProviderError::Transient(e.to_string()))?;
            let steps = provider
                .destroy(id, &removals)
                .instrument(tracing::info_span!("provider.destroy", %account))
                .await?;
            for step in steps {
                record(ctx, id, &account, &step).await?;
            }
        }
        Ok::<(), ProviderError>(())
    }
    .await;
    finish(
        ctx,
        id,
        &plan,
        removed,
        last_attempt,
        Event::Deprovisioned,
        "connection.removed",
        Notice::Removed,
    )
    .await
}

/// What to remove of a connection in `account`: what another connection still
/// needs is kept (and said so), and each item carries the ids Switchboard made
/// for it, so nothing Switchboard only found is removed.
pub(super) async fn removals(
    ctx: &Context,
    id: Uuid,
    plan: &Plan,
    account: &str,
    shared: bool,
) -> Result<Vec<providers::Removal>> {
    let planned =
        providers::planned_in(plan, account).map_err(|e| Error::because("reading the plan", e))?;
    removals_of(ctx, id, planned, account, shared).await
}

/// The removals of these planned items of the connection in `account` (see
/// [`removals`]).
pub(super) async fn removals_of(
    ctx: &Context,
    id: Uuid,
    planned: Vec<providers::Planned>,
    account: &str,
    shared: bool,
) -> Result<Vec<providers::Removal>> {
    let mut removals = Vec::new();
    for planned in planned {
        let resource = planned.item.resource(account);
        if shared
            && let Some(other) =
                store::connections::needed_by_another(&ctx.pool, id, &planned.probe).await?
        {
            let kept = format!("{resource}, still needed by connection {other}");
            store::connections::add_step(&ctx.pool, id, "kept", &kept, None).await?;
            continue;
        }
        removals.push(providers::Removal {
            made: store::connections::made_for(&ctx.pool, &resource).await?,
            found: store::connections::found_by(&ctx.pool, id, &resource).await?,
            item: planned.item,
        });
    }
    Ok(removals)
}
