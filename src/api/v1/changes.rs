//! Changes of active connections over HTTP: ask for other ports, protocol or
//! reason; leads approve what lets more through; the workers build the
//! difference in place.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::connections::connection_id;
use super::model::Plan;
use crate::error::Error;
use crate::services::connections::{self, ChangeRequest, ChangeView};
use crate::services::{Caller, Context};

/// A change: what it asks for, the plan it builds, the difference from the
/// plan built, and each side's decision.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeOut {
    pub id: Uuid,
    pub connection_id: Uuid,
    /// The connection's version it made once applied (the request itself is 1); absent until then.
    pub version: Option<i32>,
    /// The email of who asked for it.
    pub requested_by: String,
    /// `pending` (waiting for every side's lead), `approved` (being built),
    /// `applied`, `rejected` or `failed`.
    #[schema(example = "pending")]
    pub status: String,
    /// `wider` (lets more through: every side's lead approves), `narrower`
    /// or `same` (applied without the other side).
    #[schema(example = "wider")]
    pub scope: String,
    pub protocol: Option<String>,
    pub ports: Option<String>,
    pub reason: String,
    /// What a lead approves (`POST /api/v1/changes/{id}/approve`).
    pub plan_hash: String,
    /// The plan it changes.
    pub previous_plan_hash: String,
    pub difference: DifferenceOut,
    pub sides: Vec<ChangeSideOut>,
    pub plan: Plan,
    /// For a waiting change looked at alone (`GET /api/v1/changes/{id}`, and
    /// the answers to asking and deciding): what it would let through that the
    /// connection does not, and what it would no longer let through.
    pub reach: Option<ChangeReachOut>,
    pub failure: Option<String>,
    /// Why it was rejected.
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
}

/// A change's reachability delta.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeReachOut {
    /// Flows it adds (only the ports gained), each with the open connection
    /// that already allows it, if any.
    pub added: Vec<super::connections::ReachDeltaOut>,
    /// Flows it takes away (only the ports lost).
    pub removed: Vec<super::reach::FlowOut>,
}

/// The plan's items, by what the change does to them.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DifferenceOut {
    #[schema(example = json!(["firewall rule tcp 443, 8443 from 10.2.0.0/16 in cloud"]))]
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Untouched while the difference is built (a peering, its routes…).
    pub kept: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeSideOut {
    pub team: String,
    /// `approved`, `rejected`, or absent while undecided.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
}

impl From<ChangeView> for ChangeOut {
    fn from(v: ChangeView) -> Self {
        let c = v.change;
        let spec: connections::ConnectionRequest =
            serde_json::from_value(c.spec).unwrap_or_default();
        Self {
            id: c.id,
            connection_id: c.connection_id,
            version: (c.version > 0).then_some(c.version),
            requested_by: c.requester_email,
            status: c.status,
            scope: c.scope,
            protocol: spec.protocol,
            ports: spec.ports,
            reason: spec.reason,
            plan_hash: c.plan_hash,
            previous_plan_hash: c.previous_plan_hash,
            difference: DifferenceOut {
                added: v.difference.added,
                removed: v.difference.removed,
                kept: v.difference.kept,
            },
            sides: v
                .sides
                .into_iter()
                .map(|s| ChangeSideOut {
                    team: s.team_slug,
                    decision: s.decision,
                    decided_by: s.decided_by_name,
                })
                .collect(),
            plan: v.plan.into(),
            reach: v.reach.map(|(added, removed)| ChangeReachOut {
                added: added
                    .into_iter()
                    .map(|a| super::connections::ReachDeltaOut {
                        flow: a.flow.into(),
                        already_by: a.already_by,
                    })
                    .collect(),
                removed: removed.into_iter().map(Into::into).collect(),
            }),
            failure: c.failure,
            comment: c.comment,
            created_at: c.created_at,
            applied_at: c.applied_at,
        }
    }
}

/// What to change; absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeIn {
    /// `any`, `tcp`, `udp` or `icmp`.
    #[schema(example = "tcp")]
    pub protocol: Option<String>,
    /// Ports or ranges, e.g. `443, 8443`; empty means all.
    #[schema(example = "443, 8443")]
    pub ports: Option<String>,
    /// The new reason (1 to 2000 characters, not only spaces).
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeApprovalIn {
    /// The change's `plan_hash` the lead looked at.
    #[schema(example = "v2:5e1f…")]
    pub plan_hash: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRejectionIn {
    /// Why: required, and not only spaces (the person who asked reads it).
    #[schema(min_length = 1, max_length = 2000, example = "8443 is not served")]
    pub reason: String,
}

fn change_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that change".into()))
}

/// Ask for a change of an active connection (its requester, a lead of a side,
/// an admin). One that lets more through waits for every side's lead
/// (`pending`); one that lets less through (or only rewords the reason) is
/// applied at once (`approved`, then `applied`). One change at a time (409).
#[utoipa::path(post, path = "/api/v1/connections/{id}/changes", operation_id = "change_connection", tag = "connections", params(("id" = Uuid, Path)), request_body = ChangeIn,
    responses((status = 201, body = ChangeOut),
              (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, description = "not active, or another change waits", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ChangeIn>,
) -> Result<HttpResponse, Error> {
    let b = body.into_inner();
    let change = connections::propose_change(
        &ctx,
        &caller,
        connection_id(&id)?,
        ChangeRequest {
            protocol: b.protocol,
            ports: b.ports,
            reason: b.reason,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(ChangeOut::from(change)))
}

/// A connection's changes, newest first: its versions and what waits.
#[utoipa::path(get, path = "/api/v1/connections/{id}/changes", operation_id = "list_changes", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = [ChangeOut]), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Vec<ChangeOut>>, Error> {
    let all = connections::changes(&ctx, &caller, connection_id(&id)?).await?;
    Ok(web::Json(all.into_iter().map(ChangeOut::from).collect()))
}

/// One change.
#[utoipa::path(get, path = "/api/v1/changes/{id}", operation_id = "get_change", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = ChangeOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn get(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ChangeOut>, Error> {
    Ok(web::Json(
        connections::change(&ctx, &caller, change_id(&id)?)
            .await?
            .into(),
    ))
}

/// Approve a change that lets more through, for the sides one leads, with
/// the plan hash one saw; the last side's approval starts building it.
#[utoipa::path(post, path = "/api/v1/changes/{id}/approve", operation_id = "approve_change", tag = "connections", params(("id" = Uuid, Path)), request_body = ChangeApprovalIn,
    responses((status = 200, body = ChangeOut),
              (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, description = "already decided, or another plan than the one seen", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn approve(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ChangeApprovalIn>,
) -> Result<web::Json<ChangeOut>, Error> {
    let change =
        connections::decide_change(&ctx, &caller, change_id(&id)?, true, &body.plan_hash, "")
            .await?;
    Ok(web::Json(change.into()))
}

/// Reject a change, saying why: the connection stays as it is.
#[utoipa::path(post, path = "/api/v1/changes/{id}/reject", operation_id = "reject_change", tag = "connections", params(("id" = Uuid, Path)), request_body = ChangeRejectionIn,
    responses((status = 200, body = ChangeOut),
              (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, description = "already decided", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ChangeRejectionIn>,
) -> Result<web::Json<ChangeOut>, Error> {
    let change =
        connections::decide_change(&ctx, &caller, change_id(&id)?, false, "", &body.reason).await?;
    Ok(web::Json(change.into()))
}
