//! What people do to a connection from its page and the approvals queue:
//! approve, reject, cancel, remove, retry, and the progress they watch.

use super::*;

#[derive(Deserialize, Default)]
pub(in crate::web) struct DecisionForm {
    #[serde(default)]
    comment: String,
    /// The hash of the plan the lead was shown.
    #[serde(default)]
    plan_hash: String,
}

/// A refusal the person can act on (their own request, a changed plan, a
/// missing comment, a decision someone made meanwhile): said on the page.
pub(super) fn refusal(e: &Error) -> Option<(StatusCode, String)> {
    use actix_web::ResponseError;
    match e {
        Error::Conflict(_) | Error::Invalid(_) | Error::Forbidden(_) => {
            Some((e.status_code(), e.to_string()))
        }
        _ => None,
    }
}

/// An approve/reject button of /approvals (htmx, not a boosted form) wants its
/// table row back instead of a page.
pub(super) fn wants_row(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request") && !req.headers().contains_key("hx-boosted")
}

/// A request in the approval queue; after a decision, what was decided.
#[derive(Template)]
#[template(path = "partials/approval_row.html")]
pub(super) struct ApprovalRow {
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
pub(super) async fn after_decision(
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
        // The workers may finish before the page shows: say what happens
        // next rather than a status the badge has already left.
        Ok(view) => Ok(Flash::success(match view.status {
            Status::Approved | Status::Provisioning => {
                format!("{outcome}. Building has started: the status below follows it.")
            }
            Status::PendingApproval => {
                format!("{outcome}. It still waits for the other approvals.")
            }
            status => format!("{outcome}. The request is now {}.", status.label()),
        })
        .redirect(&page)),
        Err(e) => {
            let Some((status, message)) = refusal(&e) else {
                return Err(e);
            };
            if wants_row(req) {
                let view = connections::get(ctx, caller, id).await?;
                let mut row = ApprovalRow::of(&view.connection, &chrome.csrf);
                row.error = Some(message);
                return html(status, &row);
            }
            // Shown in place (htmx swaps these statuses), not through the flash
            // cookie: the message can be long (a changed plan lists its changes).
            chrome.flash = Some(Flash::error(message));
            show_page(ctx, chrome, caller, id, status, Some(&page)).await
        }
    }
}

pub(in crate::web) async fn approve(
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

pub(in crate::web) async fn reject(
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

pub(in crate::web) async fn cancel(
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
pub(super) struct Progress {
    view: ConnectionView,
}

pub(in crate::web) async fn progress(
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
pub(in crate::web) async fn remove(
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
pub(in crate::web) async fn retry(
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
pub(super) async fn after_change(
    ctx: &Context,
    mut chrome: Chrome,
    caller: &Caller,
    id: Uuid,
    result: Result<(), Error>,
    done: &str,
) -> Result<HttpResponse, Error> {
    let page = format!("/connections/{id}");
    let (status, message) = match result {
        Ok(()) => return Ok(Flash::success(done).redirect(&page)),
        Err(e) => refusal(&e).ok_or(e)?,
    };
    chrome.flash = Some(Flash::error(message));
    show_page(ctx, chrome, caller, id, status, Some(&page)).await
}

#[derive(Template)]
#[template(path = "pages/approvals.html")]
pub(super) struct ApprovalsPage {
    chrome: Chrome,
    rows: Vec<ApprovalRow>,
    /// Renewals this person decides (leads of the requester's team).
    renewals: Vec<crate::store::renewals::Renewal>,
    changes: Vec<crate::store::changes::Change>,
}

pub(in crate::web) async fn approvals(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let rows = connections::approval_queue(&ctx, &caller)
        .await?
        .iter()
        .map(|c| ApprovalRow::of(c, &chrome.csrf))
        .collect();
    let renewals = connections::renewals_waiting(&ctx, &caller).await?;
    let changes = connections::changes_waiting(&ctx, &caller).await?;
    render_page(
        StatusCode::OK,
        None,
        &ApprovalsPage {
            chrome,
            rows,
            renewals,
            changes,
        },
    )
}
