use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::page::{self, PageQuery};
use crate::domain::page::page_of;
use crate::error::Error;
use crate::services::{self, Caller, Context};
use crate::store::teams::Member;

/// A team in the directory.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamOut {
    #[schema(example = "payments")]
    pub slug: String,
    pub name: String,
    pub members: i64,
    pub leads: i64,
}

/// A team with its members.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamDetailOut {
    pub slug: String,
    pub name: String,
    pub members: Vec<MemberOut>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberOut {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    /// `member` or `lead`.
    pub role: String,
    /// `idp` (from the identity provider's groups) or `manual`.
    pub source: String,
}

/// All teams, by slug, a page at a time.
#[utoipa::path(operation_id = "list_teams", get, path = "/api/v1/teams", tag = "teams", params(PageQuery),
    responses((status = 200, body = [TeamOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let teams = services::teams::list(&ctx, &caller).await?;
    let found = page_of(teams, &page.page()?, |t| t.slug.clone());
    Ok(page::respond(
        &req,
        found.map(|t| TeamOut {
            slug: t.slug,
            name: t.name,
            members: t.members,
            leads: t.leads,
        }),
    ))
}

/// One team and its members.
#[utoipa::path(operation_id = "get_team", get, path = "/api/v1/teams/{slug}", tag = "teams",
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
        members: detail.members.into_iter().map(member_out).collect(),
    }))
}

/// A role in a team. Leads approve the team's connections and manage its
/// members; members ask for connections and manage the team's networks.
#[derive(Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Member,
    Lead,
}

/// A new team. Absent fields count as empty and are refused naming the field.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeamIn {
    /// The team's short name in URLs and group names: lowercase letters, digits
    /// and hyphens, starting with a letter or digit.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9][a-z0-9-]*$",
        example = "payments"
    )]
    pub slug: String,
    /// What people call it: 1 to 100 characters (spaces around are dropped).
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 100,
        example = "Payments"
    )]
    pub name: String,
}

/// Someone to add to a team, or a member whose role changes. Absent fields
/// count as empty and are refused naming the field.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberIn {
    /// The person's email address; they must have signed in once.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 3,
        max_length = 254,
        pattern = r#"^[^\s<>,;"@\u0000-\u001f\u007f-\u009f]+@[^\s<>,;"@.\u0000-\u001f\u007f-\u009f]+(\.[^\s<>,;"@.\u0000-\u001f\u007f-\u009f]+)*$"#,
        example = "ada@example.com"
    )]
    pub email: String,
    /// `member` or `lead`.
    #[serde(default)]
    #[schema(required = true, value_type = MemberRole, example = "member")]
    pub role: String,
}

fn member_out(m: Member) -> MemberOut {
    MemberOut {
        user_id: m.user_id,
        name: m.name,
        email: m.email,
        role: m.role,
        source: m.source,
    }
}

/// Create a team (admins). It starts with no members: add them with
/// `POST /api/v1/teams/{slug}/members`.
#[utoipa::path(operation_id = "create_team", post, path = "/api/v1/teams", tag = "teams", request_body = NewTeamIn,
    responses((status = 201, body = TeamDetailOut, headers(("Location" = String, description = "The team's address: `/api/v1/teams/{slug}`"))),
              (status = 403, description = "Only admins create teams", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, description = "A team with this slug exists", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, description = "`slug` or `name` failed its check: `errors` names each", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<NewTeamIn>,
) -> Result<HttpResponse, Error> {
    let team = services::teams::create(&ctx, &caller, &body.slug, &body.name).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/teams/{}", team.slug)))
        .json(TeamDetailOut {
            slug: team.slug,
            name: team.name,
            members: Vec::new(),
        }))
}

/// Add a person to the team with a role, or change a member's role (the
/// team's leads, admins). Setting the role a member already has changes
/// nothing. A member from the identity provider's groups becomes a manual one.
#[utoipa::path(operation_id = "set_team_member", post, path = "/api/v1/teams/{slug}/members", tag = "teams",
    params(("slug" = String, Path, description = "The team's short name")),
    request_body = MemberIn,
    responses((status = 200, description = "The member's role was set", body = MemberOut),
              (status = 201, description = "The person was added", body = MemberOut),
              (status = 403, description = "Only the team's leads and admins manage its members", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No team has this slug", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, description = "`email` (malformed, or nobody with it has signed in) or `role` failed its check", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn set_member(
    ctx: web::Data<Context>,
    caller: Caller,
    slug: web::Path<String>,
    body: web::Json<MemberIn>,
) -> Result<HttpResponse, Error> {
    let set = services::teams::put_member(&ctx, &caller, &slug, &body.email, &body.role).await?;
    let mut answer = if set.added {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(member_out(set.member)))
}

/// Remove a member from the team (the team's leads, admins). A member from the
/// identity provider's groups comes back at their next sign-in while the
/// groups still name the team.
#[utoipa::path(operation_id = "remove_team_member", delete, path = "/api/v1/teams/{slug}/members/{user_id}", tag = "teams",
    params(("slug" = String, Path, description = "The team's short name"),
           ("user_id" = Uuid, Path, description = "The member's user id (`user_id` in the team's members)")),
    responses((status = 204, description = "Removed"),
              (status = 403, description = "Only the team's leads and admins manage its members", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No team has this slug, or this user is not its member", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn remove_member(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Error> {
    let (slug, user_id) = path.into_inner();
    let user_id = Uuid::parse_str(&user_id).map_err(|_| Error::NotFound("that member".into()))?;
    services::teams::remove_member(&ctx, &caller, &slug, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
