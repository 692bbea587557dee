//! The sandbox's simulated cloud (admins): list, change or delete a resource
//! behind Switchboard's back, to demonstrate drift.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::page::{self, PageQuery};
use crate::domain::page::page_of;
use crate::error::Error;
use crate::providers::sandbox::Resource;
use crate::services::{Caller, Context, sandbox};

/// A resource of the sandbox, tagged with the connection that built it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SandboxResourceOut {
    #[schema(example = "sbx-3f2a9c01d4e5")]
    pub id: String,
    /// The sandbox provider account holding it.
    pub account: String,
    pub connection_id: Uuid,
    #[schema(example = "route")]
    pub kind: String,
    pub name: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

impl From<Resource> for SandboxResourceOut {
    fn from(r: Resource) -> Self {
        Self {
            id: r.id,
            account: r.account,
            connection_id: r.connection_id,
            kind: r.kind,
            name: r.name,
            detail: r.detail,
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResourceFilter {
    /// Only the resources of this connection.
    #[param(value_type = Option<Uuid>)]
    connection_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxChangeIn {
    /// The resource's new detail, as if someone had edited it in the console.
    #[schema(example = "tcp 22 from 0.0.0.0/0", min_length = 1, max_length = 500)]
    pub detail: String,
}

/// The sandbox's resources, newest first, a page at a time.
#[utoipa::path(operation_id = "list_sandbox_resources", get, path = "/api/v1/sandbox/resources", tag = "sandbox", params(ResourceFilter, PageQuery),
    responses((status = 200, body = [SandboxResourceOut]), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    filter: web::Query<ResourceFilter>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    super::page::not_blank(&[("connection_id", &filter.connection_id)])?;
    let connection = match filter.connection_id.as_deref().map(str::trim) {
        None => None,
        Some(text) => Some(
            Uuid::parse_str(text)
                .map_err(|_| Error::invalid("connection_id", "is not a connection id (a UUID)"))?,
        ),
    };
    let found = sandbox::resources(&ctx, &caller, connection).await?;
    let found = page_of(found, &page.page()?, |r| {
        (-r.created_at.timestamp_micros(), r.id.clone())
    });
    Ok(page::respond(&req, found.map(SandboxResourceOut::from)))
}

/// Change a sandbox resource behind Switchboard's back.
#[utoipa::path(patch, path = "/api/v1/sandbox/resources/{id}", tag = "sandbox", params(("id" = String, Path)),
    request_body = SandboxChangeIn,
    responses((status = 200, body = SandboxResourceOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn change(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<SandboxChangeIn>,
) -> Result<web::Json<SandboxResourceOut>, Error> {
    let changed = sandbox::change(&ctx, &caller, &id, &body.detail).await?;
    Ok(web::Json(changed.into()))
}

/// Delete a sandbox resource behind Switchboard's back.
#[utoipa::path(operation_id = "delete_sandbox_resource", delete, path = "/api/v1/sandbox/resources/{id}", tag = "sandbox", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn delete(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    sandbox::delete(&ctx, &caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
