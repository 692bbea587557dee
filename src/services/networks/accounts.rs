//! Provider accounts: added by admins, secrets only by reference; the
//! default sandbox of `up`.

use super::*;

pub(super) fn text_map(value: &serde_json::Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.values().all(|v| v.is_string()))
}

pub struct AccountRequest {
    pub kind: String,
    pub name: String,
    pub regions: Vec<String>,
    pub settings: serde_json::Value,
    pub credentials_ref: Option<String>,
}

pub async fn create_account(
    ctx: &Context,
    caller: &Caller,
    req: AccountRequest,
) -> Result<ProviderAccount> {
    caller.actor.require(Action::ManageProviderAccounts)?;
    let mut errors = Vec::new();
    if !PROVIDER_KINDS.contains(&req.kind.as_str()) {
        errors.push(FieldError::new(
            "kind",
            format!("must be one of: {}", PROVIDER_KINDS.join(", ")),
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if req
        .regions
        .iter()
        .any(|r| r.trim().is_empty() || r.len() > 64)
    {
        errors.push(FieldError::new(
            "regions",
            "each region must be 1 to 64 characters",
        ));
    }
    if !req.settings.is_object() {
        errors.push(FieldError::new("settings", "must be an object"));
    } else if let Some(key) = req.settings.as_object().and_then(|m| {
        m.keys().find(|k| {
            let k = k.to_lowercase();
            ["secret", "password", "token", "private"]
                .iter()
                .any(|w| k.contains(w))
        })
    }) {
        errors.push(FieldError::new(
            "settings",
            format!("{key:?} looks like a credential: give credentials_ref (env:NAME or file:/path) instead; credentials are never stored"),
        ));
    }
    if let Some(r) = &req.credentials_ref
        && !crate::domain::notification::is_secret_ref(r)
    {
        errors.push(FieldError::new(
            "credentials_ref",
            "must be env:VARIABLE_NAME or file:/absolute/path",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let regions: Vec<String> = req.regions.iter().map(|r| r.trim().to_owned()).collect();
    let mut tx = ctx.pool.begin().await?;
    let account = store::provider_accounts::insert(
        &mut *tx,
        NewAccount {
            kind: &req.kind,
            name,
            regions: &regions,
            settings: &req.settings,
            credentials_ref: req.credentials_ref.as_deref(),
        },
    )
    .await?
    .ok_or_else(|| Error::Conflict(format!("a provider account named {name:?} already exists")))?;
    audit::by(&mut tx, caller, "provider_account.created", "provider_account", &account.id.to_string(), json!({ "after": { "kind": account.kind, "name": account.name, "regions": account.regions } })).await?;
    tx.commit().await?;
    Ok(account)
}

/// `up`'s default: with no provider account at all, a `sandbox` one, so the
/// whole flow (plan, approve, build, monitor) can be tried with nothing else.
pub async fn ensure_default_sandbox(pool: &sqlx::PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    if let Some(account) = store::provider_accounts::insert_sandbox_if_none(&mut *tx).await? {
        audit::record(
            &mut tx,
            Some("switchboard"),
            None,
            None,
            "provider_account.created",
            "provider_account",
            &account.id.to_string(),
            json!({ "after": { "kind": account.kind, "name": account.name, "regions": account.regions }, "why": "the default of `up`: no provider account existed" }),
        )
        .await?;
        tracing::info!("no provider account: added the sandbox one (a simulated cloud)");
    }
    tx.commit().await?;
    Ok(())
}

pub async fn list_accounts(ctx: &Context, caller: &Caller) -> Result<Vec<ProviderAccount>> {
    caller.actor.require(Action::ViewNetworks)?;
    Ok(store::provider_accounts::list(&ctx.pool).await?)
}

/// Why each account that cannot provision cannot (a missing credential, a
/// kind no module serves…), by account name; the others are not listed.
pub async fn account_problems(ctx: &Context) -> Result<std::collections::HashMap<String, String>> {
    Ok(ctx.providers().await?.0.problems())
}
