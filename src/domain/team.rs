//! Teams, roles and how identity-provider groups map onto them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A team's short name in URLs and group names: `payments`, `ledger-db`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamSlug(String);

impl TeamSlug {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".into());
        }
        if text.len() > 63 {
            return Err("is longer than 63 characters".into());
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err("may contain only lowercase letters, digits and hyphens".into());
        }
        if text.starts_with('-') {
            return Err("must start with a letter or digit".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TeamSlug {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TeamSlug> for String {
    fn from(value: TeamSlug) -> Self {
        value.0
    }
}

impl fmt::Display for TeamSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's role in one team. Leads act for their team (approvals, members).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Lead,
}

impl Role {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "member" => Ok(Role::Member),
            "lead" => Ok(Role::Lead),
            other => Err(format!("{other:?} is not one of: member, lead")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Lead => "lead",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a set of identity-provider groups grants.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GroupGrants {
    pub admin: bool,
    /// One entry per team; `lead` wins over `member` when both are present.
    pub teams: Vec<(TeamSlug, Role)>,
    /// Groups that name no team, kept for the log.
    pub ignored: Vec<String>,
}

/// `<team>` → member, `<team>:lead` → lead, `admin_group` → admin; anything else
/// (other applications' groups, malformed names) is ignored, never an error.
pub fn grants_from_groups<S: AsRef<str>>(groups: &[S], admin_group: &str) -> GroupGrants {
    let mut grants = GroupGrants::default();
    for group in groups {
        let group = group.as_ref().trim();
        if !admin_group.is_empty() && group == admin_group {
            grants.admin = true;
            continue;
        }
        let (name, role) = match group.split_once(':') {
            Some((name, "lead")) => (name, Role::Lead),
            Some((name, "member")) => (name, Role::Member),
            Some(_) => {
                grants.ignored.push(group.to_owned());
                continue;
            }
            None => (group, Role::Member),
        };
        match TeamSlug::parse(name) {
            Ok(slug) => match grants.teams.iter_mut().find(|(s, _)| *s == slug) {
                Some((_, existing)) => *existing = (*existing).max(role),
                None => grants.teams.push((slug, role)),
            },
            Err(_) => grants.ignored.push(group.to_owned()),
        }
    }
    grants.teams.sort();
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> TeamSlug {
        TeamSlug::parse(s).unwrap()
    }

    #[test]
    fn slugs_are_url_safe_names() {
        assert!(TeamSlug::parse("payments").is_ok());
        assert!(TeamSlug::parse("ledger-db-2").is_ok());
        assert_eq!(TeamSlug::parse(""), Err("is empty".into()));
        assert_eq!(
            TeamSlug::parse("Payments"),
            Err("may contain only lowercase letters, digits and hyphens".into())
        );
        assert_eq!(
            TeamSlug::parse("-x"),
            Err("must start with a letter or digit".into())
        );
        assert!(TeamSlug::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn groups_map_to_memberships_and_admin() {
        let g = grants_from_groups(
            &[
                "payments",
                "ledger:lead",
                "switchboard-admins",
                "Other App",
                "x:owner",
            ],
            "switchboard-admins",
        );
        assert!(g.admin);
        assert_eq!(
            g.teams,
            vec![
                (slug("ledger"), Role::Lead),
                (slug("payments"), Role::Member)
            ]
        );
        assert_eq!(
            g.ignored,
            vec!["Other App".to_string(), "x:owner".to_string()]
        );
    }

    #[test]
    fn lead_wins_when_a_team_appears_twice() {
        let g = grants_from_groups(&["payments:lead", "payments"], "admins");
        assert_eq!(g.teams, vec![(slug("payments"), Role::Lead)]);
        assert!(!g.admin);
    }

    #[test]
    fn an_empty_admin_group_grants_nothing() {
        assert!(!grants_from_groups(&[""], "").admin);
    }
}
