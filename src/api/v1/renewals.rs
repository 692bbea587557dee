//! Renewals over HTTP: ask to keep a connection longer; a lead of the
//! requester's team approves or rejects.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::connections::connection_id;
use crate::error::Error;
use crate::services::connections;
use crate::services::{Caller, Context};
use crate::store::renewals::Renewal;

/// A renewal: the expiry it replaces, the one asked for, and the decision.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RenewalOut {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub requested_by: String,
    pub previous_expiry: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `pending` (waiting for a lead of the requester's team), `approved` or `rejected`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

impl From<Renewal> for RenewalOut {
    fn from(r: Renewal) -> Self {
        Self {
            id: r.id,
            connection_id: r.connection_id,
            requested_by: r.requester_email,
            previous_expiry: r.previous_expiry,
            expires_at: r.expires_at,
            status: r.status,
            decided_by: r.decided_by_name,
            decided_at: r.decided_at,
            comment: r.comment,
            created_at: r.created_at,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewalIn {
    /// The new expiry, in hours from now: at most 2160 (90 days), or less
    /// when a provider account of the connection sets `renewal_max_days`.
    /// Earlier than the current expiry, it applies at once (`approved`).
    #[serde(default)]
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 2160, example = 720)]
    pub expires_in_hours: Option<i64>,
    /// Why it is still needed (optional).
    #[serde(default)]
    pub comment: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewalDecisionIn {
    /// A note kept with the approval (optional).
    #[serde(default)]
    pub comment: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewalRejectionIn {
    /// Why: required, and not only spaces (the person who asked reads it).
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        example = "ask again after the migration"
    )]
    pub comment: String,
}

fn renewal_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that renewal".into()))
}

/// Ask to keep a connection past its expiry (requester, leads, admins). A lead
/// of the requester's team (or an admin) renews at once (`approved`); anyone
/// else's renewal is `pending` until such a lead decides, and they are emailed.
/// An earlier expiry narrows what was approved and applies at once.
#[utoipa::path(post, path = "/api/v1/connections/{id}/renewals", operation_id = "renew_connection", tag = "connections", params(("id" = Uuid, Path)), request_body = RenewalIn,
    responses((status = 201, body = RenewalOut), (status = 409, description = "a renewal already waits, or the connection has no expiry or has ended", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn renew(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: Option<web::Json<RenewalIn>>,
) -> Result<HttpResponse, Error> {
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    let renewal = connections::renew(
        &ctx,
        &caller,
        connection_id(&id)?,
        body.expires_in_hours,
        &body.comment,
    )
    .await?;
    Ok(HttpResponse::Created().json(RenewalOut::from(renewal)))
}

/// A connection's renewals, newest first (at most 100).
#[utoipa::path(get, path = "/api/v1/connections/{id}/renewals", operation_id = "list_renewals", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = [RenewalOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Vec<RenewalOut>>, Error> {
    let renewals = connections::renewals(&ctx, &caller, connection_id(&id)?).await?;
    Ok(web::Json(
        renewals.into_iter().map(RenewalOut::from).collect(),
    ))
}

/// Approve a waiting renewal (leads of the requester's team, admins).
#[utoipa::path(post, path = "/api/v1/renewals/{id}/approve", operation_id = "approve_renewal", tag = "connections", params(("id" = Uuid, Path)), request_body(content = RenewalDecisionIn, description = "optional"),
    responses((status = 200, body = RenewalOut), (status = 409, description = "already decided", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn approve(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: Option<web::Json<RenewalDecisionIn>>,
) -> Result<web::Json<RenewalOut>, Error> {
    let comment = body.map(|b| b.into_inner().comment).unwrap_or_default();
    let r = connections::decide_renewal(&ctx, &caller, renewal_id(&id)?, true, &comment).await?;
    Ok(web::Json(r.into()))
}

/// Reject a waiting renewal, saying why (leads of the requester's team, admins).
#[utoipa::path(post, path = "/api/v1/renewals/{id}/reject", operation_id = "reject_renewal", tag = "connections", params(("id" = Uuid, Path)), request_body = RenewalRejectionIn,
    responses((status = 200, body = RenewalOut), (status = 409, description = "already decided", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: Option<web::Json<RenewalRejectionIn>>,
) -> Result<web::Json<RenewalOut>, Error> {
    let comment = body.map(|b| b.into_inner().comment).unwrap_or_default();
    let r = connections::decide_renewal(&ctx, &caller, renewal_id(&id)?, false, &comment).await?;
    Ok(web::Json(r.into()))
}
