//! Who hears of what: each person's email preferences, and each team's webhook
//! (drift events as JSON, signed with HMAC-SHA256, delivered by the workers).

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context, audit};
use crate::domain::jobs::SendWebhook;
use crate::domain::notification::{Topic, is_secret_ref};
use crate::domain::team::Role;
use crate::error::{Error, FieldError, Result};
use crate::store::{self, notifications::Webhook};

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
    let role = caller.actor.role_in(team.id);
    let allowed = caller.actor.is_admin
        || match change {
            true => role == Some(Role::Lead),
            false => role.is_some(),
        };
    if !allowed {
        return Err(Error::Forbidden);
    }
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
    let mut errors = Vec::new();
    let parsed = url::Url::parse(url).ok();
    if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
        errors.push(FieldError::new("url", "must be an http(s) URL"));
    }
    if !is_secret_ref(secret_ref) {
        errors.push(FieldError::new(
            "secret_ref",
            "must be env:VARIABLE_NAME or file:/absolute/path (where the workers read the signing secret; it is never stored)",
        ));
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

pub async fn delete_webhook(ctx: &Context, caller: &Caller, team: &str) -> Result<()> {
    let id = team_for(ctx, caller, team, true).await?;
    let mut tx = ctx.pool.begin().await?;
    if !store::notifications::delete_webhook(&mut *tx, id).await? {
        return Err(Error::NotFound("a webhook of that team".into()));
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

/// The signature of a body: `sha256=` and the hex HMAC-SHA256 with the secret.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Posts one webhook; an error is worth retrying (the job backs off).
pub async fn deliver(job: &SendWebhook) -> std::result::Result<(), String> {
    let secret = crate::config::read_secret(&job.secret_ref)?;
    let body = serde_json::to_vec(&job.body).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let event = job.body["event"].as_str().unwrap_or("event");
    let answer = client
        .post(&job.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Switchboard-Event", event)
        .header(
            "X-Switchboard-Signature",
            signature(secret.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("could not post to the webhook: {e}"))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", answer.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
