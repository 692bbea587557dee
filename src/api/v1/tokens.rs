use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::idempotency::Key;
use super::page::{self, PageQuery};
use crate::domain::page::page_of;
use crate::error::Error;
use crate::services::{self, Caller, Context};
use crate::store::tokens::ApiToken;

/// A personal API token (never its secret).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenOut {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the token.
    #[schema(example = "sbp_Xy3kQ9")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenOut {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenIn {
    #[schema(example = "ci-pipeline", min_length = 1, max_length = 100)]
    pub name: String,
    /// 1 to 366; absent or null for a token that does not expire.
    #[schema(example = 90, minimum = 1, maximum = 366)]
    pub expires_in_days: Option<i64>,
}

/// A new token: `token` is the secret, shown this once.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewTokenOut {
    #[serde(flatten)]
    #[schema(inline)]
    pub info: TokenOut,
    #[schema(example = "sbp_Xy3kQ9…")]
    pub token: String,
}

/// My tokens, live first, then newest first, a page at a time.
#[utoipa::path(operation_id = "list_tokens", get, path = "/api/v1/tokens", tag = "accounts", params(PageQuery), responses((status = 200, body = [TokenOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let tokens = services::tokens::list(&ctx, &caller).await?;
    let found = page_of(tokens, &page.page()?, |t| {
        (
            t.revoked_at.is_some(),
            -t.created_at.timestamp_micros(),
            t.id,
        )
    });
    Ok(page::respond(&req, found.map(TokenOut::from)))
}

/// Create a token that acts as me.
#[utoipa::path(operation_id = "create_token", post, path = "/api/v1/tokens", tag = "accounts", request_body = NewTokenIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers 409 naming the token made: its secret is shown only once")),
    responses((status = 201, body = NewTokenOut), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    key: Key,
    body: web::Json<NewTokenIn>,
) -> Result<HttpResponse, Error> {
    let created =
        services::tokens::create(&ctx, &caller, &body.name, body.expires_in_days, key.get())
            .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(NewTokenOut {
            info: created.token.into(),
            token: created.secret,
        }))
}

/// Revoke one of my tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn revoke(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound("that token".into()))?;
    services::tokens::revoke(&ctx, &caller, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
