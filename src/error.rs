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
    #[error("you are not allowed to do that")]
    Forbidden,
    #[error("this form is stale or did not come from this site: reload the page and try again")]
    CsrfRejected,
    #[error("too many attempts: wait a minute and try again")]
    TooManyRequests,
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
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

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// What the user may read. Server-side causes stay in the log.
    pub fn public_detail(&self) -> String {
        match self {
            Error::Database(_) | Error::Internal(_) => {
                "Something went wrong on our side. Quote the request id if you report it.".into()
            }
            other => other.to_string(),
        }
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
            Error::Forbidden | Error::CsrfRejected => StatusCode::FORBIDDEN,
            Error::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(sqlx::Error::PoolTimedOut) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body is filled in by the error-rendering middleware, which knows
    /// whether the caller wants HTML or JSON and the request id.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::new(self.status_code())
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
}
