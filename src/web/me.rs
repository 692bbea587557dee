//! `/me`: who I am, my teams and roles, my API tokens.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::form::{self, Field, FormErrors};
use super::{Chrome, Flash};
use crate::auth::policy::TeamRole;
use crate::domain::notification::Topic;
use crate::error::{Error, FieldError};
use crate::services::{self, Caller, Context};
use crate::store::tokens::ApiToken;

#[derive(Template)]
#[template(path = "pages/me.html")]
pub(super) struct ProfilePage {
    chrome: Chrome,
    name: String,
    email: String,
    is_admin: bool,
    teams: Vec<TeamRole>,
    tokens: Vec<ApiToken>,
    notifications: Vec<(Topic, bool)>,
    /// A token just created: its secret is shown this once.
    new_token: Option<String>,
    form_name: String,
    form_days: String,
    errors: FormErrors,
}

/// The token form's fields, as its errors name them.
const TOKEN_FIELDS: &[Field] = &[
    Field::new("name", "Name", "token-name"),
    Field::new("expires_in_days", "Expires after", "token-days"),
];

async fn render(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    new_token: Option<String>,
    form: Option<&TokenForm>,
    errors: Vec<FieldError>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, Error> {
    let page = ProfilePage {
        chrome,
        name: caller.actor.name.clone(),
        email: caller.actor.email.clone(),
        is_admin: caller.actor.is_admin,
        teams: caller.actor.teams.clone(),
        tokens: services::tokens::list(ctx, caller).await?,
        notifications: services::notifications::preferences(ctx, caller).await?,
        new_token,
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        form_days: form.map(|f| f.expires_in_days.clone()).unwrap_or_default(),
        errors: FormErrors::new(errors, TOKEN_FIELDS),
    };
    let mut res = super::render_page(status, Some("/me"), &page)?;
    // The page may hold a new token's secret: never cache it.
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

pub(super) async fn profile(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    render(
        &ctx,
        chrome,
        &caller,
        None,
        None,
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_in_days: String,
}

/// Parses the optional expiry field of a form.
pub(super) fn parse_days(text: &str) -> Result<Option<i64>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| {
        FieldError::new(
            "expires_in_days",
            "must be a whole number of days, or empty for no expiry",
        )
    })
}

pub(super) async fn create_token(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, Error> {
    let result = match parse_days(&form.expires_in_days) {
        Ok(days) => services::tokens::create(&ctx, &caller, &form.name, days, None).await,
        // Said together with a missing name, so that both are fixed at once.
        Err(days) if form.name.trim().is_empty() => Err(Error::Invalid(vec![
            FieldError::new("name", "is required: say what uses the token"),
            days,
        ])),
        Err(days) => Err(Error::Invalid(vec![days])),
    };
    match result {
        Ok(created) => {
            let mut chrome = chrome;
            chrome.flash = Some(Flash::success(format!(
                "Token {:?} created. Copy it now: it is not shown again.",
                created.token.name
            )));
            render(
                &ctx,
                chrome,
                &caller,
                Some(created.secret),
                None,
                Vec::new(),
                actix_web::http::StatusCode::CREATED,
            )
            .await
        }
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = form::refusal(e)?;
            render(&ctx, chrome, &caller, None, Some(&form), errors, status).await
        }
    }
}

pub(super) async fn revoke_token(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound("that token".into()))?;
    let token = services::tokens::revoke(&ctx, &caller, id).await?;
    Ok(Flash::success(format!("Token {:?} revoked.", token.name)).redirect("/me"))
}

/// The email preferences form: a checked box is "on", an unchecked one "off".
pub(super) async fn set_notifications(
    ctx: web::Data<Context>,
    caller: Caller,
    form: web::Form<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, Error> {
    let changes: Vec<(String, bool)> = Topic::ALL
        .into_iter()
        .map(|t| (t.as_str().to_owned(), form.contains_key(t.as_str())))
        .collect();
    services::notifications::set_preferences(&ctx, &caller, &changes).await?;
    Ok(Flash::success("Saved which emails you get.").redirect("/me"))
}
