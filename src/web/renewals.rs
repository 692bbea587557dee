//! `/connections/{id}/renew`: keep a connection longer (the expiry email links
//! here), and a lead of the requester's team decides a waiting renewal.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::connections::connection_id;
use super::form::{self, Field, FormErrors};
use super::{Chrome, Flash, render_page};
use crate::error::{Error, FieldError};
use crate::services::connections::{self, ConnectionView};
use crate::services::{Caller, Context};
use crate::store::renewals::Renewal;

const FIELDS: &[Field] = &[
    Field::new("expires_in_hours", "Keep it for", "renew-days"),
    Field::new("comment", "Why it is still needed", "renew-comment"),
];

#[derive(Deserialize, Default)]
pub(super) struct RenewForm {
    #[serde(default)]
    days: String,
    #[serde(default)]
    comment: String,
}

#[derive(Template)]
#[template(path = "pages/renew.html")]
pub(super) struct RenewPage {
    chrome: Chrome,
    view: ConnectionView,
    max_days: i64,
    renewals: Vec<Renewal>,
    form: RenewForm,
    errors: FormErrors,
}

impl RenewPage {
    fn pending(&self) -> Option<&Renewal> {
        self.renewals.iter().find(|r| r.status == "pending")
    }
}

async fn page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    id: Uuid,
    form: RenewForm,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, Error> {
    let (view, max_days, renewals) = connections::renewal_page(ctx, caller, id).await?;
    let page = RenewPage {
        max_days,
        renewals,
        chrome,
        view,
        form,
        errors: FormErrors::new(errors, FIELDS),
    };
    render_page(status, Some(&format!("/connections/{id}/renew")), &page)
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let form = RenewForm {
        days: "30".into(),
        ..RenewForm::default()
    };
    let id = connection_id(&id)?;
    page(&ctx, chrome, &caller, id, form, Vec::new(), StatusCode::OK).await
}

pub(super) async fn renew(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<RenewForm>,
) -> Result<HttpResponse, Error> {
    let id = connection_id(&id)?;
    let form = form.into_inner();
    let result = match form.days.trim() {
        "" => connections::renew(&ctx, &caller, id, None, &form.comment).await,
        days => match days.parse::<i64>() {
            Ok(days) => {
                let hours = days.saturating_mul(24);
                connections::renew(&ctx, &caller, id, Some(hours), &form.comment).await
            }
            Err(_) => Err(Error::invalid(
                "expires_in_hours",
                "must be a whole number of days such as 30",
            )),
        },
    };
    match result {
        Ok(r) if r.status == "approved" => Ok(Flash::success(format!(
            "{}: it now expires at {}.",
            if r.expires_at < r.previous_expiry {
                "Expiry moved earlier"
            } else {
                "Renewed"
            },
            r.expires_at.format("%Y-%m-%d %H:%M UTC")
        ))
        .redirect(&format!("/connections/{id}"))),
        Ok(_) => Ok(Flash::success(
            "Asked: a lead of the requester's team decides, and was emailed.",
        )
        .redirect(&format!("/connections/{id}/renew"))),
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = form::refusal(e)?;
            page(&ctx, chrome, &caller, id, form, errors, status).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    comment: String,
}

async fn decide(
    ctx: &Context,
    caller: &Caller,
    id: &str,
    approve: bool,
    comment: &str,
) -> Result<HttpResponse, Error> {
    let id = Uuid::parse_str(id).map_err(|_| Error::NotFound("that renewal".into()))?;
    match connections::decide_renewal(ctx, caller, id, approve, comment).await {
        Ok(r) => Ok(Flash::success(if approve {
            format!(
                "Renewal approved: it now expires at {}.",
                r.expires_at.format("%Y-%m-%d %H:%M UTC")
            )
        } else {
            "Renewal rejected; the person who asked was told why.".to_owned()
        })
        .redirect(&format!("/connections/{}/renew", r.connection_id))),
        // Back to the renewal's page, saying why (a missing reason, decided meanwhile).
        Err(e @ (Error::Invalid(_) | Error::Conflict(_))) => {
            let r = connections::renewal(ctx, caller, id).await?;
            Ok(Flash::error(e.to_string())
                .redirect(&format!("/connections/{}/renew", r.connection_id)))
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
    decide(&ctx, &caller, &id, true, &form.comment).await
}

pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, Error> {
    decide(&ctx, &caller, &id, false, &form.comment).await
}
