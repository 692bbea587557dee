//! The sandbox's simulated cloud (admins): what it holds, and buttons to change
//! or delete a resource behind Switchboard's back, so drift can be demonstrated.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Flash};
use crate::error::Error;
use crate::providers::sandbox::Resource;
use crate::services::{Caller, Context, sandbox};

#[derive(Template, WebTemplate)]
#[template(path = "pages/sandbox.html")]
pub(super) struct SandboxPage {
    chrome: Chrome,
    resources: Vec<Resource>,
    connection: Option<Uuid>,
    limit: i64,
}

#[derive(Deserialize)]
pub(super) struct Filter {
    connection: Option<String>,
}

pub(super) async fn list(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    filter: web::Query<Filter>,
) -> Result<SandboxPage, Error> {
    // An id that is not one shows nothing rather than everything.
    let connection = match filter.connection.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(Uuid::parse_str(text).unwrap_or(Uuid::nil())),
    };
    Ok(SandboxPage {
        resources: sandbox::resources(&ctx, &caller, connection).await?,
        chrome,
        connection,
        limit: sandbox::LIST_LIMIT,
    })
}

fn back_to(connection: Uuid) -> String {
    format!("/admin/sandbox?connection={connection}")
}

pub(super) async fn delete(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let gone = sandbox::delete(&ctx, &caller, &id).await?;
    Ok(Flash::success(format!(
        "Deleted {} {} behind Switchboard's back.",
        gone.kind, gone.name
    ))
    .redirect(&back_to(gone.connection_id)))
}

#[derive(Deserialize)]
pub(super) struct ChangeForm {
    #[serde(default)]
    detail: String,
}

pub(super) async fn change(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, Error> {
    match sandbox::change(&ctx, &caller, &id, &form.detail).await {
        Ok(changed) => Ok(Flash::success(format!(
            "Changed {} {} behind Switchboard's back.",
            changed.kind, changed.name
        ))
        .redirect(&back_to(changed.connection_id))),
        Err(Error::Invalid(errors)) => Ok(Flash::error(
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .redirect("/admin/sandbox")),
        Err(e) => Err(e),
    }
}
