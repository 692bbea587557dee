//! The guardrails page: the rules in force and their versions for everyone;
//! admins edit the rule set (JSON) and save it as a new version.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use super::form::{Field, FormErrors};
use super::{Chrome, Flash, render_page};
use crate::auth::policy::Action;
use crate::error::{Error, FieldError};
use crate::services::guardrails::{self, Guardrails, SaveGuardrails};
use crate::services::{Caller, Context};

#[derive(Template)]
#[template(path = "pages/guardrails.html")]
struct GuardrailsPage {
    chrome: Chrome,
    current: Guardrails,
    versions: Vec<Guardrails>,
    may_save: bool,
    form: GuardrailsForm,
    errors: FormErrors,
}

const FIELDS: &[Field] = &[
    Field::new("rule_set", "Rule set", "g-rules"),
    Field::new("comment", "Why it changes", "g-comment"),
];

#[derive(Deserialize, Default)]
pub(super) struct GuardrailsForm {
    #[serde(default)]
    rule_set: String,
    #[serde(default)]
    based_on_version: i32,
    #[serde(default)]
    comment: String,
}

async fn page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    form: Option<GuardrailsForm>,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, Error> {
    let current = guardrails::current(ctx, caller).await?;
    let versions = guardrails::history(ctx, caller).await?;
    let form = form.unwrap_or_else(|| GuardrailsForm {
        rule_set: serde_json::to_string_pretty(&current.rule_set).unwrap_or_default(),
        based_on_version: current.version,
        comment: String::new(),
    });
    render_page(
        status,
        None,
        &GuardrailsPage {
            chrome,
            current,
            versions,
            may_save: caller.actor.can(Action::ManageGuardrails),
            form,
            errors: FormErrors::new(errors, FIELDS),
        },
    )
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    page(&ctx, chrome, &caller, None, Vec::new(), StatusCode::OK).await
}

pub(super) async fn save(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<GuardrailsForm>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let result = async {
        let value: serde_json::Value = serde_json::from_str(&form.rule_set)
            .map_err(|e| Error::invalid("rule_set", format!("is not JSON: {e}")))?;
        let rule_set = crate::api::v1::guardrails::rule_set(value)?;
        guardrails::save(
            &ctx,
            &caller,
            SaveGuardrails {
                rule_set,
                based_on_version: form.based_on_version,
                comment: form.comment.clone(),
            },
        )
        .await
    }
    .await;
    match result {
        Ok((saved, violations)) => {
            let told = if violations.is_empty() {
                String::new()
            } else {
                format!(
                    " {} open connections now break them: their owners and the admins were emailed.",
                    violations.len()
                )
            };
            Ok(Flash::success(format!(
                "Guardrails saved as version {}.{told}",
                saved.version
            ))
            .redirect("/guardrails"))
        }
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = super::form::refusal(e)?;
            page(&ctx, chrome, &caller, Some(form), errors, status).await
        }
    }
}
