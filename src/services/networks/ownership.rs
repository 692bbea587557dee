//! Who owns the place a network stands for: proven by the provider's team tag
//! or the account's `owner.<resource>` setting, else confirmed by an admin.

use super::*;

/// How long asking a provider for a resource's tag may take before the
/// registration waits for an admin instead.
pub(super) const PROOF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who owns the provider resource `external_id` stands for, for a network of
/// `team` (`network`: the network it is, when it exists). Proof is the
/// account's `owner.<resource>` setting or the resource's own
/// `switchboard:team` tag read through the provider; evidence for another
/// team refuses; without any, an admin's registration confirms it and anyone
/// else's waits for an admin. Also refuses a resource another network holds.
pub(super) async fn ownership_of(
    ctx: &Context,
    caller: &Caller,
    account: &ProviderAccount,
    region: &str,
    team: &str,
    external_id: Option<&str>,
    network: Option<Uuid>,
) -> Result<(Option<String>, Ownership)> {
    let Some(external_id) = external_id else {
        return Ok((None, Ownership::none()));
    };
    let key = crate::providers::resource_key(&account.kind, external_id)
        .map_err(|reason| Error::invalid("external_id", reason))?;
    if let Some(other) = store::networks::holding(&ctx.pool, account.id, &key).await?
        && Some(other.id) != network
    {
        return Err(Error::Conflict(format!(
            "{key} is already registered as the network {} of {}: one resource belongs to one network",
            other.name, other.team_slug
        )));
    }
    let refused = |owner: &str, how: String| {
        Error::invalid(
            "external_id",
            format!("{how} names the team {owner}, not {team}: only {owner} may register it"),
        )
    };
    let setting = format!("owner.{key}");
    if let Some(owner) = account.setting(&setting) {
        return if owner == team {
            Ok((
                Some(key),
                Ownership::proved(format!(
                    "the account {} names {team} as its owner ({setting})",
                    account.name
                )),
            ))
        } else {
            Err(refused(
                owner,
                format!("the account {}'s setting {setting}", account.name),
            ))
        };
    }
    let why_not = match tag_of(ctx, account, region, &key).await {
        Ok(TeamTag::Names(owner)) if owner == team => {
            let evidence = format!("its tag {TEAM_TAG}={team}, read from {}", account.name);
            return Ok((Some(key), Ownership::proved(evidence)));
        }
        Ok(TeamTag::Names(owner)) => {
            return Err(refused(&owner, format!("{key}'s tag {TEAM_TAG}")));
        }
        Ok(TeamTag::Missing) => format!("{key} has no {TEAM_TAG} tag"),
        Ok(TeamTag::Unsupported) => {
            format!("the account {} has no {setting} setting", account.name)
        }
        Err(ProviderError::Permanent(why)) => return Err(Error::invalid("external_id", why)),
        Err(ProviderError::Transient(why)) => {
            format!("{} could not be asked ({why})", account.name)
        }
    };
    Ok((
        Some(key),
        if caller.actor.is_admin {
            Ownership {
                state: "confirmed",
                evidence: format!("registered by an admin, {} ({why_not})", caller.label()),
                decided_by: Some(caller.actor.user_id),
            }
        } else {
            Ownership::pending(why_not)
        },
    ))
}

/// The team a resource's tag names, asked of its account's provider.
pub(super) async fn tag_of(
    ctx: &Context,
    account: &ProviderAccount,
    region: &str,
    key: &str,
) -> std::result::Result<TeamTag, ProviderError> {
    let (registry, _) = ctx
        .providers()
        .await
        .map_err(|e| ProviderError::Transient(e.to_string()))?;
    // An account that cannot be served (no credentials yet) cannot be asked:
    // the registration waits, it is not refused.
    let provider = registry
        .get(&account.name)
        .map_err(|e| ProviderError::Transient(e.to_string()))?;
    match tokio::time::timeout(PROOF_TIMEOUT, provider.team_tag(region, key)).await {
        Ok(answer) => answer,
        Err(_) => Err(ProviderError::Transient(format!(
            "no answer within {} s",
            PROOF_TIMEOUT.as_secs()
        ))),
    }
}

/// An admin confirms that a pending network's team owns its resource.
pub async fn confirm_ownership(ctx: &Context, caller: &Caller, id: Uuid) -> Result<NetworkDetail> {
    caller.actor.require(Action::ConfirmOwnership)?;
    let n = pending_network(ctx, caller, id).await?;
    let account = store::provider_accounts::find(&ctx.pool, n.provider_account_id)
        .await?
        .ok_or_else(|| Error::internal("a network without its provider account"))?;
    let external_id = n.external_id.as_deref().unwrap_or_default();
    let key = crate::providers::resource_key(&account.kind, external_id)
        .map_err(|reason| Error::invalid("external_id", reason))?;
    let ownership = Ownership {
        state: "confirmed",
        evidence: format!("confirmed by an admin, {}", caller.label()),
        decided_by: Some(caller.actor.user_id),
    };
    let mut tx = ctx.pool.begin().await?;
    store::networks::update(
        &mut *tx,
        id,
        &n.name,
        (n.external_id.as_deref(), Some(&key), &ownership),
        &n.tags,
    )
    .await
    .map_err(|e| resource_taken(e, n.external_id.as_deref()))?;
    audit::by(
        &mut tx,
        caller,
        "network.ownership_confirmed",
        "network",
        &id.to_string(),
        json!({
            "before": { "ownership": n.ownership, "evidence": n.ownership_evidence },
            "after": { "ownership": ownership.state, "external_id": n.external_id },
        }),
    )
    .await?;
    tx.commit().await?;
    get_network(ctx, caller, id).await
}

/// An admin refuses a pending registration: the network no longer stands for
/// that resource (it keeps its name and prefixes).
pub async fn refuse_ownership(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    reason: &str,
) -> Result<NetworkDetail> {
    caller.actor.require(Action::ConfirmOwnership)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid("reason", "is required: tell the team why"));
    }
    let n = pending_network(ctx, caller, id).await?;
    let ownership = Ownership {
        state: "none",
        evidence: format!(
            "{} refused {}: {reason}",
            caller.label(),
            n.external_id.as_deref().unwrap_or("the registration")
        ),
        decided_by: Some(caller.actor.user_id),
    };
    let mut tx = ctx.pool.begin().await?;
    store::networks::update(&mut *tx, id, &n.name, (None, None, &ownership), &n.tags).await?;
    audit::by(
        &mut tx,
        caller,
        "network.ownership_refused",
        "network",
        &id.to_string(),
        json!({
            "before": { "ownership": n.ownership, "external_id": n.external_id },
            "after": { "ownership": ownership.state, "external_id": null },
            "reason": reason,
        }),
    )
    .await?;
    tx.commit().await?;
    get_network(ctx, caller, id).await
}

/// The network's team asks again for proof (say, after tagging the VPC).
pub async fn check_ownership(ctx: &Context, caller: &Caller, id: Uuid) -> Result<NetworkDetail> {
    let n = get_network(ctx, caller, id).await?.network;
    caller
        .actor
        .require(Action::ManageNetworks { team_id: n.team_id })?;
    if n.ownership != "pending" {
        return Err(Error::Conflict(format!(
            "the ownership of {} is already {}",
            n.name, n.ownership
        )));
    }
    let account = store::provider_accounts::find(&ctx.pool, n.provider_account_id)
        .await?
        .ok_or_else(|| Error::internal("a network without its provider account"))?;
    // Proof only: an admin who wants to vouch for it confirms it instead.
    let as_team = Caller {
        actor: crate::auth::policy::Actor {
            is_admin: false,
            ..caller.actor.clone()
        },
        request_id: caller.request_id.clone(),
    };
    let (key, ownership) = ownership_of(
        ctx,
        &as_team,
        &account,
        &n.region,
        &n.team_slug,
        n.external_id.as_deref(),
        Some(id),
    )
    .await?;
    let mut tx = ctx.pool.begin().await?;
    store::networks::update(
        &mut *tx,
        id,
        &n.name,
        (n.external_id.as_deref(), key.as_deref(), &ownership),
        &n.tags,
    )
    .await
    .map_err(|e| resource_taken(e, n.external_id.as_deref()))?;
    audit::by(
        &mut tx,
        caller,
        "network.ownership_checked",
        "network",
        &id.to_string(),
        json!({
            "after": { "ownership": ownership.state, "evidence": ownership.evidence },
        }),
    )
    .await?;
    tx.commit().await?;
    get_network(ctx, caller, id).await
}

pub(super) async fn pending_network(ctx: &Context, caller: &Caller, id: Uuid) -> Result<Network> {
    let n = get_network(ctx, caller, id).await?.network;
    if n.ownership != "pending" {
        return Err(Error::Conflict(format!(
            "{} waits for no decision: its ownership is {}",
            n.name, n.ownership
        )));
    }
    Ok(n)
}

/// Registrations waiting for an admin, oldest first.
pub async fn pending_registrations(ctx: &Context, caller: &Caller) -> Result<Vec<NetworkDetail>> {
    caller.actor.require(Action::ConfirmOwnership)?;
    let found = store::networks::pending(&ctx.pool).await?;
    let ids: Vec<Uuid> = found.iter().map(|n| n.id).collect();
    let prefixes = store::pools::for_networks(&ctx.pool, &ids).await?;
    Ok(found
        .into_iter()
        .map(|network| NetworkDetail {
            prefixes: prefixes
                .iter()
                .filter(|p| p.network_id == Some(network.id))
                .cloned()
                .collect(),
            network,
        })
        .collect())
}
