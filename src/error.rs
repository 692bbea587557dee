//! The one error type. User mistakes become 4xx with the field and the reason;
//! everything else becomes a 5xx whose cause goes to the log, never to the page.
//! `web::errors` renders it as an HTML page or `application/problem+json`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// One field that failed validation, in the user's words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    #[error("you must sign in to do that")]
    Unauthenticated,
    #[error("the API token is missing, malformed, expired or revoked")]
    InvalidToken,
    /// A permission refusal, saying who may act.
    #[error("{0}")]
    Forbidden(String),
    #[error("this form is stale or did not come from this site: reload the page and try again")]
    CsrfRejected,
    #[error("too many attempts: wait a minute and try again")]
    TooManyRequests,
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The path exists, but not with this method: the methods it takes.
    #[error("this address takes only {0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A fault on our side, with its causes kept whole for the log.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// What was being done when a cause failed: the cause stays the `source`.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Because {
    what: String,
    #[source]
    cause: Box<dyn std::error::Error + Send + Sync>,
}

/// Faults of the database that pass by themselves (unreachable, restarting,
/// out of connections, a lock or serialization conflict): retry, not a bug.
fn passes_by_itself(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08 connection exception, 53 insufficient resources, 57 operator
            // intervention (shutdown), 40001/40P01 serialization and deadlock,
            // 55P03 lock not available.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || matches!(&*code, "40001" | "40P01" | "55P03")
        }),
        _ => false,
    }
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, reason)])
    }

    /// A fault on our side; `cause` is kept whole (an error and its sources, or words).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// A fault on our side while doing `what`, caused by `cause` (kept as the source).
    pub fn because(
        what: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal(Box::new(Because {
            what: what.into(),
            cause: cause.into(),
        }))
    }

    /// What the user may read. Server-side causes stay in the log.
    pub fn public_detail(&self) -> String {
        match self {
            e @ (Error::Database(_) | Error::Internal(_)) if e.is_transient() => {
                "The database is unavailable for a moment: try again shortly.".into()
            }
            Error::Database(_) | Error::Internal(_) => {
                "Something went wrong on our side. Quote the request id if you report it.".into()
            }
            other => other.to_string(),
        }
    }

    /// A fault that passes by itself (see [`passes_by_itself`]), anywhere in
    /// the chain of causes: the caller should retry, so it is a 503, not a 500.
    pub fn is_transient(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            if let Some(db) = e.downcast_ref::<sqlx::Error>()
                && passes_by_itself(db)
            {
                return true;
            }
            next = e.source();
        }
        false
    }

    /// The error and every cause under it, for the log (never for a page).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            text.push_str(": ");
            text.push_str(&e.to_string());
            next = e.source();
        }
        text
    }

    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthenticated | Error::InvalidToken => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::CsrfRejected => StatusCode::FORBIDDEN,
            Error::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            e @ (Error::Database(_) | Error::Internal(_)) if e.is_transient() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body is filled in by the error-rendering middleware, which knows
    /// whether the caller wants HTML or JSON and the request id.
    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::new(self.status_code());
        if let Error::MethodNotAllowed(allow) = self
            && let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow)
        {
            answer
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_errors_are_4xx_and_server_errors_hide_their_cause() {
        assert_eq!(
            Error::invalid("to", "has no @").status_code(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            Error::invalid("to", "has no @").public_detail(),
            "to: has no @"
        );
        let internal = Error::internal("password=hunter2 refused");
        assert_eq!(internal.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.public_detail().contains("hunter2"));
    }

    #[test]
    fn internal_errors_keep_their_causes_for_the_log_only() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "secret.pem refused");
        let e = Error::because("reading the webhook secret", io);
        assert_eq!(e.chain(), "reading the webhook secret: secret.pem refused");
        assert!(!e.public_detail().contains("secret.pem"));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_database_that_is_away_is_a_503_even_under_context() {
        let down = Error::because(
            "enqueueing switchboard.provision",
            sqlx::Error::PoolTimedOut,
        );
        assert!(down.is_transient());
        assert_eq!(down.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            Error::Database(sqlx::Error::PoolClosed).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Error::Database(sqlx::Error::RowNotFound).status_code(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
