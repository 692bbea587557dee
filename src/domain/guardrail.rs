//! Guardrails: the rules admins keep about what may be asked for, checked on
//! every plan (the preview, the request, each approval). A rule looks at the
//! requests it is about (kinds, the labels of either end, ports, a source
//! range, whether the source is another team) and then forbids them, caps
//! their expiry, asks one more team to approve, or limits how many may be open.
//! A rule set carries its own tests (example requests and the verdict each
//! must get), which must pass before the set is saved. Pure rules, no I/O.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::connection::{Kind, PortRange, parse_ports};

/// Labels a rule asks of an end: every one must match the end's tags.
pub type Labels = BTreeMap<String, String>;

/// One guardrail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique in its set; refusals name it.
    pub name: String,
    /// Why the rule exists, in words shown with its verdict.
    #[serde(default)]
    pub description: String,
    /// The kinds of request it looks at; every kind when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// Labels the source network must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from: Labels,
    /// Labels the destination network must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub to: Labels,
    /// Only requests that open one of these ports ("22, 3389").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<String>,
    /// Only requests whose source belongs to another team than the destination
    /// (or is a range of addresses).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_outside_team: bool,
    /// Only requests whose source range covers this one (`0.0.0.0/0`: anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_covers: Option<IpNet>,
    pub then: Then,
}

/// What a rule does to the requests it looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Then {
    /// They are refused.
    Forbid,
    /// They must expire within this many days.
    MaxExpiryDays(u32),
    /// A lead of this team (its slug) must approve them too.
    ApprovalFrom(String),
    /// At most this many may be open at once, per team or per network.
    AtMost { count: u32, per: Per },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// The requesting (source) team.
    Team,
    /// The destination network.
    Network,
}

/// An end of a request as the rules see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub labels: Labels,
}

/// A request as the rules see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub kind: Kind,
    /// The source network, when the source is one.
    #[serde(default)]
    pub from: Option<End>,
    /// The source range, when the source is addresses.
    #[serde(default)]
    pub source_cidr: Option<IpNet>,
    /// The destination network (the exposed service's network).
    #[serde(default)]
    pub to: Option<End>,
    /// The ports opened ("" for all, or for kinds without ports).
    #[serde(default)]
    pub ports: String,
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// Connections already open for the source team and into the destination
    /// network (what `AtMost` counts).
    #[serde(default)]
    pub open_for_team: u32,
    #[serde(default)]
    pub open_into_network: u32,
}

/// One rule's word on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: String,
    pub outcome: Outcome,
    /// Why, in words.
    pub reason: String,
    /// The request's field the verdict is about, for refusals.
    pub field: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It applies and the request satisfies it.
    Allow,
    /// It refuses the request.
    Deny,
    /// It asks a lead of this team to approve too.
    Approval(String),
}

/// A rule set's own test: an example request and the verdict it must get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    pub name: String,
    pub request: Proposal,
    pub expect: Expect,
    /// The rule that must decide it, for `deny` and `approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Allow,
    Deny,
    Approval,
}

/// The rules admins keep, with their tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub tests: Vec<Test>,
}

fn overlaps(a: &[PortRange], b: &[PortRange]) -> bool {
    // No ports means every port.
    a.is_empty()
        || b.is_empty()
        || a.iter()
            .any(|x| b.iter().any(|y| x.from <= y.to && y.from <= x.to))
}

fn carries(end: Option<&End>, labels: &Labels) -> bool {
    labels.is_empty() || end.is_some_and(|e| labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
}

impl Rule {
    /// Whether the rule looks at this proposal.
    fn looks_at(&self, p: &Proposal, ports: &[PortRange]) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&p.kind) {
            return false;
        }
        if !carries(p.from.as_ref(), &self.from) || !carries(p.to.as_ref(), &self.to) {
            return false;
        }
        if let Some(mine) = &self.ports {
            let mine = parse_ports(mine).unwrap_or_default();
            if !p.kind.has_ports() || !overlaps(&mine, ports) {
                return false;
            }
        }
        if self.from_outside_team {
            let same = match (&p.from, &p.to) {
                (Some(f), Some(t)) => f.team == t.team,
                _ => false,
            };
            if same || p.to.is_none() {
                return false;
            }
        }
        if let Some(covered) = self.source_covers {
            match p.source_cidr {
                Some(source) if source.contains(&covered) => {}
                _ => return false,
            }
        }
        true
    }

    /// The field of a request a refusal by this rule is about.
    fn field(&self) -> &'static str {
        match &self.then {
            Then::MaxExpiryDays(_) => "expires_in_hours",
            _ if self.source_covers.is_some() => "source_cidr",
            _ if self.ports.is_some() => "ports",
            Then::AtMost { per: Per::Team, .. } if !self.from.is_empty() => "source_network_id",
            _ => "destination_network_id",
        }
    }

    fn judge(&self, p: &Proposal) -> Option<Verdict> {
        let ports = parse_ports(&p.ports).unwrap_or_default();
        if !self.looks_at(p, &ports) {
            return None;
        }
        let about = if self.description.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.description)
        };
        let (outcome, reason) = match &self.then {
            Then::Forbid => (
                Outcome::Deny,
                format!("forbidden by the guardrail {}{about}", self.name),
            ),
            Then::MaxExpiryDays(days) => match p.expires_in_days {
                Some(d) if d <= *days => (
                    Outcome::Allow,
                    format!(
                        "expires within {days} days, as the guardrail {} asks",
                        self.name
                    ),
                ),
                _ => (
                    Outcome::Deny,
                    format!(
                        "the guardrail {} asks for an expiry of at most {days} days{about}",
                        self.name
                    ),
                ),
            },
            Then::ApprovalFrom(team) => (
                Outcome::Approval(team.clone()),
                format!(
                    "the guardrail {} asks a lead of {team} to approve too{about}",
                    self.name
                ),
            ),
            Then::AtMost { count, per } => {
                let (open, whom) = match per {
                    Per::Team => (p.open_for_team, "its team"),
                    Per::Network => (p.open_into_network, "the destination network"),
                };
                if open < *count {
                    (
                        Outcome::Allow,
                        format!("{} of {count} open for {whom}", open + 1),
                    )
                } else {
                    (
                        Outcome::Deny,
                        format!(
                            "the guardrail {} allows at most {count} open for {whom}, which has {open}{about}",
                            self.name
                        ),
                    )
                }
            }
        };
        Some(Verdict {
            rule: self.name.clone(),
            outcome,
            reason,
            field: self.field().to_owned(),
        })
    }
}

impl RuleSet {
    /// Every rule's verdict on the proposal, for the rules that look at it.
    pub fn judge(&self, p: &Proposal) -> Vec<Verdict> {
        self.rules.iter().filter_map(|r| r.judge(p)).collect()
    }

    /// What is wrong with the set itself: names, ports, teams, and every test
    /// that does not get its expected verdict. Empty when it may be saved.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in &self.rules {
            if r.name.trim().is_empty() || r.name.chars().count() > 100 {
                problems.push("every rule needs a name of 1 to 100 characters".to_owned());
            } else if !seen.insert(r.name.as_str()) {
                problems.push(format!("two rules are called {}", r.name));
            }
            if let Some(ports) = &r.ports
                && let Err(why) = parse_ports(ports)
            {
                problems.push(format!("rule {}: ports: {why}", r.name));
            }
            match &r.then {
                Then::ApprovalFrom(team) if team.trim().is_empty() => {
                    problems.push(format!("rule {}: approval_from needs a team", r.name))
                }
                Then::MaxExpiryDays(0) => problems.push(format!(
                    "rule {}: max_expiry_days must be at least 1",
                    r.name
                )),
                _ => {}
            }
        }
        for t in &self.tests {
            let verdicts = self.judge(&t.request);
            let denied: Vec<&Verdict> = verdicts
                .iter()
                .filter(|v| v.outcome == Outcome::Deny)
                .collect();
            let approvals: Vec<&Verdict> = verdicts
                .iter()
                .filter(|v| matches!(v.outcome, Outcome::Approval(_)))
                .collect();
            let by_named = |list: &[&Verdict]| match &t.by {
                Some(by) => list.iter().any(|v| &v.rule == by),
                None => true,
            };
            let got = if !denied.is_empty() {
                Expect::Deny
            } else if !approvals.is_empty() {
                Expect::Approval
            } else {
                Expect::Allow
            };
            let ok = got == t.expect
                && match t.expect {
                    Expect::Deny => by_named(&denied),
                    Expect::Approval => by_named(&approvals),
                    Expect::Allow => true,
                };
            if !ok {
                let deciders: Vec<&str> = verdicts
                    .iter()
                    .filter(|v| v.outcome != Outcome::Allow)
                    .map(|v| v.rule.as_str())
                    .collect();
                problems.push(format!(
                    "test {:?} expects {}{} but gets {}{}",
                    t.name,
                    word(t.expect),
                    t.by.as_deref()
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default(),
                    word(got),
                    if deciders.is_empty() {
                        String::new()
                    } else {
                        format!(" (from {})", deciders.join(", "))
                    }
                ));
            }
        }
        problems
    }
}

fn word(e: Expect) -> &'static str {
    match e {
        Expect::Allow => "allow",
        Expect::Deny => "deny",
        Expect::Approval => "approval",
    }
}

#[cfg(test)]
mod tests;
