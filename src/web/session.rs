//! Who is calling, decided once per request: a browser session (cookie) or an
//! API token (`Authorization: Bearer`). Also the CSRF check: every state-changing
//! request made with a session cookie must carry the session's CSRF token.

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use futures::StreamExt;
use tracing_actix_web::RequestId;

use super::ratelimit::{Limits, client_address};
use crate::auth::secrets;
use crate::error::Error;
use crate::services::{Caller, Context, accounts};

pub const SESSION_COOKIE: &str = "sb_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf_token";

/// The browser session behind a request.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub hash: Vec<u8>,
    pub csrf: String,
    pub signed_in: bool,
}

/// Set on every request by [`authenticate`].
#[derive(Clone, Debug, Default)]
pub struct Authenticated {
    pub caller: Option<Caller>,
    pub session: Option<SessionInfo>,
    pub via_token: bool,
}

pub fn session_cookie(ctx: &Context, value: String) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(ctx.settings.base_url.scheme() == "https")
        .same_site(SameSite::Lax)
        .finish()
}

pub fn removal_cookie(ctx: &Context) -> Cookie<'static> {
    let mut cookie = session_cookie(ctx, String::new());
    cookie.make_removal();
    cookie
}

fn request_id(req: &ServiceRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(ToString::to_string)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn authenticate(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(ctx) = req.app_data::<web::Data<Context>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    match identify(&ctx, &mut req).await {
        Ok(auth) => {
            req.extensions_mut().insert(auth);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        // Answered here, with the error attached, so `errors` renders it as usual.
        Err(e) => {
            // `ServiceResponse::new` keeps the error attached; `into_response` would drop it.
            let (http_req, _) = req.into_parts();
            Ok(ServiceResponse::new(http_req, HttpResponse::from_error(e)))
        }
    }
}

async fn identify(ctx: &Context, req: &mut ServiceRequest) -> Result<Authenticated, Error> {
    let mut auth = Authenticated::default();
    let request_id = request_id(req);

    if let Some(value) = req.headers().get(header::AUTHORIZATION).cloned() {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let actor = match token {
            Some(token) if !token.is_empty() => accounts::actor_for_token(ctx, token).await?,
            _ => None,
        };
        // A valid token always passes; only wrong ones count against the
        // client's address, and past its budget they are answered 429.
        let Some(actor) = actor else {
            let limits = req.app_data::<web::Data<Limits>>();
            let address = client_address(req.request(), &ctx.settings.trusted_proxies);
            if let (Some(limits), Some(address)) = (limits, address)
                && !limits.api_auth_failures.check(address)
            {
                return Err(Error::TooManyRequests);
            }
            return Err(Error::InvalidToken);
        };
        auth.caller = Some(Caller { actor, request_id });
        auth.via_token = true;
    } else if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        let hash = secrets::hash(cookie.value());
        if let Some((actor, _session)) = accounts::actor_for_session(ctx, &hash).await? {
            auth.session = Some(SessionInfo {
                csrf: ctx.key.csrf_token(&hash),
                signed_in: actor.is_some(),
                hash,
            });
            auth.caller = actor.map(|actor| Caller { actor, request_id });
        }
    }

    // Requests authenticated by a token carry no ambient credentials: no CSRF risk.
    if !is_safe(req.method()) && !auth.via_token {
        let expected = auth.session.as_ref().map(|s| s.csrf.clone());
        let presented = presented_csrf_tokens(req).await;
        let valid = expected.is_some_and(|e| {
            presented
                .iter()
                .any(|p| secrets::constant_time_eq(e.as_bytes(), p.as_bytes()))
        });
        if !valid {
            // A script calling the API with no credentials is told to authenticate,
            // not that a form is stale.
            if auth.caller.is_none() && req.path().starts_with("/api/") {
                return Err(Error::Unauthenticated);
            }
            return Err(Error::CsrfRejected);
        }
    }
    Ok(auth)
}

/// The tokens a request presents: the `X-CSRF-Token` header (htmx, scripts) and
/// the `csrf_token` field of a url-encoded form (plain HTML forms). The body is
/// put back for the handler.
async fn presented_csrf_tokens(req: &mut ServiceRequest) -> Vec<String> {
    let mut tokens: Vec<String> = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| vec![v.to_owned()])
        .unwrap_or_default();
    tokens.extend(form_csrf_token(req).await);
    tokens
}

async fn form_csrf_token(req: &mut ServiceRequest) -> Option<String> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    let body = buffer_body(req, 64 * 1024).await.ok()?;
    url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
}

/// Reads the whole body (at most `limit` bytes) and puts it back for the
/// handler, so middleware can look at it first.
pub(super) async fn buffer_body(
    req: &mut ServiceRequest,
    limit: usize,
) -> Result<web::Bytes, Error> {
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Error::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(Error::BadRequest(format!(
                "the body is larger than {} KiB",
                limit / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.set_payload(Payload::from(body.clone()));
    Ok(body)
}

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(req
            .extensions()
            .get::<Authenticated>()
            .cloned()
            .unwrap_or_default()))
    }
}

/// A signed-in caller; anything else is 401 (pages redirect to sign-in).
impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Authenticated>()
                .and_then(|a| a.caller.clone())
                .ok_or_else(|| Error::Unauthenticated.into()),
        )
    }
}
