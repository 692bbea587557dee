use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::services::{self, Caller, Context};
use crate::store::tokens::ApiToken;

/// A personal API token (never its secret).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    id: Uuid,
    name: String,
    /// The first characters of the token.
    #[schema(example = "sbp_Xy3kQ9")]
    prefix: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenIn {
    #[schema(example = "ci-pipeline")]
    name: String,
    /// 1 to 366; absent or null for a token that does not expire.
    #[schema(example = 90)]
    expires_in_days: Option<i64>,
}

/// A new token: `token` is the secret, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewTokenOut {
    #[serde(flatten)]
    #[schema(inline)]
    info: TokenOut,
    #[schema(example = "sbp_Xy3kQ9…")]
    token: String,
}

/// My tokens, live first.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts", responses((status = 200, body = [TokenOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
) -> Result<web::Json<Vec<TokenOut>>, Error> {
    let tokens = services::tokens::list(&ctx, &caller).await?;
    Ok(web::Json(tokens.into_iter().map(TokenOut::from).collect()))
}

/// Create a token that acts as me.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewTokenIn,
    responses((status = 201, body = NewTokenOut), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<NewTokenIn>,
) -> Result<HttpResponse, Error> {
    let created = services::tokens::create(&ctx, &caller, &body.name, body.expires_in_days).await?;
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
