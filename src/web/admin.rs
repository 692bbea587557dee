//! Admin pages: users and their sessions, the audit log.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use uuid::Uuid;

use super::{Chrome, Flash};
use crate::domain::page::Page;
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
    /// The link to older entries, if there are any.
    older: Option<String>,
}

#[derive(serde::Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    cursor: String,
}

pub(super) async fn audit(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<AuditPage, Error> {
    let page = Page::parse(Some(200), Some(&query.cursor))
        .map_err(|e| Error::invalid(e.field, e.reason))?;
    let found = services::audit::list(&ctx, &caller, &Default::default(), &page).await?;
    Ok(AuditPage {
        older: found.next.map(|next| format!("/admin/audit?cursor={next}")),
        events: found.items,
        chrome,
    })
}
