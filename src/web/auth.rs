//! Sign-in (OIDC or the development sign-in) and sign-out.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::ratelimit::Limits;
use super::ratelimit::client_address;
use super::session::{Authenticated, removal_cookie, session_cookie};
use super::{Chrome, Flash};
use crate::auth::secrets;
use crate::error::{Error, FieldError};
use crate::services::{Caller, Context, accounts};
use crate::store;

fn user_agent(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

fn request_id(req: &HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(ToString::to_string)
}

/// Sign-in attempts are limited per client address (behind a trusted proxy,
/// the address it forwards).
fn rate_limited(req: &HttpRequest, ctx: &Context, limits: &Limits) -> Result<(), Error> {
    match client_address(req, &ctx.settings.trusted_proxies) {
        Some(address) if !limits.sign_in.check(address) => Err(Error::TooManyRequests),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// Starts a sign-in: a fresh anonymous session carries `state` and `nonce`.
pub(super) async fn login(
    req: HttpRequest,
    ctx: web::Data<Context>,
    limits: web::Data<Limits>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, Error> {
    rate_limited(&req, &ctx, &limits)?;
    let return_to = accounts::safe_return_to(query.next.as_deref().unwrap_or("/me"));
    let Some(oidc) = &ctx.oidc else {
        if !ctx.settings.dev_sign_in {
            return Err(Error::Unavailable(
                "no way to sign in is configured (SWITCHBOARD_OIDC_ISSUER)".into(),
            ));
        }
        let target = format!(
            "/auth/dev?next={}",
            url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
        );
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, target))
            .finish());
    };
    let (token, hash) = accounts::start_anonymous_session(&ctx, user_agent(&req)).await?;
    let state = secrets::random_token();
    let nonce = secrets::random_token();
    store::sessions::begin_login(&ctx.pool, &hash, &state, &nonce, &return_to).await?;
    let url = oidc
        .authorize_url(&state, &nonce, &ctx.key.pkce_verifier(&hash, &state))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session_cookie(&ctx, token))
        .finish())
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The identity provider sends the browser back here with a code.
pub(super) async fn callback(
    req: HttpRequest,
    ctx: web::Data<Context>,
    limits: web::Data<Limits>,
    auth: Authenticated,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, Error> {
    rate_limited(&req, &ctx, &limits)?;
    let oidc = ctx
        .oidc
        .clone()
        .ok_or_else(|| Error::NotFound("sign-in through an identity provider".into()))?;
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or("");
        return Err(Error::BadRequest(format!(
            "The identity provider did not sign you in ({error}{}{detail}).",
            if detail.is_empty() { "" } else { ": " }
        )));
    }
    let (Some(code), Some(state)) = (&query.code, &query.state) else {
        return Err(Error::BadRequest(
            "The sign-in answer lacks its code or state.".into(),
        ));
    };
    let stale = || {
        Error::BadRequest(
            "This sign-in link is invalid, expired or was already used. Please sign in again."
                .into(),
        )
    };
    let session = auth.session.ok_or_else(stale)?;
    // Single use: the state is taken, so a replay finds nothing.
    let (nonce, return_to) = store::sessions::take_login(&ctx.pool, &session.hash, state)
        .await?
        .ok_or_else(stale)?;
    let claims = oidc
        .finish(code, &nonce, &ctx.key.pkce_verifier(&session.hash, state))
        .await?;
    let identity = accounts::Identity {
        issuer: claims.issuer,
        subject: claims.subject,
        email: claims.email,
        name: claims.name,
        groups: claims.groups,
    };
    let signed_in = accounts::sign_in(
        &ctx,
        &identity,
        Some(&session.hash),
        user_agent(&req),
        return_to,
        request_id(&req).as_deref(),
    )
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, signed_in.return_to))
        .cookie(session_cookie(&ctx, signed_in.session_token))
        .finish())
}

/// Ends this session, and the provider's too when it offers an end-session endpoint.
pub(super) async fn logout(
    ctx: web::Data<Context>,
    caller: Caller,
    auth: Authenticated,
) -> Result<HttpResponse, Error> {
    if let Some(session) = &auth.session {
        accounts::sign_out(&ctx, &caller, &session.hash).await?;
    }
    let home = ctx.settings.absolute_url("/");
    if let Some(url) = match &ctx.oidc {
        Some(oidc) => oidc.end_session_url(&home).await,
        None => None,
    } {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url.to_string()))
            .cookie(removal_cookie(&ctx))
            .finish());
    }
    let mut res = Flash::success("You are signed out.").redirect("/");
    res.add_cookie(&removal_cookie(&ctx))
        .map_err(Error::internal)?;
    Ok(res)
}

#[derive(Template)]
#[template(path = "pages/dev_sign_in.html")]
pub(super) struct DevSignInPage {
    chrome: Chrome,
    next: String,
    form: DevForm,
    errors: Vec<FieldError>,
    known: Vec<store::users::User>,
}

#[derive(Deserialize, Default)]
pub(super) struct DevForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
    #[serde(default = "member")]
    role: String,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    keep_teams: Option<String>,
    #[serde(default)]
    next: String,
}

fn member() -> String {
    "member".into()
}

impl DevForm {
    fn error_for(errors: &[FieldError], field: &str) -> bool {
        errors.iter().any(|e| e.field == field)
    }
}

async fn dev_page_response(
    ctx: &Context,
    chrome: Chrome,
    form: DevForm,
    errors: Vec<FieldError>,
    status: actix_web::http::StatusCode,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> Result<HttpResponse, Error> {
    let known = store::users::list(&ctx.pool)
        .await?
        .into_iter()
        .filter(|u| u.issuer == accounts::DEV_ISSUER)
        .collect();
    let next = accounts::safe_return_to(&form.next);
    let page = DevSignInPage {
        chrome,
        next,
        form,
        errors,
        known,
    };
    let mut res = super::render_page(status, Some("/auth/dev"), &page)?;
    if let Some(cookie) = cookie {
        res.add_cookie(&cookie).map_err(Error::internal)?;
    }
    Ok(res)
}

/// The development sign-in: only when no identity provider is configured.
pub(super) async fn dev_page(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    auth: Authenticated,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, Error> {
    if !ctx.settings.dev_sign_in {
        return Err(Error::NotFound(
            "the development sign-in (it is off: people sign in through the identity provider)"
                .into(),
        ));
    }
    // The form needs a CSRF token, which needs a session.
    let (chrome, cookie) = match &auth.session {
        Some(_) => (chrome, None),
        None => {
            let (token, hash) = accounts::start_anonymous_session(&ctx, user_agent(&req)).await?;
            (
                chrome.with_csrf(ctx.key.csrf_token(&hash)),
                Some(session_cookie(&ctx, token)),
            )
        }
    };
    let form = DevForm {
        next: query.next.clone().unwrap_or_else(|| "/me".into()),
        role: member(),
        ..DevForm::default()
    };
    dev_page_response(
        &ctx,
        chrome,
        form,
        Vec::new(),
        actix_web::http::StatusCode::OK,
        cookie,
    )
    .await
}

pub(super) async fn dev_submit(
    req: HttpRequest,
    ctx: web::Data<Context>,
    limits: web::Data<Limits>,
    chrome: Chrome,
    auth: Authenticated,
    form: web::Form<DevForm>,
) -> Result<HttpResponse, Error> {
    rate_limited(&req, &ctx, &limits)?;
    let form = form.into_inner();
    let input = accounts::DevSignIn {
        email: form.email.clone(),
        name: form.name.clone(),
        team: form.team.clone(),
        role: form.role.clone(),
        admin: form.admin.is_some(),
        keep_teams: form.keep_teams.is_some(),
        return_to: form.next.clone(),
    };
    let previous = auth.session.as_ref().map(|s| s.hash.as_slice());
    match accounts::dev_sign_in(
        &ctx,
        &input,
        previous,
        user_agent(&req),
        request_id(&req).as_deref(),
    )
    .await
    {
        Ok(signed_in) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, signed_in.return_to))
            .cookie(session_cookie(&ctx, signed_in.session_token))
            .finish()),
        Err(Error::Invalid(errors)) if !super::errors::wants_json(&req) => {
            dev_page_response(
                &ctx,
                chrome,
                form,
                errors,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .await
        }
        Err(e) => Err(e),
    }
}
