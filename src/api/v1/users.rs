//! People who have signed in, and their browser sessions (admins).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::page::{self, PageQuery};
use crate::domain::page::page_of;
use crate::error::Error;
use crate::services::{self, Caller, Context, accounts::UserRow};

/// Someone who has signed in (or was made by `switchboard admin create-token`).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    /// Who vouched for them: the identity provider's issuer URL, `dev` (the
    /// development sign-in) or `local` (`switchboard admin create-token`).
    #[schema(example = "https://login.example.com")]
    pub issuer: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    /// When they last signed in (for `local` users: when they were made).
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Browser sessions neither ended nor expired. API tokens are not sessions.
    pub live_sessions: i64,
}

impl From<UserRow> for UserOut {
    fn from(row: UserRow) -> Self {
        let u = row.user;
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            issuer: u.issuer,
            is_admin: u.is_admin,
            created_at: u.created_at,
            last_sign_in_at: u.last_sign_in_at,
            live_sessions: row.live_sessions,
        }
    }
}

/// How many sessions were ended.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionsEndedOut {
    /// Live browser sessions ended: 0 when there were none.
    #[schema(example = 2)]
    pub ended: u64,
}

/// Everyone who has signed in, by name then email, a page at a time (admins).
#[utoipa::path(operation_id = "list_users", get, path = "/api/v1/users", tag = "accounts", params(PageQuery),
    responses((status = 200, body = [UserOut]),
              (status = 403, description = "Only admins see the users", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let users = services::accounts::list_users(&ctx, &caller).await?;
    let found = page_of(users, &page.page()?, |r| {
        (r.user.name.to_lowercase(), r.user.email.clone(), r.user.id)
    });
    Ok(page::respond(&req, found.map(UserOut::from)))
}

/// End every browser session of a user: their next page asks them to sign
/// in again (admins; anyone for their own sessions). Their API tokens keep
/// working: revoke those with `DELETE /api/v1/tokens/{id}`.
#[utoipa::path(operation_id = "revoke_user_sessions", delete, path = "/api/v1/users/{id}/sessions", tag = "accounts",
    params(("id" = Uuid, Path, description = "The user's id")),
    responses((status = 200, description = "The sessions are ended (also when there were none)", body = SessionsEndedOut),
              (status = 403, description = "Only admins end other people's sessions", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No user has this id", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn revoke_sessions(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<SessionsEndedOut>, Error> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound("that user".into()))?;
    let ended = services::accounts::revoke_sessions(&ctx, &caller, id).await?;
    Ok(web::Json(SessionsEndedOut { ended }))
}
