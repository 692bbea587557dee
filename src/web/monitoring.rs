//! The status dashboard (live), and a connection's monitoring: what was last
//! observed, the current differences, the drift history, repair.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::connections::connection_id;
use super::{Chrome, Flash};
use crate::error::Error;
use crate::services::{Caller, Context, connections, monitor};
use crate::store::connections::Connection;
use crate::store::monitoring::DriftEvent;

/// One row of the dashboard.
pub(super) struct BoardRow {
    id: Uuid,
    summary: String,
    /// The status, or `unknown` when the provider could not be asked.
    category: String,
    label: String,
    observed_since: Option<DateTime<Utc>>,
    details: Vec<String>,
}

pub(super) fn category(c: &Connection) -> String {
    if c.status.is_watched() && c.observed_state.as_deref() == Some("unknown") {
        "unknown".into()
    } else {
        c.status.as_str().into()
    }
}

pub(super) fn label(category: &str) -> String {
    match category {
        "pending_approval" => "waiting for approval".into(),
        "unknown" => "unknown (provider unreachable)".into(),
        other => other.replace('_', " "),
    }
}

fn lines(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/status_board.html")]
pub(super) struct Board {
    counts: Vec<(String, String, i64)>,
    rows: Vec<BoardRow>,
    /// Admins only: connections the monitor could not read.
    unreadable: Option<(i64, Vec<Uuid>)>,
}

async fn board_of(ctx: &Context, caller: &Caller) -> Result<Board, Error> {
    let d = monitor::dashboard(ctx, caller).await?;
    Ok(Board {
        unreadable: d.unreadable,
        counts: d
            .counts
            .into_iter()
            .map(|(c, n)| (label(&c), c, n))
            .collect(),
        rows: d
            .connections
            .into_iter()
            .map(|c| {
                let category = category(&c);
                let summary = c.summary().to_owned();
                BoardRow {
                    id: c.id,
                    summary,
                    label: label(&category),
                    details: if matches!(category.as_str(), "drifted" | "unknown") {
                        lines(&c.observed_detail)
                    } else {
                        Vec::new()
                    },
                    category,
                    observed_since: c.observed_since,
                }
            })
            .collect(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/status.html")]
pub(super) struct StatusPage {
    chrome: Chrome,
    board: Board,
}

pub(super) async fn status(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<StatusPage, Error> {
    Ok(StatusPage {
        board: board_of(&ctx, &caller).await?,
        chrome,
    })
}

/// The dashboard's live part (htmx polls it).
pub(super) async fn board(ctx: web::Data<Context>, caller: Caller) -> Result<Board, Error> {
    board_of(&ctx, &caller).await
}

/// A connection's monitoring section.
#[derive(Template, WebTemplate)]
#[template(path = "partials/monitoring.html")]
pub(super) struct Monitoring {
    id: Uuid,
    watched: bool,
    state: Option<String>,
    since: Option<DateTime<Utc>>,
    last_observed: Option<DateTime<Utc>>,
    details: Vec<String>,
    /// When the approved traffic was last proved to pass, and how.
    verified_at: Option<DateTime<Utc>>,
    verified: Option<String>,
    repair: String,
    modes: &'static [&'static str],
    history: Vec<DriftEvent>,
    csrf: String,
    /// Offered only when the policy allows them to this viewer, now.
    can_repair: bool,
    can_set_repair_mode: bool,
}

impl Monitoring {
    fn lines(&self, v: &serde_json::Value) -> Vec<String> {
        lines(v)
    }

    fn mode_label(&self, mode: &str) -> &'static str {
        match mode {
            "auto" => "repair automatically, then tell the owners",
            "notify" => "tell the owners only",
            _ => "as the provider account says (tell the owners unless it says repair)",
        }
    }
}

pub(super) async fn section(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    csrf: String,
) -> Result<Monitoring, Error> {
    let view = connections::get(ctx, caller, id).await?;
    let c = &view.connection;
    Ok(Monitoring {
        id,
        watched: c.status.is_watched(),
        state: c.observed_state.clone(),
        since: c.observed_since,
        last_observed: monitor::last_observed(ctx, &view.plan).await?,
        details: lines(&c.observed_detail),
        verified_at: c.verified_at,
        verified: c.verified.clone(),
        repair: c.repair.clone(),
        modes: monitor::REPAIR_MODES,
        history: monitor::drift_history(ctx, caller, id).await?,
        csrf,
        can_repair: view.can_repair,
        can_set_repair_mode: view.can_set_repair_mode,
    })
}

/// The section's live refresh (htmx polls it on the connection's page).
pub(super) async fn monitoring(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<Monitoring, Error> {
    section(&ctx, &caller, connection_id(&id)?, chrome.csrf).await
}

pub(super) async fn repair(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let page = format!("/connections/{id}");
    match monitor::repair_now(&ctx, &caller, id).await {
        Ok(()) => Ok(Flash::success(
            "Repair queued: the approved plan is applied again, and the next check shows whether it matches.",
        )
        .redirect(&page)),
        Err(e @ Error::Conflict(_)) => Ok(Flash::error(e.to_string()).redirect(&page)),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub(super) struct RepairForm {
    #[serde(default)]
    repair: String,
}

pub(super) async fn repair_mode(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<RepairForm>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let page = format!("/connections/{id}");
    match monitor::set_repair(&ctx, &caller, id, &form.repair).await {
        Ok(()) => Ok(Flash::success("Saved what happens when it drifts.").redirect(&page)),
        Err(e @ Error::Invalid(_)) => Ok(Flash::error(e.to_string()).redirect(&page)),
        Err(e) => Err(e),
    }
}
