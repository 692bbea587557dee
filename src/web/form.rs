//! The one way a form shows what was wrong: each error at its field, in the
//! person's words, and a summary at the top of the form naming every field
//! by its label and linking to it. All errors at once; the input is kept by
//! the page that renders the form again.

use actix_web::http::StatusCode;

use crate::error::{Error, FieldError};

/// A field of a form: its name in the request, its label, and the id of its input.
pub(super) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub input: &'static str,
}

impl Field {
    pub(super) const fn new(name: &'static str, label: &'static str, input: &'static str) -> Self {
        Self { name, label, input }
    }
}

/// What a refused form shows again, and with which status: the fields'
/// errors at their fields (422), a conflict such as "already exists" or
/// "overlaps" at the top of the form (409). Anything else is an error page.
pub(super) fn refusal(e: Error) -> Result<(Vec<FieldError>, StatusCode), Error> {
    match e {
        Error::Invalid(errors) => Ok((errors, StatusCode::UNPROCESSABLE_ENTITY)),
        Error::Conflict(why) => Ok((vec![FieldError::new("", why)], StatusCode::CONFLICT)),
        other => Err(other),
    }
}

pub(super) struct FormErrors {
    errors: Vec<FieldError>,
    fields: &'static [Field],
}

/// One line of the summary: the field's label (or its name), the reason,
/// and the input to jump to.
pub(super) struct Line {
    pub label: String,
    pub reason: String,
    pub input: Option<&'static str>,
}

impl FormErrors {
    pub(super) fn new(errors: Vec<FieldError>, fields: &'static [Field]) -> Self {
        Self { errors, fields }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.errors.len()
    }

    /// Why this field was refused (every reason, joined), if it was.
    pub(super) fn at(&self, name: &str) -> Option<String> {
        let reasons: Vec<&str> = self
            .errors
            .iter()
            .filter(|e| e.field == name)
            .map(|e| e.reason.as_str())
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    pub(super) fn summary(&self) -> Vec<Line> {
        self.errors
            .iter()
            .map(|e| {
                let field = self.fields.iter().find(|f| f.name == e.field);
                Line {
                    label: field.map_or_else(|| e.field.clone(), |f| f.label.to_owned()),
                    reason: e.reason.clone(),
                    input: field.map(|f| f.input),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[Field {
        name: "source_network_id",
        label: "Source network",
        input: "c-source",
    }];

    #[test]
    fn errors_are_named_by_their_label_and_found_at_their_field() {
        let errors = FormErrors::new(
            vec![
                FieldError::new("source_network_id", "is required"),
                FieldError::new("source_network_id", "must be yours"),
                FieldError::new("other", "is odd"),
            ],
            FIELDS,
        );
        assert_eq!(errors.len(), 3);
        assert_eq!(
            errors.at("source_network_id").as_deref(),
            Some("is required; must be yours")
        );
        assert_eq!(errors.at("ports"), None);
        let summary = errors.summary();
        assert_eq!(summary[0].label, "Source network");
        assert_eq!(summary[0].input, Some("c-source"));
        assert_eq!(summary[2].label, "other", "an unknown field keeps its name");
        assert_eq!(summary[2].input, None);
    }
}
