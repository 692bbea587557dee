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
use crate::domain::page::Page;
use crate::error::{Error, FieldError};
use crate::planner::Plan;
use crate::services::connections::{self, ConnectionRequest, ConnectionView};
use crate::services::networks::{self, NetworkDetail};
use crate::services::{Caller, Context, provisioning};
use crate::store::audit::AuditEvent;
use crate::store::connections::Connection;

mod decide;
mod request;

use request::*;

pub(super) use decide::{approvals, approve, cancel, progress, reject, remove, retry};
pub(super) use request::{create, new, plan_preview};

/// A connection's id from a path; one that is not an id names nothing.
pub(super) fn connection_id(id: &str) -> Result<Uuid, Error> {
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
        status: c.status,
        kind: c.kind,
        summary: c.plan["summary"].as_str().unwrap_or_default().to_owned(),
        requester: c.requester_name.clone(),
        created_at: c.created_at,
    })
}

#[derive(Deserialize, Default)]
pub(super) struct ListFilter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    kind: String,
    /// A team's slug or a network's id, from a team's or a network's page.
    #[serde(default)]
    team: String,
    #[serde(default)]
    network: String,
    #[serde(default)]
    cursor: String,
}

#[derive(Template)]
#[template(path = "pages/connections.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    filter: ListFilter,
    statuses: [Status; 11],
    kinds: [Kind; 4],
    /// The link to the next (older) page, if there is one.
    older: Option<String>,
}

pub(super) async fn list(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    filter: web::Query<ListFilter>,
) -> Result<HttpResponse, Error> {
    let filter = filter.into_inner();
    let wanted = connections::ConnectionFilter {
        status: Some(filter.status.clone()),
        kind: Some(filter.kind.clone()),
        team: Some(filter.team.clone()),
        network: Some(filter.network.clone()),
        ..Default::default()
    };
    let page =
        Page::parse(None, Some(&filter.cursor)).map_err(|e| Error::invalid(e.field, e.reason))?;
    let found = connections::list(&ctx, &caller, &wanted, &page).await?;
    let older = found.next.as_ref().map(|next| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("status", &filter.status);
        query.append_pair("kind", &filter.kind);
        for (name, value) in [("team", &filter.team), ("network", &filter.network)] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("cursor", next);
        format!("/connections?{}", query.finish())
    });
    let rows = found.items.iter().map(row_of).collect::<Result<_, _>>()?;
    render_page(
        StatusCode::OK,
        None,
        &ListPage {
            chrome,
            rows,
            filter,
            statuses: Status::ALL,
            kinds: Kind::ALL,
            older,
        },
    )
}

/// One audit event of a connection, flattened for reading.
struct EventRow {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    details: Vec<(String, String)>,
}

/// A SHA-256 in hex, maybe after a version ("v2:…").
fn is_hash(s: &str) -> bool {
    let hex = s.split_once(':').map_or(s, |(_, h)| h);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A recorded value in words: a full hash is shortened (its start tells
/// plans apart), objects read as "key: value".
fn text_of(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::String(s) if is_hash(s) => format!("{}…", &s[..s.len() - 52]),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join("; "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{}: {}", k.replace('_', " "), text_of(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn event_row(e: AuditEvent) -> EventRow {
    let mut details: Vec<(String, String)> = e
        .details
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.replace('_', " "), text_of(v)))
                .filter(|(_, v)| !v.is_empty())
                .collect()
        })
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
            .replace('_', " "),
        details,
    }
}

#[derive(Template)]
#[template(path = "pages/connection.html")]
struct ShowPage {
    chrome: Chrome,
    banner: Banner,
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
    status: StatusCode,
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
        banner: Banner::of(&view),
        monitoring,
        chrome,
        plan: PlanPart::of(view.plan.clone()),
        view,
        events,
    };
    render_page(status, push_url, &page)
}

/// What a request page says first: where the request stands, in a sentence,
/// and how it looks (`ok`, `info`, `warn`, `bad`).
struct Banner {
    tone: &'static str,
    text: String,
}

impl Banner {
    fn of(view: &ConnectionView) -> Self {
        let c = &view.connection;
        let at = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let first_difference = c.first_difference();
        // " since …" when the monitor recorded when its finding began.
        let since = c
            .observed_since
            .map(|t| format!(" since {}", at(t)))
            .unwrap_or_default();
        let (tone, text) = match view.status {
            Status::PendingApproval => {
                let waiting: Vec<&str> = view
                    .sides
                    .iter()
                    .filter(|s| s.decision.is_none())
                    .map(|s| s.team_slug.as_str())
                    .collect();
                (
                    "info",
                    format!(
                        "Waiting for a lead of {} to approve.",
                        waiting.join(" and ")
                    ),
                )
            }
            Status::Approved | Status::Provisioning => (
                "info",
                "Approved by every side: being built now (the steps are below).".to_owned(),
            ),
            Status::Active if c.observed_state.as_deref() == Some("unknown") => (
                "warn",
                format!(
                    "Built, but the monitor could not read it{since}{}.",
                    first_difference
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            ),
            Status::Active => (
                "ok",
                match c.observed_since {
                    Some(t) => format!(
                        "Active: it matches what was approved (checked since {}).",
                        at(t)
                    ),
                    None => "Active: built as approved.".to_owned(),
                },
            ),
            Status::Drifted => (
                "bad",
                format!(
                    "Drifted{since}: what exists no longer matches what was approved{}.",
                    first_difference
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
            ),
            Status::Failed => (
                "bad",
                format!(
                    "Building it failed: {}",
                    c.failure.as_deref().unwrap_or("see the steps below")
                ),
            ),
            Status::Deprovisioning => ("info", "Being removed now.".to_owned()),
            Status::Deleted => ("info", format!("Removed on {}.", at(c.updated_at))),
            Status::Rejected => {
                let by = view
                    .sides
                    .iter()
                    .find(|s| s.decision.as_deref() == Some("rejected"));
                (
                    "warn",
                    match by {
                        Some(s) => format!(
                            "Rejected by {} for {}{}.",
                            s.decided_by_name.as_deref().unwrap_or("a lead"),
                            s.team_slug,
                            if s.comment.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", s.comment)
                            }
                        ),
                        None => "Rejected.".to_owned(),
                    },
                )
            }
            Status::Cancelled => ("info", format!("Cancelled on {}.", at(c.updated_at))),
            Status::Expired => (
                "info",
                format!("Expired and removed on {}.", at(c.updated_at)),
            ),
        };
        Self { tone, text }
    }
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    show_page(
        &ctx,
        chrome,
        &caller,
        connection_id(&id)?,
        StatusCode::OK,
        None,
    )
    .await
}
