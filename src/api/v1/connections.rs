//! Connection requests over HTTP: ask, see the plan, approve, reject, cancel.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::connection::{Kind, Status};
use crate::error::Error;
use crate::planner::Plan;
use crate::services::connections::{self, ConnectionRequest, ConnectionView};
use crate::services::{Caller, Context, monitor, provisioning};
use crate::store::audit::AuditEvent;
use crate::store::connections::{Connection, Side};

/// A team that must consent, and its lead's decision.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SideOut {
    team: String,
    /// `approved`, `rejected`, or null while undecided.
    decision: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    /// The plan hash the lead consented to.
    plan_hash: Option<String>,
    comment: String,
}

impl From<Side> for SideOut {
    fn from(s: Side) -> Self {
        Self {
            team: s.team_slug,
            decision: s.decision,
            decided_by: s.decided_by_name,
            decided_at: s.decided_at,
            plan_hash: s.plan_hash,
            comment: s.comment,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionOut {
    id: Uuid,
    kind: Kind,
    status: Status,
    requested_by: String,
    reason: String,
    /// The plan's one-line summary.
    summary: String,
    mechanism: crate::planner::Mechanism,
    /// SHA-256 of the plan: what approvers consent to.
    plan_hash: String,
    /// What was asked.
    #[schema(value_type = Object)]
    request: serde_json::Value,
    expires_at: Option<DateTime<Utc>>,
    failure: Option<String>,
    /// Present on a single connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    sides: Option<Vec<SideOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<Plan>,
    /// What provisioning did, step by step (on a single connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<StepOut>>,
    /// What the monitor saw last.
    observed: ObservedOut,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// What the monitor saw of a connection.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ObservedOut {
    /// `matches`, `differs`, `unknown` (the provider could not be asked), or null
    /// before the first observation.
    state: Option<String>,
    /// Since when it has looked like this.
    since: Option<DateTime<Utc>>,
    /// The differences in plain words, or why the state is unknown.
    details: Vec<String>,
    /// `account` (the provider account's default), `notify` or `auto`: what
    /// happens when it drifts.
    repair: String,
}

fn summary_out(c: Connection) -> ConnectionOut {
    let plan: Option<Plan> = serde_json::from_value(c.plan.clone()).ok();
    ConnectionOut {
        id: c.id,
        kind: Kind::parse(&c.kind).unwrap_or(Kind::NetworkToNetwork),
        status: Status::parse(&c.status).unwrap_or(Status::Failed),
        requested_by: c.requester_email,
        reason: c.reason,
        summary: plan.as_ref().map(|p| p.summary.clone()).unwrap_or_default(),
        mechanism: plan
            .as_ref()
            .map_or(crate::planner::Mechanism::VpcPeering, |p| p.mechanism),
        plan_hash: c.plan_hash,
        request: c.spec,
        expires_at: c.expires_at,
        failure: c.failure,
        sides: None,
        plan: None,
        steps: None,
        observed: ObservedOut {
            state: c.observed_state,
            since: c.observed_since,
            details: serde_json::from_value(c.observed_detail).unwrap_or_default(),
            repair: c.repair,
        },
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn view_out(v: ConnectionView) -> ConnectionOut {
    let plan = v.plan;
    let sides = v.sides.into_iter().map(SideOut::from).collect();
    let steps = v
        .steps
        .into_iter()
        .map(|s| StepOut {
            at: s.at,
            action: s.action,
            resource: s.resource,
            provider_id: s.provider_id,
        })
        .collect();
    ConnectionOut {
        sides: Some(sides),
        plan: Some(plan),
        steps: Some(steps),
        ..summary_out(v.connection)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StepOut {
    at: DateTime<Utc>,
    /// `created`, `found` (built by an earlier attempt), `deleted`, `retrying`, `failed`.
    action: String,
    resource: String,
    provider_id: Option<String>,
}

fn connection_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that connection".into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(super) struct ConnectionFilter {
    /// Only connections in this status, e.g. `pending_approval`.
    status: Option<String>,
}

/// Connections you requested or that involve your teams (all of them for admins).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", params(ConnectionFilter), responses((status = 200, body = [ConnectionOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    filter: web::Query<ConnectionFilter>,
) -> Result<web::Json<Vec<ConnectionOut>>, Error> {
    let found = connections::list(&ctx, &caller, filter.status.as_deref()).await?;
    Ok(web::Json(found.into_iter().map(summary_out).collect()))
}

/// Ask for a connection. The planner chooses the mechanism; the leads of the
/// teams owning each side are emailed to approve it.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", request_body = ConnectionRequest,
    responses((status = 201, body = ConnectionOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<ConnectionRequest>,
) -> Result<HttpResponse, Error> {
    let view = connections::request(&ctx, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(view_out(view)))
}

/// The plan a request would get, without saving anything.
#[utoipa::path(post, path = "/api/v1/connections/plan", tag = "connections", request_body = ConnectionRequest,
    responses((status = 200, body = Plan), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn preview(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<ConnectionRequest>,
) -> Result<web::Json<Plan>, Error> {
    Ok(web::Json(connections::preview(&ctx, &caller, &body).await?))
}

/// One connection, with its plan and the decision of each side.
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConnectionOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn get(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ConnectionOut>, Error> {
    Ok(web::Json(view_out(
        connections::get(&ctx, &caller, connection_id(&id)?).await?,
    )))
}

/// The exact plan: mechanism, resources, routes, rules, the alternatives
/// rejected, and its hash.
#[utoipa::path(get, path = "/api/v1/connections/{id}/plan", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = PlanOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn plan(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<PlanOut>, Error> {
    let v = connections::get(&ctx, &caller, connection_id(&id)?).await?;
    Ok(web::Json(PlanOut {
        plan_hash: v.connection.plan_hash,
        plan: v.plan,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanOut {
    plan_hash: String,
    plan: Plan,
}

/// What happened to the connection, oldest first: who did what, before/after.
#[utoipa::path(get, path = "/api/v1/connections/{id}/events", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = [EventOut]), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn events(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Vec<EventOut>>, Error> {
    let events = connections::events(&ctx, &caller, connection_id(&id)?).await?;
    Ok(web::Json(events.into_iter().map(EventOut::from).collect()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventOut {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl From<AuditEvent> for EventOut {
    fn from(e: AuditEvent) -> Self {
        Self {
            at: e.at,
            actor: e.actor_label,
            action: e.action,
            details: e.details,
        }
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    #[serde(default)]
    comment: String,
    /// The plan hash you reviewed: approval is refused if the plan changed since.
    plan_hash: Option<String>,
}

fn decision(body: Option<web::Json<DecisionIn>>) -> DecisionIn {
    body.map(web::Json::into_inner).unwrap_or_default()
}

/// Consent for the side(s) you lead. Never for your own request.
#[utoipa::path(post, path = "/api/v1/connections/{id}/approve", tag = "connections", params(("id" = Uuid, Path)), request_body(content = DecisionIn, description = "optional"),
    responses((status = 200, body = ConnectionOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, description = "your own request, a decided request, or a changed plan", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn approve(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: Option<web::Json<DecisionIn>>,
) -> Result<web::Json<ConnectionOut>, Error> {
    let d = decision(body);
    let v = connections::approve(
        &ctx,
        &caller,
        connection_id(&id)?,
        &d.comment,
        d.plan_hash.as_deref(),
    )
    .await?;
    Ok(web::Json(view_out(v)))
}

/// Refuse, with a comment for the requester.
#[utoipa::path(post, path = "/api/v1/connections/{id}/reject", tag = "connections", params(("id" = Uuid, Path)), request_body = DecisionIn,
    responses((status = 200, body = ConnectionOut), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: Option<web::Json<DecisionIn>>,
) -> Result<web::Json<ConnectionOut>, Error> {
    let d = decision(body);
    let v = connections::reject(&ctx, &caller, connection_id(&id)?, &d.comment).await?;
    Ok(web::Json(view_out(v)))
}

/// Withdraw your request while it waits for approval.
#[utoipa::path(post, path = "/api/v1/connections/{id}/cancel", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConnectionOut), (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn cancel(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ConnectionOut>, Error> {
    let v = connections::cancel(&ctx, &caller, connection_id(&id)?).await?;
    Ok(web::Json(view_out(v)))
}

/// Remove what the connection built (requester, leads of either side, admins).
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 202, description = "removal started", body = ConnectionOut), (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn remove(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    provisioning::remove(&ctx, &caller, id).await?;
    Ok(HttpResponse::Accepted().json(view_out(connections::get(&ctx, &caller, id).await?)))
}

/// Try a failed connection again (leads, admins).
#[utoipa::path(post, path = "/api/v1/connections/{id}/retry", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 202, description = "provisioning queued again", body = ConnectionOut), (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn retry(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    provisioning::retry(&ctx, &caller, id).await?;
    Ok(HttpResponse::Accepted().json(view_out(connections::get(&ctx, &caller, id).await?)))
}

/// A drift episode: when what exists stopped matching the approved plan, how,
/// and when (and how) it ended.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DriftOut {
    opened_at: DateTime<Utc>,
    /// The differences when it began, in plain words.
    differences: Vec<String>,
    /// As last seen.
    latest: Vec<String>,
    repair_asked_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    /// `recovered`, `repaired` or `removed`; null while open.
    closed_as: Option<String>,
}

/// A connection's drift episodes, newest first.
#[utoipa::path(get, path = "/api/v1/connections/{id}/drift", tag = "monitoring", params(("id" = Uuid, Path)),
    responses((status = 200, body = [DriftOut]), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn drift(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Vec<DriftOut>>, Error> {
    let id = connection_id(&id)?;
    let events = monitor::drift_history(&ctx, &caller, id).await?;
    let lines = |v: serde_json::Value| serde_json::from_value(v).unwrap_or_default();
    Ok(web::Json(
        events
            .into_iter()
            .map(|e| DriftOut {
                opened_at: e.opened_at,
                differences: lines(e.differences),
                latest: lines(e.latest),
                repair_asked_at: e.repair_asked_at,
                closed_at: e.closed_at,
                closed_as: e.closed_as,
            })
            .collect(),
    ))
}

/// Put an active or drifted connection back as approved now (leads, admins).
#[utoipa::path(post, path = "/api/v1/connections/{id}/repair", tag = "monitoring", params(("id" = Uuid, Path)),
    responses((status = 202, description = "repair queued", body = ConnectionOut), (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn repair(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    monitor::repair_now(&ctx, &caller, id).await?;
    Ok(HttpResponse::Accepted().json(view_out(connections::get(&ctx, &caller, id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairModeIn {
    /// `account` (the provider account's `repair` setting, notify by default),
    /// `notify` (tell the owners) or `auto` (re-apply the approved plan, then tell them).
    #[schema(example = "auto")]
    repair: String,
}

/// Choose what happens when the connection drifts (leads, admins).
#[utoipa::path(put, path = "/api/v1/connections/{id}/repair-mode", tag = "monitoring", params(("id" = Uuid, Path)),
    request_body = RepairModeIn,
    responses((status = 200, body = ConnectionOut), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn repair_mode(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<RepairModeIn>,
) -> Result<web::Json<ConnectionOut>, Error> {
    let id = connection_id(&id)?;
    monitor::set_repair(&ctx, &caller, id, &body.repair).await?;
    Ok(web::Json(view_out(
        connections::get(&ctx, &caller, id).await?,
    )))
}

/// How many connections I can see are in each state (`unknown`: active or
/// drifted, but the provider could not be asked).
#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusOut {
    #[schema(value_type = Object, example = json!({"drifted": 1, "unknown": 0, "failed": 0, "provisioning": 2, "active": 40, "pending_approval": 3}))]
    counts: serde_json::Map<String, serde_json::Value>,
}

/// Counts of my connections by state: the dashboard in numbers.
#[utoipa::path(get, path = "/api/v1/status", tag = "monitoring", responses((status = 200, body = StatusOut)))]
pub(super) async fn status(
    ctx: web::Data<Context>,
    caller: Caller,
) -> Result<web::Json<StatusOut>, Error> {
    let board = monitor::dashboard(&ctx, &caller).await?;
    Ok(web::Json(StatusOut {
        counts: board
            .counts
            .into_iter()
            .map(|(k, n)| (k, n.into()))
            .collect(),
    }))
}
