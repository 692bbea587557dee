//! The audit log over HTTP (admins): who did what to which object, when.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::page::{self, PageQuery};
use crate::error::Error;
use crate::services::audit::{self, AuditFilter};
use crate::services::{Caller, Context};
use crate::store::audit::AuditEvent;

/// One entry of the audit log.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEventOut {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who did it, as recorded then: `Name <email>`, or `system` for the workers.
    pub actor: String,
    pub actor_id: Option<Uuid>,
    #[schema(example = "connection.approved")]
    pub action: String,
    #[schema(example = "connection")]
    pub object_type: String,
    pub object_id: String,
    /// What changed, as recorded with the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The request that did it, as in the server's logs.
    pub request_id: Option<String>,
}

impl From<AuditEvent> for AuditEventOut {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor: e.actor_label,
            actor_id: e.actor_id,
            action: e.action,
            object_type: e.object_type,
            object_id: e.object_id,
            details: e.details,
            request_id: e.request_id,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Only entries about this kind of object, e.g. `connection`, `network`, `team`.
    object_type: Option<String>,
    /// Only entries about this object (its id or slug).
    object_id: Option<String>,
    /// Only what this person (their email address, or `system`) did.
    actor: Option<String>,
    /// Only this action, e.g. `connection.approved`.
    action: Option<String>,
    /// Only entries at or after this instant (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    since: Option<String>,
    /// Only entries before this instant (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    until: Option<String>,
}

/// The audit log, newest first, a page at a time (admins).
#[utoipa::path(operation_id = "list_audit_events", get, path = "/api/v1/audit", tag = "accounts", params(AuditQuery, PageQuery),
    responses((status = 200, body = [AuditEventOut]), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let q = query.into_inner();
    page::not_blank(&[("since", &q.since), ("until", &q.until)])?;
    let filter = AuditFilter {
        object_type: q.object_type,
        object_id: q.object_id,
        actor: q.actor,
        action: q.action,
        since: q.since,
        until: q.until,
    };
    let found = audit::list(&ctx, &caller, &filter, &page.page()?).await?;
    Ok(page::respond(&req, found.map(AuditEventOut::from)))
}
