//! `switchboard connection …`: connection requests over `/api/v1/connections`.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::output::{self, fields, table};
use super::{Client, Error, Reply};

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// Ask for a connection; the leads of the teams involved approve it (--dry-run: only show the plan)
    Request(Box<RequestArgs>),
    /// Requests you made or that involve your teams (all of them for admins)
    List {
        /// Only requests in this status, e.g. pending_approval, approved, rejected
        #[arg(long)]
        status: Option<String>,
    },
    /// One request: its plan, each side's decision, and what happened to it
    Show { id: Uuid },
    /// Consent for the side(s) you lead, to the plan as it is now
    Approve {
        id: Uuid,
        /// A note kept with your decision
        #[arg(long)]
        comment: Option<String>,
        /// Approve only if the plan still has this hash (from `connection show`) [default: the plan fetched just before approving]
        #[arg(long, value_name = "HASH")]
        plan_hash: Option<String>,
    },
    /// Refuse, telling the requester why
    Reject {
        id: Uuid,
        /// Why: the requester reads it
        #[arg(long)]
        comment: String,
    },
    /// Withdraw your request before it is built
    Cancel { id: Uuid },
    /// Apply the approved plan again to an active or drifted connection (leads)
    Repair { id: Uuid },
    /// What happens when it drifts: account (the provider account's default), notify or auto (leads)
    RepairMode { id: Uuid, mode: String },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Two networks reach each other
    NetworkToNetwork,
    /// A hostname routed through the edge proxy to a service in a network
    ServiceExposure,
    /// A source network or CIDR may reach ports of a network
    FirewallOpening,
    /// An A, AAAA or CNAME record for a team
    DnsRecord,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::NetworkToNetwork => "network-to-network",
            Kind::ServiceExposure => "service-exposure",
            Kind::FirewallOpening => "firewall-opening",
            Kind::DnsRecord => "dns-record",
        }
    }
}

/// A network is named by its id, its name, or `team/name` (names are unique per team).
#[derive(Args)]
pub struct RequestArgs {
    /// What to ask for; each kind takes the flags that mention it
    #[arg(long, value_enum)]
    kind: Kind,
    /// Why it is needed: approvers read this (optional with --dry-run)
    #[arg(long)]
    reason: Option<String>,
    /// network-to-network, firewall-opening: where traffic comes from (id, name or team/name)
    #[arg(long, value_name = "NETWORK")]
    from: Option<String>,
    /// firewall-opening: instead of --from, addresses outside the portal, e.g. 203.0.113.0/24
    #[arg(long, value_name = "CIDR", conflicts_with = "from")]
    from_cidr: Option<String>,
    /// The other network (network-to-network), the network opened (firewall-opening) or the service's network (service-exposure)
    #[arg(long, value_name = "NETWORK")]
    to: Option<String>,
    /// network-to-network, firewall-opening: any, tcp, udp or icmp [default: any]
    #[arg(long)]
    protocol: Option<String>,
    /// network-to-network, firewall-opening: ports or ranges, e.g. 443,8000-8100 [default: all]
    #[arg(long)]
    ports: Option<String>,
    /// service-exposure: the service's address inside --to, e.g. 10.1.2.3
    #[arg(long, value_name = "IP")]
    address: Option<String>,
    /// service-exposure: the service's port
    #[arg(long)]
    port: Option<u16>,
    /// service-exposure: the public name, e.g. api.example.com
    #[arg(long)]
    hostname: Option<String>,
    /// service-exposure: the path routed to the service [default: /]
    #[arg(long)]
    path: Option<String>,
    /// dns-record: the team the record is for (its slug)
    #[arg(long)]
    team: Option<String>,
    /// dns-record: the record's name, e.g. db.example.com
    #[arg(long)]
    name: Option<String>,
    /// dns-record: A, AAAA or CNAME
    #[arg(long = "type", value_name = "TYPE")]
    record_type: Option<String>,
    /// dns-record: the address (A, AAAA) or name (CNAME) it points to
    #[arg(long)]
    value: Option<String>,
    /// dns-record: seconds [default: 300]
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u32>,
    /// Remove it after this many hours
    #[arg(long, value_name = "N")]
    expires_in_hours: Option<i64>,
    /// Print the plan the request would get, and save nothing
    #[arg(long)]
    dry_run: bool,
}

impl RequestArgs {
    /// Refuses flags the kind does not take: the API would ignore them silently.
    fn check_flags(&self) -> Result<(), Error> {
        use Kind::*;
        let flags: [(&str, bool, &[Kind]); 14] = [
            (
                "--from",
                self.from.is_some(),
                &[NetworkToNetwork, FirewallOpening],
            ),
            ("--from-cidr", self.from_cidr.is_some(), &[FirewallOpening]),
            (
                "--to",
                self.to.is_some(),
                &[NetworkToNetwork, FirewallOpening, ServiceExposure],
            ),
            (
                "--protocol",
                self.protocol.is_some(),
                &[NetworkToNetwork, FirewallOpening],
            ),
            (
                "--ports",
                self.ports.is_some(),
                &[NetworkToNetwork, FirewallOpening],
            ),
            ("--address", self.address.is_some(), &[ServiceExposure]),
            ("--port", self.port.is_some(), &[ServiceExposure]),
            ("--hostname", self.hostname.is_some(), &[ServiceExposure]),
            ("--path", self.path.is_some(), &[ServiceExposure]),
            ("--team", self.team.is_some(), &[DnsRecord]),
            ("--name", self.name.is_some(), &[DnsRecord]),
            ("--type", self.record_type.is_some(), &[DnsRecord]),
            ("--value", self.value.is_some(), &[DnsRecord]),
            ("--ttl", self.ttl.is_some(), &[DnsRecord]),
        ];
        let kind = self.kind;
        let stray: Vec<&str> = flags
            .iter()
            .filter(|(_, given, kinds)| *given && !kinds.contains(&kind))
            .map(|(flag, _, _)| *flag)
            .collect();
        if stray.is_empty() {
            return Ok(());
        }
        let takes: Vec<&str> = flags
            .iter()
            .filter(|(_, _, kinds)| kinds.contains(&kind))
            .map(|(flag, _, _)| *flag)
            .collect();
        Err(Error::Usage(format!(
            "{} {} not apply to --kind {}: it takes {} (and --reason, --expires-in-hours, --dry-run)",
            stray.join(", "),
            if stray.len() == 1 { "does" } else { "do" },
            kind.as_str(),
            takes.join(", ")
        )))
    }
}

/// A network as `/api/v1/networks` lists it (what naming one needs).
#[derive(Deserialize)]
struct NetworkName {
    id: Uuid,
    name: String,
    team: String,
}

/// The network `text` names: an id, `team/name`, or a name only one team uses.
/// `flag` is where it came from, for the message.
fn find_network(networks: &[NetworkName], text: &str, flag: &str) -> Result<Uuid, Error> {
    let text = text.trim();
    let found: Vec<&NetworkName> = networks
        .iter()
        .filter(|n| n.name == text || format!("{}/{}", n.team, n.name) == text)
        .collect();
    match found[..] {
        [n] => Ok(n.id),
        [] => Err(Error::Failed(format!(
            "{flag}: no network is called {text:?} (give its id, its name, or team/name; \
             `switchboard network list` shows them)"
        ))),
        _ => Err(Error::Failed(format!(
            "{flag}: several teams have a network called {text:?}: {}; say which with team/name",
            found
                .iter()
                .map(|n| format!("{}/{}", n.team, n.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Turns `--from`/`--to` into network ids, listing the networks only when a name needs it.
async fn network_ids<const N: usize>(
    client: &Client,
    named: [(&str, Option<&str>); N],
) -> Result<[Option<Uuid>; N], Error> {
    let by_name = |text: &str| Uuid::parse_str(text.trim()).is_err();
    let networks: Vec<NetworkName> = if named.iter().any(|(_, t)| t.is_some_and(by_name)) {
        client.get("/networks", &[]).await?.parse()?
    } else {
        Vec::new()
    };
    let mut ids = [None; N];
    for (id, (flag, text)) in ids.iter_mut().zip(named) {
        *id = match text {
            Some(text) => match Uuid::parse_str(text.trim()) {
                Ok(id) => Some(id),
                Err(_) => Some(find_network(&networks, text, flag)?),
            },
            None => None,
        };
    }
    Ok(ids)
}

#[derive(Deserialize)]
struct Connection {
    id: Uuid,
    kind: String,
    status: String,
    requested_by: String,
    reason: String,
    summary: String,
    mechanism: String,
    plan_hash: String,
    expires_at: Option<DateTime<Utc>>,
    failure: Option<String>,
    #[serde(default)]
    sides: Vec<Side>,
    plan: Option<Plan>,
    observed: Option<Observed>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Observed {
    state: Option<String>,
    since: Option<DateTime<Utc>>,
    details: Vec<String>,
    repair: String,
}

#[derive(Deserialize)]
struct Side {
    team: String,
    decision: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    plan_hash: Option<String>,
    comment: String,
}

#[derive(Deserialize)]
struct Plan {
    mechanism: String,
    summary: String,
    explanation: String,
    rejected: Vec<Alternative>,
    resources: Vec<Resource>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Alternative {
    mechanism: String,
    why_not: String,
}

#[derive(Deserialize)]
struct Resource {
    account: String,
    kind: String,
    name: String,
    detail: String,
}

#[derive(Deserialize)]
struct Route {
    network: String,
    destination: String,
    via: String,
}

#[derive(Deserialize)]
struct Rule {
    network: String,
    allow_from: String,
    protocol: String,
    ports: String,
}

#[derive(Deserialize)]
struct Event {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    details: Value,
}

pub(super) async fn run(client: &Client, command: ConnectionCommand) -> Result<String, Error> {
    match command {
        ConnectionCommand::Request(args) => request(client, *args).await,
        ConnectionCommand::List { status } => {
            let query: Vec<(&str, String)> = status.map(|s| ("status", s)).into_iter().collect();
            let reply = client.get("/connections", &query).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let found: Vec<Connection> = reply.parse()?;
            let rows: Vec<Vec<String>> = found
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.status.clone(),
                        c.kind.clone(),
                        c.requested_by.clone(),
                        output::time(&c.created_at),
                        dash(&c.summary),
                    ]
                })
                .collect();
            Ok(table(
                &[
                    "ID",
                    "STATUS",
                    "KIND",
                    "REQUESTED BY",
                    "REQUESTED",
                    "SUMMARY",
                ],
                &rows,
            ))
        }
        ConnectionCommand::Show { id } => {
            let (path, events_path) = (
                format!("/connections/{id}"),
                format!("/connections/{id}/events"),
            );
            let (connection, events) =
                futures::try_join!(client.get(&path, &[]), client.get(&events_path, &[]))?;
            if client.json_output() {
                return Ok(with_events(&connection, &events));
            }
            let events: Vec<Event> = events.parse()?;
            Ok(detail(&connection.parse()?, Some(&events)))
        }
        ConnectionCommand::Approve {
            id,
            comment,
            plan_hash,
        } => {
            // Approve the plan as fetched (or as shown earlier, with --plan-hash): if
            // it changes in between, the portal refuses instead of approving another.
            let seen: Connection = client
                .get(&format!("/connections/{id}"), &[])
                .await?
                .parse()?;
            let hash = plan_hash.unwrap_or_else(|| seen.plan_hash.clone());
            let mut body = json!({ "plan_hash": hash });
            if let Some(comment) = comment {
                body["comment"] = json!(comment);
            }
            let reply = client
                .post(&format!("/connections/{id}/approve"), &body)
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let c: Connection = reply.parse()?;
            Ok(fields(&[
                ("Approved", c.id.to_string()),
                ("Summary", c.summary.clone()),
                ("Mechanism", mechanism(&c.mechanism)),
                ("Plan hash", hash),
                ("Status", c.status.clone()),
                ("Waiting for", waiting_for(&c)),
            ]))
        }
        ConnectionCommand::Reject { id, comment } => {
            let reply = client
                .post(
                    &format!("/connections/{id}/reject"),
                    &json!({ "comment": comment }),
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let c: Connection = reply.parse()?;
            Ok(fields(&[
                ("Rejected", c.id.to_string()),
                ("Summary", c.summary),
                ("Comment", comment),
                ("Status", c.status),
            ]))
        }
        ConnectionCommand::Repair { id } => {
            let reply = client
                .post(&format!("/connections/{id}/repair"), &json!({}))
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let c: Connection = reply.parse()?;
            Ok(fields(&[
                ("Repair queued", c.id.to_string()),
                ("Summary", c.summary),
                ("Status", c.status),
            ]))
        }
        ConnectionCommand::RepairMode { id, mode } => {
            let reply = client
                .put(
                    &format!("/connections/{id}/repair-mode"),
                    &json!({ "repair": mode }),
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let c: Connection = reply.parse()?;
            Ok(fields(&[
                ("Connection", c.id.to_string()),
                ("Summary", c.summary),
                ("On drift", c.observed.map(|o| o.repair).unwrap_or_default()),
            ]))
        }
        ConnectionCommand::Cancel { id } => {
            let reply = client
                .post(&format!("/connections/{id}/cancel"), &json!({}))
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let c: Connection = reply.parse()?;
            Ok(fields(&[
                ("Cancelled", c.id.to_string()),
                ("Summary", c.summary),
                ("Status", c.status),
            ]))
        }
    }
}

async fn request(client: &Client, args: RequestArgs) -> Result<String, Error> {
    args.check_flags()?;
    let reason = match (args.reason, args.dry_run) {
        (Some(reason), _) => reason,
        // The plan does not depend on the reason, but the API wants one.
        (None, true) => "dry run".into(),
        (None, false) => {
            return Err(Error::Usage(
                "--reason is required: say why this is needed, approvers read it".into(),
            ));
        }
    };
    let [from, to] = network_ids(
        client,
        [
            ("--from", args.from.as_deref()),
            ("--to", args.to.as_deref()),
        ],
    )
    .await?;
    let body = json!({
        "kind": args.kind.as_str(),
        "reason": reason,
        "source_network_id": from,
        "source_cidr": args.from_cidr,
        "destination_network_id": to,
        "protocol": args.protocol,
        "ports": args.ports,
        "target_address": args.address,
        "target_port": args.port,
        "hostname": args.hostname,
        "path": args.path,
        "team": args.team,
        "name": args.name,
        "record_type": args.record_type,
        "value": args.value,
        "ttl": args.ttl,
        "expires_in_hours": args.expires_in_hours,
    });
    // Only what was given: the API reads an absent field as "not given".
    let body = match body {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    };
    if args.dry_run {
        let reply = client.post("/connections/plan", &body).await?;
        if client.json_output() {
            return Ok(reply.pretty());
        }
        let plan: Plan = reply.parse()?;
        let mut out =
            String::from("Dry run: nothing was saved. The request would get this plan:\n\n");
        out.push_str(&fields(&[
            ("Summary", plan.summary.clone()),
            ("Mechanism", mechanism(&plan.mechanism)),
            ("Why", plan.explanation.clone()),
        ]));
        out.push_str(&plan_tables(&plan));
        return Ok(out);
    }
    let reply = client.post("/connections", &body).await?;
    if client.json_output() {
        return Ok(reply.pretty());
    }
    let c: Connection = reply.parse()?;
    let mut out = detail(&c, None);
    let waiting = waiting_for(&c);
    if !waiting.is_empty() {
        out.push_str(&format!(
            "\nRequested: a lead of each of {waiting} must approve it (`switchboard connection show {}`)\n",
            c.id
        ));
    }
    Ok(out)
}

/// The connection's JSON with its events added as `events`, keys in the API's order.
fn with_events(connection: &Reply, events: &Reply) -> String {
    let connection = String::from_utf8_lossy(&connection.body);
    let events = String::from_utf8_lossy(&events.body);
    match connection.trim_end().strip_suffix('}') {
        Some(head) => output::indent_json(&format!("{head},\"events\":{}}}", events.trim())),
        None => output::indent_json(&connection),
    }
}

/// The teams whose lead has not decided yet, comma-separated (empty when none).
fn waiting_for(c: &Connection) -> String {
    c.sides
        .iter()
        .filter(|s| s.decision.is_none())
        .map(|s| s.team.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `VPC peering (vpc-peering)`: the planner's words and the API's value.
fn mechanism(value: &str) -> String {
    match serde_json::from_value::<crate::planner::Mechanism>(json!(value)) {
        Ok(m) => format!("{} ({value})", m.label()),
        Err(_) => value.to_owned(),
    }
}

fn dash(text: &str) -> String {
    if text.trim().is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

fn short_hash(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// The request, its plan, each side's decision and (for `show`) its timeline.
fn detail(c: &Connection, events: Option<&[Event]>) -> String {
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
fn plan_tables(plan: &Plan) -> String {
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
fn event_details(d: &Value) -> String {
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
