//! `/teams`: the team directory; leads and admins manage members.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::form::{self, Field, FormErrors};
use super::{Chrome, Flash};
use crate::error::{Error, FieldError};
use crate::services::{self, Caller, Context};
use crate::store::teams::{Member, Team, TeamSummary};

#[derive(Template)]
#[template(path = "pages/teams.html")]
pub(super) struct TeamsPage {
    chrome: Chrome,
    teams: Vec<TeamSummary>,
    can_create: bool,
    form_slug: String,
    form_name: String,
    errors: FormErrors,
}

/// The new-team form's fields, as its errors name them.
const TEAM_FIELDS: &[Field] = &[
    Field::new("slug", "Short name", "slug"),
    Field::new("name", "Display name", "team-name"),
];

/// The member form's fields, as its errors name them.
const MEMBER_FIELDS: &[Field] = &[
    Field::new("email", "Email", "member-email"),
    Field::new("role", "Role", "member-role"),
];

#[derive(Deserialize)]
pub(super) struct NewTeamForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
}

async fn teams_page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    form: Option<&NewTeamForm>,
    errors: Vec<FieldError>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, Error> {
    let page = TeamsPage {
        chrome,
        teams: services::teams::list(ctx, caller).await?,
        can_create: caller.actor.can(crate::auth::policy::Action::ManageTeams),
        form_slug: form.map(|f| f.slug.clone()).unwrap_or_default(),
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        errors: FormErrors::new(errors, TEAM_FIELDS),
    };
    super::render_page(status, Some("/teams"), &page)
}

pub(super) async fn list(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    teams_page(
        &ctx,
        chrome,
        &caller,
        None,
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
    .await
}

pub(super) async fn create(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<NewTeamForm>,
) -> Result<HttpResponse, Error> {
    match services::teams::create(&ctx, &caller, &form.slug, &form.name).await {
        Ok(team) => Ok(Flash::success(format!("Team {} created.", team.slug))
            .redirect(&format!("/teams/{}", team.slug))),
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = form::refusal(e)?;
            teams_page(&ctx, chrome, &caller, Some(&form), errors, status).await
        }
    }
}

#[derive(Template)]
#[template(path = "pages/team.html")]
pub(super) struct TeamPage {
    chrome: Chrome,
    team: Team,
    members: Vec<Member>,
    can_manage: bool,
    /// The member form as typed, and why it was refused.
    form: MemberForm,
    errors: FormErrors,
    webhook: Option<crate::store::notifications::Webhook>,
    networks: Vec<crate::services::networks::NetworkDetail>,
    /// The latest connections where the team is a side, whether there are more, and where they all are.
    lines: Vec<super::connection_lines::Line>,
    more: bool,
    all: String,
}

async fn team_page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    slug: &str,
    form: MemberForm,
    errors: Vec<FieldError>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, Error> {
    let detail = services::teams::get(ctx, caller, slug).await?;
    let networks = services::networks::list_networks(
        ctx,
        caller,
        &services::networks::NetworkFilter {
            team: Some(detail.team.slug.to_string()),
            ..Default::default()
        },
    )
    .await?;
    let (lines, more) = super::connection_lines::related(
        ctx,
        caller,
        services::connections::ConnectionFilter {
            team: Some(detail.team.slug.to_string()),
            ..Default::default()
        },
    )
    .await?;
    let all = format!("/connections?team={}", detail.team.slug);
    let page = TeamPage {
        networks,
        lines,
        more,
        all,
        chrome,
        team: detail.team,
        members: detail.members,
        can_manage: detail.can_manage,
        form,
        errors: FormErrors::new(errors, MEMBER_FIELDS),
        webhook: services::notifications::webhook(ctx, caller, slug)
            .await
            .unwrap_or(None),
    };
    super::render_page(status, Some(&format!("/teams/{slug}")), &page)
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    slug: web::Path<String>,
) -> Result<HttpResponse, Error> {
    team_page(
        &ctx,
        chrome,
        &caller,
        &slug,
        MemberForm::default(),
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
    .await
}

#[derive(Deserialize, Default)]
pub(super) struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub(super) async fn set_member(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    slug: web::Path<String>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, Error> {
    match services::teams::set_member(&ctx, &caller, &slug, &form.email, &form.role).await {
        Ok(()) => Ok(Flash::success(format!(
            "{} is now a {} of {}.",
            form.email.trim(),
            form.role,
            slug
        ))
        .redirect(&format!("/teams/{slug}"))),
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = form::refusal(e)?;
            team_page(
                &ctx,
                chrome,
                &caller,
                &slug,
                form.into_inner(),
                errors,
                status,
            )
            .await
        }
    }
}

pub(super) async fn remove_member(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Error> {
    let (slug, user_id) = path.into_inner();
    let user_id = Uuid::parse_str(&user_id).map_err(|_| Error::NotFound("that member".into()))?;
    services::teams::remove_member(&ctx, &caller, &slug, user_id).await?;
    Ok(Flash::success("Member removed.").redirect(&format!("/teams/{slug}")))
}

#[derive(Deserialize)]
pub(super) struct WebhookForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret_ref: String,
}

/// A lead sets the team's webhook.
pub(super) async fn set_webhook(
    ctx: web::Data<Context>,
    caller: Caller,
    slug: web::Path<String>,
    form: web::Form<WebhookForm>,
) -> Result<HttpResponse, Error> {
    let page = format!("/teams/{slug}");
    match services::notifications::set_webhook(&ctx, &caller, &slug, &form.url, &form.secret_ref)
        .await
    {
        Ok(_) => {
            Ok(Flash::success("Webhook saved: drift events are posted to it.").redirect(&page))
        }
        Err(Error::Invalid(errors)) => Ok(Flash::error(
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .redirect(&page)),
        Err(e) => Err(e),
    }
}

pub(super) async fn delete_webhook(
    ctx: web::Data<Context>,
    caller: Caller,
    slug: web::Path<String>,
) -> Result<HttpResponse, Error> {
    services::notifications::delete_webhook(&ctx, &caller, &slug).await?;
    Ok(Flash::success("Webhook removed.").redirect(&format!("/teams/{slug}")))
}
