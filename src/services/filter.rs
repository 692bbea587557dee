//! The filters of a list as a person or a script typed them: blank means
//! "not given"; anything else is checked and refused naming the field.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// The text, unless blank.
pub fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An RFC 3339 instant, unless blank.
pub fn instant(field: &str, text: &Option<String>) -> Result<Option<DateTime<Utc>>> {
    given(text)
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    Error::invalid(
                        field,
                        "must be an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z",
                    )
                })
        })
        .transpose()
}
