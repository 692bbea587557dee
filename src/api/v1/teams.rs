use actix_web::web;
use serde::Serialize;
use uuid::Uuid;

use crate::error::Error;
use crate::services::{self, Caller, Context};

/// A team in the directory.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TeamOut {
    #[schema(example = "payments")]
    slug: String,
    name: String,
    members: i64,
    leads: i64,
}

/// A team with its members.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TeamDetailOut {
    slug: String,
    name: String,
    members: Vec<MemberOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberOut {
    user_id: Uuid,
    name: String,
    email: String,
    /// `member` or `lead`.
    role: String,
    /// `idp` (from the identity provider's groups) or `manual`.
    source: String,
}

/// All teams.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams",
    responses((status = 200, body = [TeamOut]), (status = 401, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
) -> Result<web::Json<Vec<TeamOut>>, Error> {
    let teams = services::teams::list(&ctx, &caller).await?;
    Ok(web::Json(
        teams
            .into_iter()
            .map(|t| TeamOut {
                slug: t.slug,
                name: t.name,
                members: t.members,
                leads: t.leads,
            })
            .collect(),
    ))
}

/// One team and its members.
#[utoipa::path(get, path = "/api/v1/teams/{slug}", tag = "teams",
    params(("slug" = String, Path, description = "The team's short name")),
    responses((status = 200, body = TeamDetailOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn get(
    ctx: web::Data<Context>,
    caller: Caller,
    slug: web::Path<String>,
) -> Result<web::Json<TeamDetailOut>, Error> {
    let detail = services::teams::get(&ctx, &caller, &slug).await?;
    Ok(web::Json(TeamDetailOut {
        slug: detail.team.slug,
        name: detail.team.name,
        members: detail
            .members
            .into_iter()
            .map(|m| MemberOut {
                user_id: m.user_id,
                name: m.name,
                email: m.email,
                role: m.role,
                source: m.source,
            })
            .collect(),
    }))
}
