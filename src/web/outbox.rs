//! `/dev/outbox`: where mail goes when no SMTP server is configured.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Flash};
use crate::error::{Error, FieldError};
use crate::services::Caller;
use crate::services::{self, Context};
use crate::store::outbox::OutboxEmail;

#[derive(Template, WebTemplate)]
#[template(path = "pages/outbox.html")]
pub(super) struct OutboxPage {
    chrome: Chrome,
    emails: Vec<OutboxEmail>,
    to: String,
    errors: Vec<FieldError>,
}

#[derive(Deserialize)]
pub(super) struct TestEmailForm {
    #[serde(default)]
    to: String,
}

fn require_outbox(ctx: &Context) -> Result<(), Error> {
    if ctx.settings.mail_goes_to_outbox() {
        Ok(())
    } else {
        // Mail leaves the portal over SMTP: there is no outbox to show.
        Err(Error::NotFound("the outbox (it is off)".into()))
    }
}

pub(super) async fn outbox_page(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<OutboxPage, Error> {
    require_outbox(&ctx)?;
    Ok(OutboxPage {
        emails: services::mail::outbox(&ctx, &caller).await?,
        chrome,
        to: String::new(),
        errors: Vec::new(),
    })
}

/// The HTML part of one message, sandboxed: it is shown as sent, so it must not
/// run script or reach anything.
pub(super) async fn message_html(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    require_outbox(&ctx)?;
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound("that message".into()))?;
    let email = services::mail::outbox_message(&ctx, &caller, id).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        ))
        .body(email.html_body))
}

pub(super) async fn send_test_email(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<TestEmailForm>,
) -> Result<HttpResponse, Error> {
    require_outbox(&ctx)?;
    match services::mail::send_test_email(&ctx, &caller, &form.to).await {
        Ok(email) => Ok(Flash::success(format!(
            "Queued a test email to {}. A worker delivers it in a moment.",
            email.to
        ))
        .redirect("/dev/outbox")),
        Err(Error::Invalid(errors)) if !super::errors::wants_json(&req) => {
            // Show the form again with the reason, and change nothing.
            let page = OutboxPage {
                emails: services::mail::outbox(&ctx, &caller).await?,
                chrome,
                to: form.to.clone(),
                errors,
            };
            super::render_page(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                Some("/dev/outbox"),
                &page,
            )
        }
        Err(e) => Err(e),
    }
}
