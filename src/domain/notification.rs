//! The kinds of event people can turn email off for.

/// What an email is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// A request waits for my team's approval.
    Approvals,
    /// My request was approved, rejected, is about to expire or expired.
    Decisions,
    /// My connection became active, failed, or was removed.
    Provisioning,
    /// A connection I own drifted from what was approved, or matches again.
    Drift,
}

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::Approvals,
        Topic::Decisions,
        Topic::Provisioning,
        Topic::Drift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Approvals => "approvals",
            Topic::Decisions => "decisions",
            Topic::Provisioning => "provisioning",
            Topic::Drift => "drift",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Topic::Approvals => "requests waiting for my team's approval",
            Topic::Decisions => "decisions on my requests, and expiry",
            Topic::Provisioning => "my connections becoming active, failing or being removed",
            Topic::Drift => "connections I own drifting from what was approved, and recovering",
        }
    }

    pub fn parse(text: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == text.trim())
    }
}

/// Where a secret is read from, never the secret: `env:NAME` or `file:/absolute/path`.
pub fn is_secret_ref(text: &str) -> bool {
    text.strip_prefix("env:")
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        || text
            .strip_prefix("file:")
            .is_some_and(|p| p.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_referenced_not_given() {
        assert!(is_secret_ref("env:HOOK_SECRET"));
        assert!(is_secret_ref("file:/run/secrets/hook"));
        assert!(!is_secret_ref("env:"));
        assert!(!is_secret_ref("env:A-B"));
        assert!(!is_secret_ref("file:relative"));
        assert!(!is_secret_ref("hunter2"));
    }

    #[test]
    fn every_topic_reads_back() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
        assert_eq!(Topic::parse("nonsense"), None);
    }
}
