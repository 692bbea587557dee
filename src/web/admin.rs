//! Admin pages: users and their sessions, the audit log.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use uuid::Uuid;

use super::{Chrome, Flash};
use crate::error::Error;
use crate::services::{self, Caller, Context, accounts::UserRow};
use crate::store::audit::AuditEvent;

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin_users.html")]
pub(super) struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
}

pub(super) async fn users(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<UsersPage, Error> {
    Ok(UsersPage {
        users: services::accounts::list_users(&ctx, &caller).await?,
        chrome,
    })
}

pub(super) async fn revoke_sessions(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound("that user".into()))?;
    let ended = services::accounts::revoke_sessions(&ctx, &caller, id).await?;
    Ok(Flash::success(format!("Ended {ended} session(s).")).redirect("/admin/users"))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/audit.html")]
pub(super) struct AuditPage {
    chrome: Chrome,
    events: Vec<AuditEvent>,
}

pub(super) async fn audit(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<AuditPage, Error> {
    Ok(AuditPage {
        events: services::audit::latest(&ctx, &caller, 200).await?,
        chrome,
    })
}
