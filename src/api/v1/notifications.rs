//! Email preferences (mine) and teams' webhooks.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::domain::notification::Topic;
use crate::error::Error;
use crate::services::{Caller, Context, notifications};

/// Email on (true) or off (false) per kind; in a change, kinds left out stay
/// as they are.
#[derive(Clone, Debug, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesIo {
    /// Requests waiting for my team's approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<bool>,
    /// Decisions on my requests, and expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decisions: Option<bool>,
    /// My connections becoming active, failing, being removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<bool>,
    /// Connections I own drifting from what was approved, and recovering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<bool>,
}

fn out(prefs: Vec<(Topic, bool)>) -> PreferencesIo {
    let on = |t: Topic| prefs.iter().find(|p| p.0 == t).map(|p| p.1);
    PreferencesIo {
        approvals: on(Topic::Approvals),
        decisions: on(Topic::Decisions),
        provisioning: on(Topic::Provisioning),
        drift: on(Topic::Drift),
    }
}

/// Which emails I get.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "accounts", responses((status = 200, body = PreferencesIo)))]
pub(super) async fn preferences(
    ctx: web::Data<Context>,
    caller: Caller,
) -> Result<web::Json<PreferencesIo>, Error> {
    Ok(web::Json(out(
        notifications::preferences(&ctx, &caller).await?
    )))
}

/// Turn kinds of email on or off.
#[utoipa::path(put, path = "/api/v1/me/notifications", tag = "accounts", request_body = PreferencesIo,
    responses((status = 200, body = PreferencesIo), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn set_preferences(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<PreferencesIo>,
) -> Result<web::Json<PreferencesIo>, Error> {
    let b = body.into_inner();
    let changes: Vec<(String, bool)> = [
        (Topic::Approvals, b.approvals),
        (Topic::Decisions, b.decisions),
        (Topic::Provisioning, b.provisioning),
        (Topic::Drift, b.drift),
    ]
    .into_iter()
    .filter_map(|(t, on)| Some((t.as_str().to_owned(), on?)))
    .collect();
    Ok(web::Json(out(notifications::set_preferences(
        &ctx, &caller, &changes,
    )
    .await?)))
}

/// A team's webhook: drift events (`connection.drifted`, `connection.recovered`)
/// as JSON, with `X-Switchboard-Signature: sha256=<HMAC-SHA256 of the body>`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIo {
    #[schema(example = "https://chat.example.com/hooks/network")]
    pub url: String,
    /// Where the workers read the signing secret (`env:NAME` or `file:/path`); never the secret.
    #[schema(
        example = "env:SWITCHBOARD_WEBHOOK_SECRET_PAYMENTS",
        pattern = r"^(env:SWITCHBOARD_WEBHOOK_SECRET_[A-Z0-9_]+|file:[A-Za-z0-9_-][A-Za-z0-9._-]*)$"
    )]
    pub secret_ref: String,
}

/// The team's webhook (members).
#[utoipa::path(get, path = "/api/v1/teams/{slug}/webhook", tag = "teams", params(("slug" = String, Path)),
    responses((status = 200, body = WebhookIo), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn webhook(
    ctx: web::Data<Context>,
    caller: Caller,
    slug: web::Path<String>,
) -> Result<web::Json<WebhookIo>, Error> {
    let hook = notifications::webhook(&ctx, &caller, &slug)
        .await?
        .ok_or_else(|| Error::NotFound("a webhook of that team".into()))?;
    Ok(web::Json(WebhookIo {
        url: hook.url,
        secret_ref: hook.secret_ref,
    }))
}

/// Set the team's webhook (its leads, admins).
#[utoipa::path(put, path = "/api/v1/teams/{slug}/webhook", tag = "teams", params(("slug" = String, Path)), request_body = WebhookIo,
    responses((status = 200, body = WebhookIo), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn set_webhook(
    ctx: web::Data<Context>,
    caller: Caller,
    slug: web::Path<String>,
    body: web::Json<WebhookIo>,
) -> Result<web::Json<WebhookIo>, Error> {
    let hook =
        notifications::set_webhook(&ctx, &caller, &slug, &body.url, &body.secret_ref).await?;
    Ok(web::Json(WebhookIo {
        url: hook.url,
        secret_ref: hook.secret_ref,
    }))
}

/// Remove the team's webhook (its leads, admins): 204 whether or not it had
/// one; 404 for a team that does not exist.
#[utoipa::path(delete, path = "/api/v1/teams/{slug}/webhook", tag = "teams", params(("slug" = String, Path)),
    responses((status = 204), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn delete_webhook(
    ctx: web::Data<Context>,
    caller: Caller,
    slug: web::Path<String>,
) -> Result<HttpResponse, Error> {
    notifications::delete_webhook(&ctx, &caller, &slug).await?;
    Ok(HttpResponse::NoContent().finish())
}
