//! Admin pages: users and their sessions, the audit log.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use uuid::Uuid;

use super::{Chrome, Flash};
use crate::domain::page::Page;
use crate::error::{Error, FieldError};
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
    lines: Vec<AuditLine>,
    filter: AuditQuery,
    errors: Vec<FieldError>,
    /// The link to older entries, if there are any.
    older: Option<String>,
}

impl AuditPage {
    /// The reason a filter field was refused, shown at the field.
    fn error_of(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.reason.as_str())
    }
}

/// One entry as the page shows it: a link to its object, and what changed.
pub(super) struct AuditLine {
    event: AuditEvent,
    /// The object's page, if it has one.
    href: Option<String>,
    changes: Vec<Change>,
    /// What else was recorded with it, as (name, value).
    notes: Vec<(String, String)>,
}

/// One field an action changed: its value before and after ("" for none).
pub(super) struct Change {
    field: String,
    before: String,
    after: String,
}

impl AuditLine {
    fn of(event: AuditEvent) -> Self {
        let id = &event.object_id;
        let href = match event.object_type.as_str() {
            "connection" => Some(format!("/connections/{id}")),
            "network" => Some(format!("/networks/{id}")),
            "pool" => Some(format!("/address-plan/pools/{id}")),
            "team" => Some(format!("/teams/{id}")),
            "user" => Some("/admin/users".to_owned()),
            "provider_account" => Some("/admin/provider-accounts".to_owned()),
            _ => None,
        };
        let empty = serde_json::Map::new();
        let side = |name: &str| {
            event
                .details
                .get(name)
                .and_then(|v| v.as_object())
                .cloned()
                .unwrap_or_else(|| empty.clone())
        };
        let (before, after) = (side("before"), side("after"));
        let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
        fields.sort();
        fields.dedup();
        // A field both sides hold alike did not change: left out.
        let changes = fields
            .into_iter()
            .filter(|f| {
                !(before.contains_key(*f) && after.contains_key(*f) && before[*f] == after[*f])
            })
            .map(|f| Change {
                field: f.clone(),
                before: before.get(f).map(words).unwrap_or_default(),
                after: after.get(f).map(words).unwrap_or_default(),
            })
            .collect();
        let notes = event
            .details
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "before" && k.as_str() != "after")
            .map(|(k, v)| (k.clone(), words(v)))
            .collect();
        Self {
            href,
            changes,
            notes,
            event,
        }
    }
}

/// A recorded value in words: text as itself, nothing as "", the rest as JSON.
fn words(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The page's filters (as the API's), kept in the form and the next link.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct AuditQuery {
    cursor: String,
    object_type: String,
    object_id: String,
    actor: String,
    action: String,
    since: String,
    until: String,
}

impl AuditQuery {
    fn is_filtered(&self) -> bool {
        [
            &self.object_type,
            &self.object_id,
            &self.actor,
            &self.action,
            &self.since,
            &self.until,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    /// This filter's query string, from `cursor` on.
    fn link(&self, cursor: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("object_type", &self.object_type),
            ("object_id", &self.object_id),
            ("actor", &self.actor),
            ("action", &self.action),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.trim().is_empty() {
                q.append_pair(name, value.trim());
            }
        }
        q.append_pair("cursor", cursor);
        format!("/admin/audit?{}", q.finish())
    }
}

pub(super) async fn audit(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, Error> {
    let filter = query.into_inner();
    let page = Page::parse(Some(100), Some(&filter.cursor))
        .map_err(|e| Error::invalid(e.field, e.reason))?;
    let wanted = services::audit::AuditFilter {
        object_type: Some(filter.object_type.clone()),
        object_id: Some(filter.object_id.clone()),
        actor: Some(filter.actor.clone()),
        action: Some(filter.action.clone()),
        since: Some(filter.since.clone()),
        until: Some(filter.until.clone()),
    };
    let (found, errors) = match services::audit::list(&ctx, &caller, &wanted, &page).await {
        Ok(found) => (Some(found), Vec::new()),
        Err(Error::Invalid(errors)) => (None, errors),
        Err(e) => return Err(e),
    };
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let (lines, older) = match found {
        Some(found) => (
            found.items.into_iter().map(AuditLine::of).collect(),
            found.next.map(|next| filter.link(&next)),
        ),
        None => (Vec::new(), None),
    };
    let page = AuditPage {
        lines,
        older,
        filter,
        errors,
        chrome,
    };
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(Error::internal)?))
}
