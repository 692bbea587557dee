//! `/connections/{id}/change`: ask for other ports, protocol or reason of an
//! active connection; the leads of each side decide a change that lets more
//! through, seeing what it adds, removes and keeps.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::connections::connection_id;
use super::form::{self, Field, FormErrors};
use super::{Chrome, Flash, render_page};
use crate::error::{Error, FieldError};
use crate::services::connections::{self, ChangeRequest, ChangeView, ConnectionView};
use crate::services::{Caller, Context};

const FIELDS: &[Field] = &[
    Field::new("protocol", "Protocol", "change-protocol"),
    Field::new("ports", "Ports", "change-ports"),
    Field::new("reason", "Reason", "change-reason"),
];

#[derive(Deserialize, Default)]
pub(super) struct ChangeForm {
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    ports: String,
    #[serde(default)]
    reason: String,
}

#[derive(Template)]
#[template(path = "pages/change.html")]
pub(super) struct ChangePage {
    chrome: Chrome,
    view: ConnectionView,
    changes: Vec<ChangeView>,
    /// Whether the connection has ports to change (between networks, firewall openings).
    opens: bool,
    form: ChangeForm,
    errors: FormErrors,
    /// The viewer: nobody decides their own change.
    me: Uuid,
}

impl ChangePage {
    fn may_decide(&self, c: &ChangeView) -> bool {
        c.change.status == "pending"
            && self.view.can_decide_change
            && c.change.requested_by != self.me
    }

    fn pending(&self) -> Option<&ChangeView> {
        self.changes
            .iter()
            .find(|c| matches!(c.change.status.as_str(), "pending" | "approved"))
    }
}

async fn page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    id: Uuid,
    form: Option<ChangeForm>,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, Error> {
    let view = connections::get(ctx, caller, id).await?;
    let mut changes = connections::changes(ctx, caller, id).await?;
    // The waiting one, looked at alone, says what it would let reach.
    if let Some(waiting) = changes.iter_mut().find(|c| c.change.status == "pending") {
        *waiting = connections::change(ctx, caller, waiting.change.id).await?;
    }
    let spec: connections::ConnectionRequest =
        serde_json::from_value(view.connection.spec.clone()).unwrap_or_default();
    let form = form.unwrap_or(ChangeForm {
        protocol: spec.protocol.clone().unwrap_or_else(|| "any".into()),
        ports: spec.ports.clone().unwrap_or_default(),
        reason: spec.reason.clone(),
    });
    let opens = view.kind.has_ports();
    let page = ChangePage {
        chrome,
        view,
        changes,
        opens,
        form,
        errors: FormErrors::new(errors, FIELDS),
        me: caller.actor.user_id,
    };
    render_page(status, Some(&format!("/connections/{id}/change")), &page)
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    page(&ctx, chrome, &caller, id, None, Vec::new(), StatusCode::OK).await
}

pub(super) async fn create(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let form = form.into_inner();
    let view = connections::get(&ctx, &caller, id).await?;
    let spec: connections::ConnectionRequest =
        serde_json::from_value(view.connection.spec.clone()).unwrap_or_default();
    // Only what differs from today is asked for.
    let differs = |new: &str, old: Option<&str>| {
        (new.trim() != old.unwrap_or_default().trim()).then(|| new.trim().to_owned())
    };
    let opens = view.kind.has_ports();
    let request = ChangeRequest {
        protocol: opens
            .then(|| {
                differs(
                    &form.protocol,
                    Some(spec.protocol.as_deref().unwrap_or("any")),
                )
            })
            .flatten(),
        ports: opens
            .then(|| differs(&form.ports, spec.ports.as_deref()))
            .flatten(),
        reason: differs(&form.reason, Some(&spec.reason)),
    };
    match connections::propose_change(&ctx, &caller, id, request).await {
        Ok(c) => Ok(Flash::success(match c.change.scope.as_str() {
            "wider" => "Asked: it lets more through, so a lead of each side approves it; they were emailed.",
            _ => "Changing: it lets no more through, so it is built now; the status below follows it.",
        })
        .redirect(&format!("/connections/{id}/change"))),
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = form::refusal(e)?;
            page(&ctx, chrome, &caller, id, Some(form), errors, status).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    plan_hash: String,
    #[serde(default)]
    reason: String,
}

async fn decide(
    ctx: &Context,
    caller: &Caller,
    id: &str,
    approve: bool,
    form: DecisionForm,
) -> Result<HttpResponse, Error> {
    let id = Uuid::parse_str(id).map_err(|_| Error::NotFound("that change".into()))?;
    let change = connections::change(ctx, caller, id).await?;
    let back = format!("/connections/{}/change", change.change.connection_id);
    match connections::decide_change(ctx, caller, id, approve, &form.plan_hash, &form.reason).await
    {
        Ok(c) => Ok(Flash::success(match (approve, c.change.status.as_str()) {
            (true, "approved") => "Approved: every side agreed, so it is being built.",
            (true, _) => "Approved for your side; it still waits for the other side.",
            (false, _) => "Rejected; the person who asked was told why.",
        })
        .redirect(&back)),
        Err(e @ (Error::Conflict(_) | Error::Invalid(_))) => {
            Ok(Flash::error(e.to_string()).redirect(&back))
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn approve(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, Error> {
    decide(&ctx, &caller, &id, true, form.into_inner()).await
}

pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, Error> {
    decide(&ctx, &caller, &id, false, form.into_inner()).await
}
