//! Personal API tokens: shown once, stored as a hash, revocable.

use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::idempotency::{IdempotencyKey, Once};
use super::{Caller, Context, accounts::LOCAL_ISSUER, audit};
use crate::auth::policy::Action;
use crate::auth::secrets;
use crate::domain::email::EmailAddress;
use crate::error::{Error, FieldError, Result};
use crate::store::{self, tokens::ApiToken};

pub const MAX_DAYS: i64 = 366;

/// A token just made: the only moment its secret exists outside the client.
pub struct NewToken {
    pub token: ApiToken,
    pub secret: String,
}

fn validate(name: &str, expires_in_days: Option<i64>) -> Result<String> {
    let mut errors = Vec::new();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if let Some(days) = expires_in_days
        && !(1..=MAX_DAYS).contains(&days)
    {
        errors.push(FieldError::new(
            "expires_in_days",
            format!("must be a whole number of days from 1 to {MAX_DAYS}, or empty for no expiry"),
        ));
    }
    if errors.is_empty() {
        Ok(name.to_owned())
    } else {
        Err(Error::Invalid(errors))
    }
}

pub async fn create(
    ctx: &Context,
    caller: &Caller,
    name: &str,
    expires_in_days: Option<i64>,
    key: Option<&IdempotencyKey>,
) -> Result<NewToken> {
    caller.actor.require(Action::ManageOwnTokens)?;
    let once = Once::new(caller, key, "create_token", &(name, expires_in_days))?;
    // The secret is shown once and never stored: a retry cannot be given it.
    if let Some(id) = once.earlier(ctx).await? {
        return Err(Error::Conflict(format!(
            "{}: this key already created the token {id}, whose secret is shown only once; revoke it and create another with a new key",
            IdempotencyKey::HEADER
        )));
    }
    let name = validate(name, expires_in_days)?;
    let (secret, hash, prefix) = secrets::new_api_token();
    let expires_at = expires_in_days.map(|d| Utc::now() + Duration::days(d));
    let mut tx = ctx.pool.begin().await?;
    let token = store::tokens::insert(
        &mut *tx,
        caller.actor.user_id,
        &name,
        &hash,
        &prefix,
        expires_at,
    )
    .await?;
    once.remember(&mut tx, token.id).await?;
    audit::by(
        &mut tx,
        caller,
        "token.created",
        "api_token",
        &token.id.to_string(),
        json!({ "name": name, "expires_at": expires_at }),
    )
    .await?;
    tx.commit().await?;
    Ok(NewToken { token, secret })
}

pub async fn list(ctx: &Context, caller: &Caller) -> Result<Vec<ApiToken>> {
    caller.actor.require(Action::ManageOwnTokens)?;
    Ok(store::tokens::list_for_user(&ctx.pool, caller.actor.user_id).await?)
}

pub async fn revoke(ctx: &Context, caller: &Caller, id: Uuid) -> Result<ApiToken> {
    caller.actor.require(Action::ManageOwnTokens)?;
    let mut tx = ctx.pool.begin().await?;
    // Someone else's token is "not found", not "forbidden": ids do not leak.
    let token = store::tokens::revoke(&mut *tx, caller.actor.user_id, id)
        .await?
        .ok_or_else(|| Error::NotFound("that token".into()))?;
    audit::by(
        &mut tx,
        caller,
        "token.revoked",
        "api_token",
        &id.to_string(),
        json!({ "name": token.name }),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// `switchboard admin create-token`: for first set-up and automation. Creates the
/// user if no user has this email.
pub async fn create_bootstrap_token(
    ctx: &Context,
    email: &str,
    name: &str,
    admin: bool,
    expires_in_days: Option<i64>,
) -> Result<NewToken> {
    let email = EmailAddress::parse(email).map_err(|reason| Error::invalid("email", reason))?;
    let name = validate(name, expires_in_days)?;
    let mut tx = ctx.pool.begin().await?;
    let user = match store::users::find_by_email(&mut *tx, email.as_str()).await? {
        Some(user) => user,
        None => {
            let display = email
                .as_str()
                .split('@')
                .next()
                .unwrap_or("user")
                .to_owned();
            store::users::upsert(
                &mut tx,
                LOCAL_ISSUER,
                &email.as_str().to_lowercase(),
                email.as_str(),
                &display,
            )
            .await?
            .0
        }
    };
    if admin && !user.is_admin {
        store::users::set_admin(&mut *tx, user.id, true).await?;
    }
    let (secret, hash, prefix) = secrets::new_api_token();
    let expires_at = expires_in_days.map(|d| Utc::now() + Duration::days(d));
    let token = store::tokens::insert(&mut *tx, user.id, &name, &hash, &prefix, expires_at).await?;
    audit::record(
        &mut tx,
        Some("switchboard admin create-token"),
        None,
        None,
        "token.created",
        "api_token",
        &token.id.to_string(),
        json!({ "name": name, "user": user.email, "admin": admin }),
    )
    .await?;
    tx.commit().await?;
    Ok(NewToken { token, secret })
}
