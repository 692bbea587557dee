//! Text at the edge: every path, query string, form and JSON body is checked
//! once, before any handler, against `domain::text` (no NUL, no control
//! characters, line breaks only where a field has lines). A refusal is a 422
//! naming the field; text that is not UTF-8 is a 400. Nothing reaches a handler,
//! a service or the database, so one client's bad value cannot fail another's
//! request that shares its transaction.

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;

use crate::domain::text;
use crate::error::{Error, FieldError};

/// The largest body checked; bigger ones are refused before being read whole
/// (the form and JSON extractors' own limits are lower).
const MAX_BODY: usize = 256 * 1024;

pub async fn refuse_bad_text(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match check(&mut req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(e) => {
            let (http_req, _) = req.into_parts();
            Ok(ServiceResponse::new(http_req, HttpResponse::from_error(e)))
        }
    }
}

enum Body {
    Form,
    Json,
    Other,
}

fn body_kind(req: &ServiceRequest) -> Body {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        Body::Form
    } else if content_type.starts_with("application/json")
        || (content_type.starts_with("application/") && content_type.contains("+json"))
    {
        Body::Json
    } else {
        Body::Other
    }
}

async fn check(req: &mut ServiceRequest) -> Result<(), Error> {
    let mut refused = Vec::new();
    let path: Vec<u8> = percent_encoding::percent_decode_str(req.path()).collect();
    match std::str::from_utf8(&path) {
        Ok(path) => {
            if let Some(why) = text::refusal("path", path) {
                refused.push(FieldError::new("path", why));
            }
        }
        Err(_) => return Err(Error::BadRequest("the path is not UTF-8 text".into())),
    }
    pairs("query", req.query_string().as_bytes(), &mut refused)?;
    match body_kind(req) {
        Body::Other => {}
        Body::Form => {
            let body = super::session::buffer_body(req, MAX_BODY).await?;
            pairs("form", &body, &mut refused)?;
        }
        Body::Json => {
            let body = super::session::buffer_body(req, MAX_BODY).await?;
            // A body that is not JSON is the extractor's to refuse (400).
            if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) {
                refused.extend(
                    text::json_refusals(&value)
                        .into_iter()
                        .map(|(field, why)| FieldError::new(field, why)),
                );
                // JSON has one kind of number: 24.0 is the integer 24 to a JSON
                // Schema, so it is to the typed fields behind this too.
                if text::whole_numbers_as_integers(&mut value) {
                    let body = serde_json::to_vec(&value).map_err(|e| {
                        Error::BadRequest(format!("the JSON body could not be read: {e}"))
                    })?;
                    req.set_payload(actix_web::dev::Payload::from(web_bytes(body)));
                }
            } else if std::str::from_utf8(&body).is_err() {
                return Err(Error::BadRequest("the JSON body is not UTF-8 text".into()));
            }
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(refused))
    }
}

/// Checks a form or a query string: each value by its field's name.
fn pairs(what: &str, bytes: &[u8], refused: &mut Vec<FieldError>) -> Result<(), Error> {
    let pairs = text::form_pairs(bytes).map_err(|field| {
        Error::BadRequest(match field {
            Some(field) => format!("the {what}'s field {field} is not UTF-8 text"),
            None => format!("the {what} has a field name that is not UTF-8 text"),
        })
    })?;
    for (name, value) in pairs {
        if let Some(why) = text::refusal("name", &name) {
            refused.push(FieldError::new(
                name.escape_debug().to_string(),
                format!("its name {why}"),
            ));
        } else if let Some(why) = text::refusal(&name, &value) {
            refused.push(FieldError::new(name, why));
        }
    }
    Ok(())
}

fn web_bytes(body: Vec<u8>) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(body)
}
