//! Who hears of what: each person's email preferences, and each team's webhook
//! (drift events as JSON, signed with HMAC-SHA256, delivered by the workers).

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context, audit};
use crate::auth::policy::Action;
use crate::domain::jobs::SendWebhook;
use crate::domain::notification::Topic;
use crate::domain::webhook::{self, SecretRef};
use crate::error::{Error, FieldError, Result};
use crate::store::{self, notifications::Webhook};

/// Delivery is a job's work: the job handler calls it through here.
pub use crate::notify::webhook::{Undelivered, deliver};

/// My email preferences: every topic, on or off.
pub async fn preferences(ctx: &Context, caller: &Caller) -> Result<Vec<(Topic, bool)>> {
    let off = store::notifications::turned_off(&ctx.pool, caller.actor.user_id).await?;
    Ok(Topic::ALL
        .into_iter()
        .map(|t| (t, !off.iter().any(|o| o == t.as_str())))
        .collect())
}

/// Turns email on or off per topic (topics not given stay as they are).
pub async fn set_preferences(
    ctx: &Context,
    caller: &Caller,
    changes: &[(String, bool)],
) -> Result<Vec<(Topic, bool)>> {
    let mut topics = Vec::new();
    let mut errors = Vec::new();
    for (name, on) in changes {
        match Topic::parse(name) {
            Some(t) => topics.push((t, *on)),
            None => errors.push(FieldError::new(
                name.clone(),
                format!(
                    "is not a kind of email; the kinds are {}",
                    Topic::ALL.map(Topic::as_str).join(", ")
                ),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut tx = ctx.pool.begin().await?;
    for (topic, on) in &topics {
        store::notifications::set(&mut *tx, caller.actor.user_id, topic.as_str(), *on).await?;
    }
    let after: serde_json::Map<String, serde_json::Value> = topics
        .iter()
        .map(|(t, on)| (t.as_str().to_owned(), (*on).into()))
        .collect();
    audit::by(
        &mut tx,
        caller,
        "notifications.set",
        "user",
        &caller.actor.user_id.to_string(),
        json!({ "after": after }),
    )
    .await?;
    tx.commit().await?;
    preferences(ctx, caller).await
}

/// A team's lead (or an admin) manages its webhook; members may see it.
async fn team_for(ctx: &Context, caller: &Caller, slug: &str, change: bool) -> Result<Uuid> {
    let team = store::teams::find_by_slug(&ctx.pool, slug.trim())
        .await?
        .ok_or_else(|| Error::NotFound("that team".into()))?;
    caller.actor.require(match change {
        true => Action::ManageWebhook { team_id: team.id },
        false => Action::ViewWebhook { team_id: team.id },
    })?;
    Ok(team.id)
}

pub async fn webhook(ctx: &Context, caller: &Caller, team: &str) -> Result<Option<Webhook>> {
    let id = team_for(ctx, caller, team, false).await?;
    Ok(store::notifications::webhook(&ctx.pool, id).await?)
}

pub async fn set_webhook(
    ctx: &Context,
    caller: &Caller,
    team: &str,
    url: &str,
    secret_ref: &str,
) -> Result<Webhook> {
    let id = team_for(ctx, caller, team, true).await?;
    let (url, secret_ref) = (url.trim(), secret_ref.trim());
    let settings = &ctx.settings;
    let mut errors = Vec::new();
    match webhook::check_url(url, settings.webhook_allow_http) {
        Ok(parsed) => {
            if let Err(why) = crate::notify::webhook::destinations(settings, &parsed).await {
                errors.push(FieldError::new("url", why));
            }
        }
        Err(why) => errors.push(FieldError::new("url", why)),
    }
    match SecretRef::parse(secret_ref) {
        Ok(SecretRef::File(_)) if settings.webhook_secret_dir.is_none() => {
            errors.push(FieldError::new(
                "secret_ref",
                format!(
                    "this portal keeps no webhook secret files (no SWITCHBOARD_WEBHOOK_SECRET_DIR): use env:{}<NAME>",
                    webhook::ENV_PREFIX
                ),
            ));
        }
        Ok(_) => {}
        Err(why) => errors.push(FieldError::new("secret_ref", why)),
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut tx = ctx.pool.begin().await?;
    store::notifications::set_webhook(&mut *tx, id, url, secret_ref).await?;
    audit::by(
        &mut tx,
        caller,
        "team.webhook_set",
        "team",
        &id.to_string(),
        json!({ "after": { "url": url, "secret_ref": secret_ref } }),
    )
    .await?;
    tx.commit().await?;
    Ok(Webhook {
        team_id: id,
        url: url.to_owned(),
        secret_ref: secret_ref.to_owned(),
    })
}

/// Removes the team's webhook; a team without one is already as asked
/// (deleting is idempotent, and nothing is audited then).
pub async fn delete_webhook(ctx: &Context, caller: &Caller, team: &str) -> Result<()> {
    let id = team_for(ctx, caller, team, true).await?;
    let mut tx = ctx.pool.begin().await?;
    if !store::notifications::delete_webhook(&mut *tx, id).await? {
        return Ok(());
    }
    audit::by(
        &mut tx,
        caller,
        "team.webhook_deleted",
        "team",
        &id.to_string(),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues `event` for the webhooks of the teams of these connections, in the
/// caller's transaction; `payload` gives each connection's JSON.
pub(super) async fn queue_webhooks(
    tx: &mut PgConnection,
    event: &str,
    connections: &[Uuid],
    payload: impl Fn(Uuid) -> serde_json::Value,
) -> Result<()> {
    if connections.is_empty() {
        return Ok(());
    }
    for (connection, team, hook) in store::notifications::webhooks_of(&mut *tx, connections).await?
    {
        let mut body = payload(connection);
        body["event"] = json!(event);
        body["team"] = json!(team);
        body["at"] = json!(chrono::Utc::now());
        store::queue::enqueue(
            &mut *tx,
            &SendWebhook {
                url: hook.url,
                secret_ref: hook.secret_ref,
                body,
            },
        )
        .await?;
    }
    Ok(())
}
