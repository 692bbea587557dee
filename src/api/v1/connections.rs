//! Connection requests over HTTP: ask, see the plan, approve, reject, cancel.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::idempotency::Key;
use super::model::{ConnectionRequest, Kind, Mechanism, Plan, Status};
use super::page::{self, PageQuery};
use crate::error::Error;
use crate::planner;
use crate::services::connections::{self, ConnectionView};
use crate::services::{Caller, Context, monitor, provisioning};
use crate::store::audit::AuditEvent;
use crate::store::connections::{Connection, Side};

/// A team that must consent, and its lead's decision.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SideOut {
    pub team: String,
    /// `approved`, `rejected`, or null while undecided.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The plan hash the lead consented to.
    pub plan_hash: Option<String>,
    pub comment: String,
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

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionOut {
    pub id: Uuid,
    pub kind: Kind,
    pub status: Status,
    pub requested_by: String,
    pub reason: String,
    /// The plan's one-line summary.
    pub summary: String,
    pub mechanism: Mechanism,
    /// What approvers consent to: `v2:` and the SHA-256 of what the plan builds
    /// (not of its wording); an approval names the hash it was given for.
    pub plan_hash: String,
    /// What was asked.
    pub request: ConnectionRequest,
    pub expires_at: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    /// Present on a single connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sides: Option<Vec<SideOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// What provisioning did, step by step (on a single connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepOut>>,
    /// While it waits for approval (on a single connection): the traffic it
    /// would let through, each flow with the open connection that already
    /// allows it (`already_by`), if any: its reachability delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach: Option<Vec<ReachDeltaOut>>,
    /// What the monitor saw last.
    pub observed: ObservedOut,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the monitor saw of a connection.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObservedOut {
    /// `matches`, `differs`, `unreachable` (configured as approved, but a probe
    /// shows the traffic does not pass), `unknown` (the provider could not be
    /// asked), or null before the first observation.
    pub state: Option<String>,
    /// Since when it has looked like this.
    pub since: Option<DateTime<Utc>>,
    /// The differences in plain words, or why the state is unknown.
    pub details: Vec<String>,
    /// `account` (the provider account's default), `notify` or `auto`: what
    /// happens when it drifts.
    pub repair: String,
    /// When the monitor last proved that the approved traffic passes (where
    /// the provider lets Switchboard send traffic), and what it tried.
    pub verified_at: Option<DateTime<Utc>>,
    pub verified: Option<String>,
}

/// A stored plan or request that cannot be read is a fault to see, never a default.
fn summary_out(c: Connection) -> Result<ConnectionOut, Error> {
    let plan: planner::Plan = serde_json::from_value(c.plan.clone()).map_err(|e| {
        Error::internal(format!(
            "the stored plan of connection {} cannot be read: {e}",
            c.id
        ))
    })?;
    connection_out(c, &plan)
}

fn connection_out(c: Connection, plan: &planner::Plan) -> Result<ConnectionOut, Error> {
    let request: connections::ConnectionRequest = serde_json::from_value(c.spec).map_err(|e| {
        Error::internal(format!(
            "the stored request of connection {} cannot be read: {e}",
            c.id
        ))
    })?;
    Ok(ConnectionOut {
        id: c.id,
        kind: c.kind.into(),
        status: c.status.into(),
        requested_by: c.requester_email,
        reason: c.reason,
        summary: plan.summary.clone(),
        mechanism: plan.mechanism.into(),
        plan_hash: c.plan_hash,
        request: request.into(),
        expires_at: c.expires_at,
        failure: c.failure,
        sides: None,
        plan: None,
        steps: None,
        reach: None,
        observed: ObservedOut {
            state: c.observed_state,
            since: c.observed_since,
            details: serde_json::from_value(c.observed_detail).unwrap_or_default(),
            repair: c.repair,
            verified_at: c.verified_at,
            verified: c.verified,
        },
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

/// A flow a request would add, and the open connection that already allows it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReachDeltaOut {
    pub flow: super::reach::FlowOut,
    pub already_by: Option<Uuid>,
}

fn view_out(v: ConnectionView) -> Result<ConnectionOut, Error> {
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
    let out = connection_out(v.connection, &v.plan)?;
    Ok(ConnectionOut {
        sides: Some(sides),
        plan: Some(v.plan.into()),
        steps: Some(steps),
        reach: Some(
            v.reach
                .into_iter()
                .map(|a| ReachDeltaOut {
                    flow: a.flow.into(),
                    already_by: a.already_by,
                })
                .collect(),
        ),
        ..out
    })
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepOut {
    pub at: DateTime<Utc>,
    /// `created`, `found` (built by an earlier attempt), `deleted`, `retrying`, `failed`.
    pub action: String,
    pub resource: String,
    pub provider_id: Option<String>,
}

pub(super) fn connection_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that connection".into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ConnectionFilter {
    /// Only connections in this status.
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// Only connections of this kind.
    #[param(value_type = Option<Kind>)]
    kind: Option<String>,
    /// Only connections where this team (its slug) is a side.
    team: Option<String>,
    /// Only connections from or to this network (its id).
    #[param(value_type = Option<Uuid>)]
    network: Option<String>,
    /// Only connections this person (their email address) asked for.
    requested_by: Option<String>,
    /// Only connections created at or after this instant (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    created_after: Option<String>,
    /// Only connections created before this instant (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    created_before: Option<String>,
}

/// Connections you requested or that involve your teams (all of them for
/// admins), newest first, a page at a time.
#[utoipa::path(operation_id = "list_connections", get, path = "/api/v1/connections", tag = "connections", params(ConnectionFilter, PageQuery), responses((status = 200, body = [ConnectionOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    filter: web::Query<ConnectionFilter>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let f = filter.into_inner();
    page::not_blank(&[
        ("network", &f.network),
        ("created_after", &f.created_after),
        ("created_before", &f.created_before),
    ])?;
    let filter = connections::ConnectionFilter {
        status: f.status,
        kind: f.kind,
        team: f.team,
        network: f.network,
        requested_by: f.requested_by,
        created_after: f.created_after,
        created_before: f.created_before,
    };
    let found = connections::list(&ctx, &caller, &filter, &page.page()?).await?;
    Ok(page::respond(&req, found.try_map(summary_out)?))
}

/// Ask for a connection. The planner chooses the mechanism; the leads of the
/// teams owning each side are emailed to approve it.
#[utoipa::path(operation_id = "create_connection", post, path = "/api/v1/connections", tag = "connections", request_body = ConnectionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Any 1 to 255 visible ASCII characters, new for each new request: a retry with the same key and request within 24 hours answers with what the first made instead of making another")), 
    responses((status = 201, body = ConnectionOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    key: Key,
    body: web::Json<ConnectionRequest>,
) -> Result<HttpResponse, Error> {
    let view = connections::request(&ctx, &caller, body.into_inner().into(), key.get()).await?;
    Ok(HttpResponse::Created().json(view_out(view)?))
}

/// The plan a request would get, without saving anything.
#[utoipa::path(post, path = "/api/v1/connections/plan", tag = "connections", request_body = ConnectionRequest,
    responses((status = 200, body = Plan), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn preview(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<ConnectionRequest>,
) -> Result<web::Json<Plan>, Error> {
    let request = body.into_inner().into();
    Ok(web::Json(
        connections::preview(&ctx, &caller, &request).await?.into(),
    ))
}

/// One connection, with its plan and the decision of each side.
#[utoipa::path(operation_id = "get_connection", get, path = "/api/v1/connections/{id}", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConnectionOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn get(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ConnectionOut>, Error> {
    Ok(web::Json(view_out(
        connections::get(&ctx, &caller, connection_id(&id)?).await?,
    )?))
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
        plan: v.plan.into(),
    }))
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanOut {
    pub plan_hash: String,
    pub plan: Plan,
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

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventOut {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
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

#[derive(Clone, Debug, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    #[serde(default)]
    pub comment: String,
    /// The plan hash you reviewed: approval is refused if the plan changed since.
    pub plan_hash: Option<String>,
}

/// A refusal: the requester reads the comment.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectionIn {
    /// Why: required, and not only spaces.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        example = "use the shared egress instead"
    )]
    pub comment: String,
    /// Accepted and ignored, as for an approval (a refusal needs no plan).
    pub plan_hash: Option<String>,
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
    Ok(web::Json(view_out(v)?))
}

/// Refuse, with a comment for the requester.
#[utoipa::path(post, path = "/api/v1/connections/{id}/reject", tag = "connections", params(("id" = Uuid, Path)), request_body = RejectionIn,
    responses((status = 200, body = ConnectionOut), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: Option<web::Json<RejectionIn>>,
) -> Result<web::Json<ConnectionOut>, Error> {
    let comment = body.map(|b| b.into_inner().comment).unwrap_or_default();
    let v = connections::reject(&ctx, &caller, connection_id(&id)?, &comment).await?;
    Ok(web::Json(view_out(v)?))
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
    Ok(web::Json(view_out(v)?))
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
    Ok(HttpResponse::Accepted().json(view_out(connections::get(&ctx, &caller, id).await?)?))
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
    Ok(HttpResponse::Accepted().json(view_out(connections::get(&ctx, &caller, id).await?)?))
}

/// A drift episode: when what exists stopped matching the approved plan, how,
/// and when (and how) it ended.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DriftOut {
    pub opened_at: DateTime<Utc>,
    /// The differences when it began, in plain words.
    pub differences: Vec<String>,
    /// As last seen.
    pub latest: Vec<String>,
    pub repair_asked_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// `recovered`, `repaired` or `removed`; null while open.
    pub closed_as: Option<String>,
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
    Ok(HttpResponse::Accepted().json(view_out(connections::get(&ctx, &caller, id).await?)?))
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairModeIn {
    /// `account` (the provider account's `repair` setting, notify by default),
    /// `notify` (tell the owners) or `auto` (re-apply the approved plan, then tell them).
    #[schema(value_type = RepairMode, example = "auto")]
    pub repair: String,
}

/// What happens when a connection drifts.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RepairMode {
    Account,
    Notify,
    Auto,
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
    )?))
}

/// How many connections I can see are in each state (`unknown`: active or
/// drifted, but the provider could not be asked).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusOut {
    #[schema(value_type = Object, example = json!({"drifted": 1, "unknown": 0, "failed": 0, "provisioning": 2, "active": 40, "pending_approval": 3}))]
    pub counts: serde_json::Map<String, serde_json::Value>,
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

/// Requests waiting for my decision: pending, asked by someone else, with a
/// side of a team I lead that has not decided yet. Oldest first, a page at a
/// time (empty for whoever leads no team).
#[utoipa::path(operation_id = "list_approvals", get, path = "/api/v1/approvals", tag = "connections", params(PageQuery),
    responses((status = 200, body = [ConnectionOut])))]
pub(super) async fn approvals(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let waiting = connections::approval_queue(&ctx, &caller).await?;
    let found = crate::domain::page::page_of(waiting, &page.page()?, |c| {
        (c.created_at.timestamp_micros(), c.id)
    });
    Ok(page::respond(&req, found.try_map(summary_out)?))
}
