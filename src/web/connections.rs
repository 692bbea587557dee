//! Connection requests: the list, the request form with a live plan preview, a
//! request's page (plan, consent of each side, timeline) and the approval queue.

use std::str::FromStr;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Flash, render_page};
use crate::auth::policy::TeamRole;
use crate::domain::connection::{Kind, Status};
use crate::error::{Error, FieldError};
use crate::planner::Plan;
use crate::services::connections::{self, ConnectionRequest, ConnectionView};
use crate::services::networks::{self, NetworkDetail};
use crate::services::{Caller, Context, provisioning};
use crate::store::audit::AuditEvent;
use crate::store::connections::Connection;

fn connection_id(id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(id).map_err(|_| Error::NotFound("that connection".into()))
}

fn html(status: StatusCode, part: &impl Template) -> Result<HttpResponse, Error> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(part.render().map_err(Error::internal)?))
}

/// One line of a list: what the stored plan says, in the user's words.
struct Row {
    id: Uuid,
    status: Status,
    kind: Kind,
    summary: String,
    requester: String,
    created_at: DateTime<Utc>,
}

fn row_of(c: &Connection) -> Result<Row, Error> {
    Ok(Row {
        id: c.id,
        status: Status::parse(&c.status).ok_or_else(|| Error::internal("unknown status"))?,
        kind: Kind::parse(&c.kind).ok_or_else(|| Error::internal("unknown kind"))?,
        summary: c.plan["summary"].as_str().unwrap_or_default().to_owned(),
        requester: c.requester_name.clone(),
        created_at: c.created_at,
    })
}

#[derive(Deserialize, Default)]
pub(super) struct ListFilter {
    #[serde(default)]
    status: String,
}

#[derive(Template)]
#[template(path = "pages/connections.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    filter: ListFilter,
    statuses: [Status; 11],
}

pub(super) async fn list(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    filter: web::Query<ListFilter>,
) -> Result<HttpResponse, Error> {
    let filter = filter.into_inner();
    let rows = connections::list(&ctx, &caller, Some(&filter.status))
        .await?
        .iter()
        .map(row_of)
        .collect::<Result<_, _>>()?;
    render_page(
        StatusCode::OK,
        None,
        &ListPage {
            chrome,
            rows,
            filter,
            statuses: Status::ALL,
        },
    )
}

/// The request form as the browser sends it: every value a string.
#[derive(Deserialize, Default)]
pub(super) struct RequestForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    source_network_id: String,
    #[serde(default)]
    source_cidr: String,
    #[serde(default)]
    destination_network_id: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    ports: String,
    #[serde(default)]
    target_address: String,
    #[serde(default)]
    target_port: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    record_type: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    ttl: String,
    #[serde(default)]
    expires_in_hours: String,
}

fn some(text: &str) -> Option<String> {
    Some(text.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// An optional field that must parse; what does not becomes an error naming the field.
fn parsed<T: FromStr>(
    field: &'static str,
    text: &str,
    expected: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let value = text.parse().ok();
    if value.is_none() {
        errors.push(FieldError::new(field, format!("must be {expected}")));
    }
    value
}

impl RequestForm {
    /// The service's request, and the fields that did not even parse.
    fn to_request(&self) -> (ConnectionRequest, Vec<FieldError>) {
        let mut errors = Vec::new();
        let request = ConnectionRequest {
            kind: self.kind.trim().to_owned(),
            reason: self.reason.clone(),
            source_network_id: parsed(
                "source_network_id",
                &self.source_network_id,
                "a network's id",
                &mut errors,
            ),
            source_cidr: some(&self.source_cidr),
            destination_network_id: parsed(
                "destination_network_id",
                &self.destination_network_id,
                "a network's id",
                &mut errors,
            ),
            protocol: some(&self.protocol),
            ports: some(&self.ports),
            target_address: some(&self.target_address),
            target_port: parsed(
                "target_port",
                &self.target_port,
                "a port number from 1 to 65535",
                &mut errors,
            ),
            hostname: some(&self.hostname),
            path: some(&self.path),
            team: some(&self.team),
            name: some(&self.name),
            record_type: some(&self.record_type),
            value: some(&self.value),
            ttl: parsed(
                "ttl",
                &self.ttl,
                "a number of seconds such as 300",
                &mut errors,
            ),
            expires_in_hours: parsed(
                "expires_in_hours",
                &self.expires_in_hours,
                "a whole number of hours such as 24",
                &mut errors,
            ),
        };
        (request, errors)
    }
}

/// The form's own errors together with the service's for the other fields, so
/// that everything to fix is said at once. Nothing is saved.
async fn with_form_errors(
    ctx: &Context,
    caller: &Caller,
    req: &ConnectionRequest,
    mut errors: Vec<FieldError>,
) -> Error {
    let more = match connections::preview(ctx, caller, req).await {
        Ok(_) => Vec::new(),
        Err(Error::Invalid(more)) => more,
        Err(other) => return other,
    };
    for e in more {
        if !errors.iter().any(|mine| mine.field == e.field) {
            errors.push(e);
        }
    }
    Error::Invalid(errors)
}

#[derive(Template)]
#[template(path = "pages/connection_new.html")]
struct NewPage {
    chrome: Chrome,
    form: RequestForm,
    errors: Vec<FieldError>,
    kinds: [Kind; 4],
    networks: Vec<NetworkDetail>,
    my_teams: Vec<TeamRole>,
    is_admin: bool,
}

async fn new_page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    form: RequestForm,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, Error> {
    let page = NewPage {
        chrome,
        form,
        errors,
        kinds: Kind::ALL,
        networks: networks::list_networks(ctx, caller, None, None, None).await?,
        my_teams: caller.actor.teams.clone(),
        is_admin: caller.actor.is_admin,
    };
    render_page(status, None, &page)
}

pub(super) async fn new(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let form = RequestForm {
        kind: Kind::NetworkToNetwork.as_str().into(),
        ..RequestForm::default()
    };
    new_page(&ctx, chrome, &caller, form, Vec::new(), StatusCode::OK).await
}

pub(super) async fn create(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<RequestForm>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let (request, errors) = form.to_request();
    let result = if errors.is_empty() {
        connections::request(&ctx, &caller, request).await
    } else {
        Err(with_form_errors(&ctx, &caller, &request, errors).await)
    };
    match result {
        Ok(view) => Ok(Flash::success(format!(
            "Requested: {}. The leads of the teams involved are asked to approve it.",
            view.plan.summary
        ))
        .redirect(&format!("/connections/{}", view.connection.id))),
        Err(Error::Invalid(errors)) if !super::errors::wants_json(&req) => {
            new_page(
                &ctx,
                chrome,
                &caller,
                form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// A plan as approvers see it; without a plan, why there is none yet.
#[derive(Template)]
#[template(path = "partials/plan.html")]
struct PlanPart {
    plan: Option<Plan>,
    hash: String,
    errors: Vec<FieldError>,
}

impl PlanPart {
    fn of(plan: Plan) -> Self {
        Self {
            hash: plan.hash(),
            plan: Some(plan),
            errors: Vec::new(),
        }
    }
}

/// The form's live preview. Field errors come back as a 200 so that htmx shows them.
pub(super) async fn plan_preview(
    ctx: web::Data<Context>,
    caller: Caller,
    form: web::Query<RequestForm>,
) -> Result<HttpResponse, Error> {
    let (mut request, errors) = form.to_request();
    // The reason does not shape the plan: people see the plan before they
    // explain it, and submitting checks the reason.
    if request.reason.trim().is_empty() {
        request.reason = "preview".into();
    }
    let result = if errors.is_empty() {
        connections::preview(&ctx, &caller, &request).await
    } else {
        Err(with_form_errors(&ctx, &caller, &request, errors).await)
    };
    let part = match result {
        Ok(plan) => PlanPart::of(plan),
        Err(Error::Invalid(errors)) => PlanPart {
            plan: None,
            hash: String::new(),
            errors,
        },
        Err(e) => return Err(e),
    };
    html(StatusCode::OK, &part)
}

/// One audit event of a connection, flattened for reading.
struct EventRow {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    details: Vec<(String, String)>,
}

fn text_of(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join("; "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", text_of(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn event_row(e: AuditEvent) -> EventRow {
    let mut details: Vec<(String, String)> = e
        .details
        .as_object()
        .map(|map| map.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
        .unwrap_or_default();
    // The map is alphabetical; a change reads before → after, then the rest.
    details.sort_by_key(|(k, _)| match k.as_str() {
        "before" => 0,
        "after" => 1,
        _ => 2,
    });
    EventRow {
        at: e.at,
        actor: e.actor_label,
        action: e
            .action
            .strip_prefix("connection.")
            .unwrap_or(&e.action)
            .to_owned(),
        details,
    }
}

#[derive(Template)]
#[template(path = "pages/connection.html")]
struct ShowPage {
    chrome: Chrome,
    view: ConnectionView,
    plan: PlanPart,
    events: Vec<EventRow>,
    monitoring: super::monitoring::Monitoring,
}

async fn show_page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    id: Uuid,
    push_url: Option<&str>,
) -> Result<HttpResponse, Error> {
    let view = connections::get(ctx, caller, id).await?;
    let events = connections::events(ctx, caller, id)
        .await?
        .into_iter()
        .map(event_row)
        .collect();
    let monitoring = super::monitoring::section(ctx, caller, id, chrome.csrf.clone()).await?;
    let page = ShowPage {
        monitoring,
        chrome,
        plan: PlanPart::of(view.plan.clone()),
        view,
        events,
    };
    render_page(StatusCode::OK, push_url, &page)
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    show_page(&ctx, chrome, &caller, connection_id(&id)?, None).await
}

#[derive(Deserialize, Default)]
pub(super) struct DecisionForm {
    #[serde(default)]
    comment: String,
    /// The hash of the plan the lead was shown.
    #[serde(default)]
    plan_hash: String,
}

/// A refusal the person can act on (their own request, a changed plan, a
/// missing comment, a decision someone made meanwhile): said on the page.
fn refusal(e: &Error) -> Option<String> {
    match e {
        Error::Conflict(_) | Error::Invalid(_) | Error::Forbidden => Some(e.to_string()),
        _ => None,
    }
}

/// An approve/reject button of /approvals (htmx, not a boosted form) wants its
/// table row back instead of a page.
fn wants_row(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request") && !req.headers().contains_key("hx-boosted")
}

/// A request in the approval queue; after a decision, what was decided.
#[derive(Template)]
#[template(path = "partials/approval_row.html")]
struct ApprovalRow {
    id: Uuid,
    summary: String,
    requester: String,
    reason: String,
    plan_hash: String,
    csrf: String,
    outcome: Option<&'static str>,
    error: Option<String>,
}

impl ApprovalRow {
    fn of(c: &Connection, csrf: &str) -> Self {
        Self {
            id: c.id,
            summary: c.plan["summary"].as_str().unwrap_or_default().to_owned(),
            requester: c.requester_name.clone(),
            reason: c.reason.clone(),
            plan_hash: c.plan_hash.clone(),
            csrf: csrf.to_owned(),
            outcome: None,
            error: None,
        }
    }
}

/// The answer to approve, reject or cancel: the request page with a message,
/// or the queue's row for htmx.
async fn after_decision(
    req: &HttpRequest,
    ctx: &Context,
    mut chrome: Chrome,
    caller: &Caller,
    id: Uuid,
    result: Result<ConnectionView, Error>,
    outcome: &'static str,
) -> Result<HttpResponse, Error> {
    let page = format!("/connections/{id}");
    match result {
        Ok(view) if wants_row(req) => {
            let mut row = ApprovalRow::of(&view.connection, &chrome.csrf);
            row.outcome = Some(outcome);
            html(StatusCode::OK, &row)
        }
        Ok(view) => Ok(Flash::success(format!(
            "{outcome}. The request is now {}.",
            view.status.label()
        ))
        .redirect(&page)),
        Err(e) => {
            let Some(message) = refusal(&e) else {
                return Err(e);
            };
            if wants_row(req) {
                let view = connections::get(ctx, caller, id).await?;
                let mut row = ApprovalRow::of(&view.connection, &chrome.csrf);
                row.error = Some(message);
                return html(StatusCode::OK, &row);
            }
            // Shown in place (a 200, which htmx swaps), not through the flash
            // cookie: the message can be long (a changed plan lists its changes).
            chrome.flash = Some(Flash::error(message));
            show_page(ctx, chrome, caller, id, Some(&page)).await
        }
    }
}

pub(super) async fn approve(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let result =
        connections::approve(&ctx, &caller, id, &form.comment, Some(&form.plan_hash)).await;
    after_decision(&req, &ctx, chrome, &caller, id, result, "Approved").await
}

pub(super) async fn reject(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let result = connections::reject(&ctx, &caller, id, &form.comment).await;
    after_decision(&req, &ctx, chrome, &caller, id, result, "Rejected").await
}

pub(super) async fn cancel(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let result = connections::cancel(&ctx, &caller, id).await;
    after_decision(&req, &ctx, chrome, &caller, id, result, "Cancelled").await
}

/// The live part of a request page: its status and the provisioning steps. While
/// something is happening it asks to be fetched again (htmx polling), then stops.
#[derive(Template)]
#[template(path = "partials/progress.html")]
struct Progress {
    view: ConnectionView,
}

pub(super) async fn progress(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let view = connections::get(&ctx, &caller, connection_id(&id)?).await?;
    // The badge at the top of the page follows too (an out-of-band swap).
    let badge = format!(
        r#"<span class="badge status-{}" id="status" hx-swap-oob="true">{}</span>"#,
        view.status.as_str(),
        view.status.label()
    );
    let part = Progress { view }.render().map_err(Error::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(part + &badge))
}

/// Remove what a connection built (or clean up a failed one).
pub(super) async fn remove(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let result = provisioning::remove(&ctx, &caller, id).await;
    after_change(
        &ctx,
        chrome,
        &caller,
        id,
        result,
        "Removal started: the steps below show what is removed.",
    )
    .await
}

/// Try a failed connection again.
pub(super) async fn retry(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let result = provisioning::retry(&ctx, &caller, id).await;
    after_change(
        &ctx,
        chrome,
        &caller,
        id,
        result,
        "Trying again: the steps below show the progress.",
    )
    .await
}

/// After remove or retry: back to the request page with `done`, or with the
/// refusal said on it; other errors as error pages.
async fn after_change(
    ctx: &Context,
    mut chrome: Chrome,
    caller: &Caller,
    id: Uuid,
    result: Result<(), Error>,
    done: &str,
) -> Result<HttpResponse, Error> {
    let page = format!("/connections/{id}");
    let message = match result {
        Ok(()) => return Ok(Flash::success(done).redirect(&page)),
        Err(e) => refusal(&e).ok_or(e)?,
    };
    chrome.flash = Some(Flash::error(message));
    show_page(ctx, chrome, caller, id, Some(&page)).await
}

#[derive(Template)]
#[template(path = "pages/approvals.html")]
struct ApprovalsPage {
    chrome: Chrome,
    rows: Vec<ApprovalRow>,
}

pub(super) async fn approvals(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let rows = connections::approval_queue(&ctx, &caller)
        .await?
        .iter()
        .map(|c| ApprovalRow::of(c, &chrome.csrf))
        .collect();
    render_page(StatusCode::OK, None, &ApprovalsPage { chrome, rows })
}
