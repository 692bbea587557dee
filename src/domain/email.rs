//! Email addresses and messages, validated once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An address we are willing to send to: `local@domain`, no spaces or angle brackets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".into());
        }
        if text.len() > 254 {
            return Err("is longer than 254 characters".into());
        }
        if text.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        }) {
            return Err("contains a space or a character not allowed in an address".into());
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err("has no @".into());
        };
        if local.is_empty() || local.contains('@') {
            return Err("needs exactly one @ with a name before it".into());
        }
        if domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err("needs a domain after the @, such as example.com".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rendered message ready to send. The id doubles as the Message-ID and makes
/// delivery to the outbox idempotent when a job is retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub id: Uuid,
    pub to: EmailAddress,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@b.c",
            "first.last+tag@example.com",
            "x@localhost",
            " pad@x.org ",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_malformed_addresses_with_a_reason() {
        for (bad, reason) in [
            ("", "is empty"),
            ("plain", "has no @"),
            ("@example.com", "needs exactly one @ with a name before it"),
            ("a@", "needs a domain after the @, such as example.com"),
            ("a@b..c", "needs a domain after the @, such as example.com"),
            (
                "a b@c.d",
                "contains a space or a character not allowed in an address",
            ),
            (
                "<a@b.c>",
                "contains a space or a character not allowed in an address",
            ),
            ("a@b@c", "needs exactly one @ with a name before it"),
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(reason.to_string()), "{bad}");
        }
        assert!(EmailAddress::parse(&format!("{}@x.org", "a".repeat(260))).is_err());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<EmailAddress>("\"nope\"").is_err());
        assert!(serde_json::from_str::<EmailAddress>("\"a@b.c\"").is_ok());
    }
}
