//! What the API answers about a connection, and how the CLI shows it: tables,
//! the plan, each side's decision, the timeline.

use super::*;

#[derive(Deserialize)]
pub(super) struct Connection {
    pub(super) id: Uuid,
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) requested_by: String,
    pub(super) reason: String,
    pub(super) summary: String,
    pub(super) mechanism: String,
    pub(super) plan_hash: String,
    pub(super) expires_at: Option<DateTime<Utc>>,
    pub(super) failure: Option<String>,
    #[serde(default)]
    pub(super) sides: Vec<Side>,
    pub(super) plan: Option<Plan>,
    pub(super) observed: Option<Observed>,
    pub(super) created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
pub(super) struct Observed {
    pub(super) state: Option<String>,
    pub(super) since: Option<DateTime<Utc>>,
    pub(super) details: Vec<String>,
    pub(super) repair: String,
}

#[derive(Deserialize)]
pub(super) struct Side {
    pub(super) team: String,
    pub(super) decision: Option<String>,
    pub(super) decided_by: Option<String>,
    pub(super) decided_at: Option<DateTime<Utc>>,
    pub(super) plan_hash: Option<String>,
    pub(super) comment: String,
}

#[derive(Deserialize)]
pub(super) struct Plan {
    pub(super) mechanism: String,
    pub(super) summary: String,
    pub(super) explanation: String,
    pub(super) rejected: Vec<Alternative>,
    pub(super) resources: Vec<Resource>,
    pub(super) routes: Vec<Route>,
    pub(super) rules: Vec<Rule>,
}

#[derive(Deserialize)]
pub(super) struct Alternative {
    pub(super) mechanism: String,
    pub(super) why_not: String,
}

#[derive(Deserialize)]
pub(super) struct Resource {
    pub(super) account: String,
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) detail: String,
}

#[derive(Deserialize)]
pub(super) struct Route {
    pub(super) network: String,
    pub(super) destination: String,
    pub(super) via: String,
}

#[derive(Deserialize)]
pub(super) struct Rule {
    pub(super) network: String,
    pub(super) allow_from: String,
    pub(super) protocol: String,
    pub(super) ports: String,
}

#[derive(Deserialize)]
pub(super) struct Event {
    pub(super) at: DateTime<Utc>,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) details: Value,
}

/// The connection's JSON with its events added as `events`, keys in the API's order.
pub(super) fn with_events(connection: &Reply, events: &Reply) -> String {
    let connection = String::from_utf8_lossy(&connection.body);
    let events = String::from_utf8_lossy(&events.body);
    match connection.trim_end().strip_suffix('}') {
        Some(head) => output::indent_json(&format!("{head},\"events\":{}}}", events.trim())),
        None => output::indent_json(&connection),
    }
}

/// The teams whose lead has not decided yet, comma-separated (empty when none).
pub(super) fn waiting_for(c: &Connection) -> String {
    c.sides
        .iter()
        .filter(|s| s.decision.is_none())
        .map(|s| s.team.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `VPC peering (vpc-peering)`: the planner's words and the API's value.
pub(super) fn mechanism(value: &str) -> String {
    match serde_json::from_value::<crate::planner::Mechanism>(json!(value)) {
        Ok(m) => format!("{} ({value})", m.label()),
        Err(_) => value.to_owned(),
    }
}

pub(super) fn dash(text: &str) -> String {
    if text.trim().is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

pub(super) fn short_hash(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// The request, its plan, each side's decision and (for `show`) its timeline.
pub(super) fn detail(c: &Connection, events: Option<&[Event]>) -> String {
    let mut pairs = vec![
        ("Connection", c.id.to_string()),
        ("Status", c.status.clone()),
        ("Kind", c.kind.clone()),
        ("Summary", c.summary.clone()),
        ("Reason", c.reason.clone()),
        ("Requested by", c.requested_by.clone()),
        ("Requested", output::time(&c.created_at)),
        (
            "Expires",
            c.expires_at.as_ref().map_or("-".into(), output::time),
        ),
        ("Mechanism", mechanism(&c.mechanism)),
    ];
    if let Some(plan) = &c.plan {
        pairs.push(("Why", plan.explanation.clone()));
    }
    pairs.push(("Plan hash", c.plan_hash.clone()));
    if let Some(failure) = &c.failure {
        pairs.push(("Failure", failure.clone()));
    }
    if let Some(o) = &c.observed {
        let state = match (&o.state, &o.since) {
            (Some(s), Some(t)) => format!("{s} since {}", output::time(t)),
            (Some(s), None) => s.clone(),
            _ => "not observed yet".into(),
        };
        pairs.push(("Observed", state));
        for d in &o.details {
            pairs.push(("  differs", d.clone()));
        }
        pairs.push(("On drift", o.repair.clone()));
    }
    let mut out = fields(&pairs);
    if let Some(plan) = &c.plan {
        out.push_str(&plan_tables(plan));
    }
    if !c.sides.is_empty() {
        let rows: Vec<Vec<String>> = c
            .sides
            .iter()
            .map(|s| {
                vec![
                    s.team.clone(),
                    s.decision.clone().unwrap_or_else(|| "waiting".into()),
                    s.decided_by.clone().unwrap_or_else(|| "-".into()),
                    s.decided_at.as_ref().map_or("-".into(), output::time),
                    s.plan_hash.as_deref().map_or("-".into(), short_hash),
                    dash(&s.comment),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            &["SIDE", "DECISION", "BY", "AT", "PLAN HASH", "COMMENT"],
            &rows,
        ));
    }
    if let Some(events) = events {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    output::time(&e.at),
                    e.actor.clone(),
                    e.action
                        .strip_prefix("connection.")
                        .unwrap_or(&e.action)
                        .to_owned(),
                    event_details(&e.details),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["WHEN", "WHO", "WHAT", "DETAILS"], &rows));
    }
    out
}

/// The plan's resources, routes, rules and rejected alternatives, one table each.
pub(super) fn plan_tables(plan: &Plan) -> String {
    let mut out = String::new();
    let mut section = |headers: &[&str], rows: Vec<Vec<String>>| {
        if !rows.is_empty() {
            out.push('\n');
            out.push_str(&table(headers, &rows));
        }
    };
    section(
        &["RESOURCE", "NAME", "ACCOUNT", "DETAIL"],
        plan.resources
            .iter()
            .map(|r| {
                vec![
                    r.kind.clone(),
                    r.name.clone(),
                    r.account.clone(),
                    dash(&r.detail),
                ]
            })
            .collect(),
    );
    section(
        &["ROUTE IN", "TO", "VIA"],
        plan.routes
            .iter()
            .map(|r| vec![r.network.clone(), r.destination.clone(), r.via.clone()])
            .collect(),
    );
    section(
        &["RULE IN", "ALLOW FROM", "PROTOCOL", "PORTS"],
        plan.rules
            .iter()
            .map(|r| {
                vec![
                    r.network.clone(),
                    r.allow_from.clone(),
                    r.protocol.clone(),
                    r.ports.clone(),
                ]
            })
            .collect(),
    );
    section(
        &["REJECTED", "WHY NOT"],
        plan.rejected
            .iter()
            .map(|a| vec![mechanism(&a.mechanism), a.why_not.clone()])
            .collect(),
    );
    out
}

/// An audit event's details in a few words: the status change, the teams, the
/// comment, what changed in the plan.
pub(super) fn event_details(d: &Value) -> String {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let mut parts = Vec::new();
    let status = |side: &str| text(d.get(side).and_then(|s| s.get("status")));
    match (status("before"), status("after")) {
        (Some(before), Some(after)) if before != after => parts.push(format!("{before} → {after}")),
        (None, Some(after)) => parts.push(after),
        _ => {}
    }
    if let Some(m) = text(d.get("after").and_then(|a| a.get("mechanism"))) {
        parts.push(mechanism(&m));
    }
    if let Some(teams) = d.get("teams").and_then(Value::as_array) {
        let teams: Vec<&str> = teams.iter().filter_map(Value::as_str).collect();
        if !teams.is_empty() {
            parts.push(format!("for {}", teams.join(", ")));
        }
    }
    if let Some(hash) = text(d.get("plan_hash")) {
        parts.push(format!("plan {}", short_hash(&hash)));
    }
    if let Some(comment) = text(d.get("comment")).filter(|c| !c.trim().is_empty()) {
        parts.push(format!("{comment:?}"));
    }
    if let Some(difference) = d.get("difference").and_then(Value::as_array) {
        let lines: Vec<&str> = difference.iter().filter_map(Value::as_str).collect();
        parts.push(format!("plan changed: {}", lines.join("; ")));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(team: &str, name: &str) -> NetworkName {
        NetworkName {
            id: Uuid::new_v4(),
            name: name.into(),
            team: team.into(),
        }
    }

    #[test]
    fn networks_are_found_by_name_or_team_and_name() {
        let networks = vec![
            net("payments", "prod"),
            net("search", "prod"),
            net("search", "index"),
        ];
        let find = |text: &str| find_network(&networks, text, "--from");
        assert_eq!(find("index").unwrap(), networks[2].id);
        assert_eq!(find("search/prod").unwrap(), networks[1].id);
        assert_eq!(find(" payments/prod ").unwrap(), networks[0].id);
        let several = find("prod").unwrap_err().to_string();
        assert_eq!(
            several,
            "--from: several teams have a network called \"prod\": payments/prod, search/prod; \
             say which with team/name"
        );
        for missing in ["staging", "payments/index", "billing/prod"] {
            let none = find(missing).unwrap_err().to_string();
            assert!(
                none.starts_with(&format!("--from: no network is called {missing:?}")),
                "{none}"
            );
        }
    }

    #[test]
    fn events_are_told_in_a_few_words() {
        let approved = json!({"before": {"status": "pending_approval"}, "after": {"status": "approved"},
            "teams": ["search"], "plan_hash": "0123456789abcdef", "comment": "fine"});
        assert_eq!(
            event_details(&approved),
            "pending_approval → approved, for search, plan 0123456789ab, \"fine\""
        );
        let requested = json!({"after": {"kind": "network-to-network", "status": "pending_approval",
            "mechanism": "vpc-peering", "plan_hash": "ff"}});
        assert_eq!(
            event_details(&requested),
            "pending_approval, VPC peering (vpc-peering)"
        );
        assert_eq!(event_details(&json!({})), "-");
    }

    #[test]
    fn mechanisms_are_named_in_words_with_the_api_value() {
        assert_eq!(mechanism("vpc-peering"), "VPC peering (vpc-peering)");
        assert_eq!(mechanism("carrier-pigeon"), "carrier-pigeon");
    }
}
