//! One-shot messages shown on the next page after a redirect (post/redirect/get).

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};

const COOKIE: &str = "sb_flash";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    pub kind: &'static str,
    pub message: String,
}

impl Flash {
    pub fn success(message: impl Into<String>) -> Self {
        Self {
            kind: "success",
            message: message.into(),
        }
    }

    /// A refusal the person can act on (shown instead of an error page).
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            kind: "error",
            message: message.into(),
        }
    }

    fn encode(&self) -> String {
        format!(
            "{}:{}",
            self.kind,
            url::form_urlencoded::byte_serialize(self.message.as_bytes()).collect::<String>()
        )
    }

    fn decode(value: &str) -> Option<Self> {
        let (kind, message) = value.split_once(':')?;
        let kind = match kind {
            "success" => "success",
            "error" => "error",
            _ => "info",
        };
        let message: String = url::form_urlencoded::parse(format!("m={message}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        Some(Self {
            kind,
            message: message.chars().take(300).collect(),
        })
    }

    /// A 303 redirect to `location` that shows this message there.
    pub fn redirect(self, location: &str) -> HttpResponse {
        let cookie = Cookie::build(COOKIE, self.encode())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(Duration::minutes(5))
            .finish();
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .cookie(cookie)
            .finish()
    }
}

/// Middleware: moves the cookie into request extensions, and deletes it once a
/// page (not a redirect) has been served.
pub async fn carry_flash(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let pending = req.cookie(COOKIE).and_then(|c| Flash::decode(c.value()));
    let had_cookie = pending.is_some();
    if let Some(flash) = pending {
        req.extensions_mut().insert(flash);
    }
    let mut res = next.call(req).await?;
    if had_cookie && !res.status().is_redirection() {
        let removal = Cookie::build(COOKIE, "")
            .path("/")
            .max_age(Duration::ZERO)
            .finish();
        if let Ok(value) = header::HeaderValue::from_str(&removal.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds_the_message() {
        let f = Flash::success("Queued a test email to a@b.c; it appears below.");
        assert_eq!(Flash::decode(&f.encode()), Some(f));
        let long = Flash::decode(&format!("error:{}", "x".repeat(1000))).unwrap();
        assert_eq!(long.message.len(), 300);
        assert_eq!(Flash::decode("bogus:hi").unwrap().kind, "info");
        assert_eq!(Flash::decode("no-colon"), None);
    }
}
