//! Renders every error response: an HTML page for people, `application/problem+json`
//! for `/api/…`, both carrying the request id that is also in the logs.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use askama::Template;
use serde::Serialize;
use tracing_actix_web::RequestId;

use crate::error::{Error, FieldError};

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    chrome: super::Chrome,
    status: u16,
    title: &'a str,
    detail: &'a str,
    fields: &'a [FieldError],
    request_id: &'a str,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    instance: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

/// Is this caller a program (API path, or asks for JSON only)?
pub fn wants_json(req: &actix_web::HttpRequest) -> bool {
    req.path().starts_with("/api/")
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json") && !v.contains("html"))
}

/// A person's mistake that htmx posted (a 409 or 422 page: the form again, or
/// a row, saying what is wrong) reaches htmx as 200: it is swapped in just the
/// same, and the browser does not log a failed request for it. Every other
/// client (a plain form, a script, the API) gets the status itself.
pub async fn refusals_to_htmx_as_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let htmx = req.headers().contains_key("hx-request") && !req.path().starts_with("/api/");
    let mut res = next.call(req).await?;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if htmx && html && matches!(res.status().as_u16(), 409 | 422) {
        *res.response_mut().status_mut() = actix_web::http::StatusCode::OK;
    }
    Ok(res)
}

pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let json = wants_json(req.request());
    let path = req.path().to_owned();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    // Innermost middleware: handler errors arrive here as responses carrying
    // the error (`res.response().error()`), not as `Err`.
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Ok(value) = header::HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    let status = res.status();
    let Some(error) = res.response().error() else {
        return Ok(res);
    };

    let own = error.as_error::<Error>();
    // A person who is not signed in is sent to sign in, and back here after.
    if !json
        && matches!(own, Some(Error::Unauthenticated))
        && res.request().method() == actix_web::http::Method::GET
    {
        let next = res
            .request()
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let location = format!(
            "/auth/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        let redirect = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .finish();
        return Ok(res.into_response(redirect));
    }
    let title = status.canonical_reason().unwrap_or("Error");
    let detail = match own {
        Some(e) => e.public_detail(),
        None if status.is_server_error() => Error::internal("").public_detail(),
        // actix' own 4xx messages (bad JSON, bad query string) are safe and useful.
        None => error.to_string(),
    };
    if status.is_server_error() {
        let cause = own.map_or_else(|| error.to_string(), Error::chain);
        if status == actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(request_id, %status, cause, "request refused for now");
        } else {
            tracing::error!(request_id, %status, cause, "request failed");
        }
    }
    let fields = own.map(Error::field_errors).unwrap_or_default();

    let (content_type, body) = if json {
        let problem = Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: &detail,
            instance: &path,
            request_id: &request_id,
            errors: fields,
        };
        (
            "application/problem+json",
            serde_json::to_string(&problem).unwrap_or_default(),
        )
    } else {
        let body = match super::Chrome::of(res.request()) {
            Some(chrome) => ErrorPage {
                chrome,
                status: status.as_u16(),
                title,
                detail: &detail,
                fields,
                request_id: &request_id,
            }
            .render()
            .unwrap_or_else(|_| detail.clone()),
            None => detail.clone(),
        };
        ("text/html; charset=utf-8", body)
    };
    let mut fresh = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.append_header((name.clone(), value.clone()));
        }
    }
    // API clients are told how to authenticate (RFC 6750).
    if status == actix_web::http::StatusCode::UNAUTHORIZED && path.starts_with("/api/") {
        fresh.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"switchboard\""));
    }
    // A 503 passes by itself; tell clients when to come back.
    if status == actix_web::http::StatusCode::SERVICE_UNAVAILABLE
        && !res.headers().contains_key(header::RETRY_AFTER)
    {
        fresh.insert_header((header::RETRY_AFTER, "5"));
    }
    let fresh = fresh.content_type(content_type).body(body);
    Ok(res.into_response(fresh))
}

/// The answer for any path no route matched.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, Error> {
    // A known address asked with another method is a 405 saying which it takes:
    // those of its most specific pattern (`/connections/plan`, not `/connections/{id}`).
    let matching: Vec<&(&str, &str)> = crate::web::ROUTES
        .iter()
        .chain(crate::api::v1::ROUTES)
        .filter(|(_, pattern)| route_matches(pattern, req.path()))
        .collect();
    let literal = |pattern: &str| pattern.split('/').filter(|s| !s.starts_with('{')).count();
    let most = matching.iter().map(|(_, p)| literal(p)).max().unwrap_or(0);
    let allowed: Vec<String> = matching
        .iter()
        .filter(|(_, pattern)| literal(pattern) == most)
        .map(|(method, _)| method.to_uppercase())
        .collect();
    if !allowed.is_empty() {
        let mut allowed = allowed;
        allowed.sort();
        allowed.dedup();
        return Err(Error::MethodNotAllowed(allowed.join(", ")));
    }
    Err(Error::NotFound(format!("the page {}", req.path())))
}

/// Whether a route pattern (`/api/v1/pools/{id}`) names this path.
fn route_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(p, q)| (p.starts_with('{') && !q.is_empty()) || p == q)
}

/// actix' extractor errors (bad form, bad JSON, bad query) as our 400/422.
pub fn payload_error(reason: String) -> actix_web::Error {
    Error::BadRequest(reason).into()
}
