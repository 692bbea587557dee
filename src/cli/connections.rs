//! `switchboard connection …`: connection requests over `/api/v1/connections`.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::output::{self, fields, table};
use super::{Client, Error, Reply, typed_answer, wire_name};

mod ask;
mod change;
mod show;

use ask::*;
use show::*;

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// Ask for a connection; the leads of the teams involved approve it (--dry-run: only show the plan)
    Request(Box<RequestArgs>),
    /// Requests you made or that involve your teams (all of them for admins), newest first
    List(Box<ListArgs>),
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
    /// Requests waiting for your decision as a team lead, oldest first
    Approvals,
    /// Withdraw your request before it is built
    Cancel { id: Uuid },
    /// Remove what it built (the requester, leads of either side, admins)
    Remove { id: Uuid },
    /// Try a failed connection again (leads, admins)
    Retry { id: Uuid },
    /// Apply the approved plan again to an active or drifted connection (leads)
    Repair { id: Uuid },
    /// What happens when it drifts: account (the provider account's default), notify or auto (leads)
    RepairMode { id: Uuid, mode: String },
    /// Keep it past its expiry: a lead of the requester's team renews at once, anyone else's renewal waits for one
    Renew {
        id: Uuid,
        /// The new expiry, in days from now
        #[arg(long, conflicts_with = "hours", required_unless_present = "hours")]
        days: Option<i64>,
        /// The new expiry, in hours from now
        #[arg(long)]
        hours: Option<i64>,
        /// Why it is still needed
        #[arg(long)]
        comment: Option<String>,
    },
    /// A connection's renewals, newest first: who asked until when, and the decision
    Renewals { id: Uuid },
    /// Approve a waiting renewal (its id, from `connection renew` or the email) as a lead of the requester's team
    ApproveRenewal {
        id: Uuid,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a waiting renewal, telling the person who asked why
    RejectRenewal {
        id: Uuid,
        #[arg(long)]
        comment: String,
    },
    /// Ask for other ports, protocol or reason of an active connection: more
    /// waits for a lead of each side, less is built at once
    Change {
        id: Uuid,
        /// any, tcp, udp or icmp
        #[arg(long)]
        protocol: Option<String>,
        /// Ports or ranges, e.g. 443,8443 (empty for all)
        #[arg(long)]
        ports: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// A connection's changes, newest first: its versions and what waits
    Changes { id: Uuid },
    /// Approve a change for your side (a lead), with the plan hash `change` printed
    ApproveChange {
        id: Uuid,
        #[arg(long, value_name = "HASH")]
        plan_hash: String,
    },
    /// Reject a change, telling the person who asked why
    RejectChange {
        id: Uuid,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Args)]
pub struct ListArgs {
    /// Only requests in this status, e.g. pending_approval, active, rejected
    #[arg(long)]
    status: Option<String>,
    /// Only this kind: network-to-network, service-exposure, firewall-opening, dns-record
    #[arg(long)]
    kind: Option<String>,
    /// Only requests where this team (its slug) is a side
    #[arg(long)]
    team: Option<String>,
    /// Only requests from or to this network (its id)
    #[arg(long)]
    network: Option<Uuid>,
    /// Only requests this person (their email address) made
    #[arg(long)]
    requested_by: Option<String>,
    /// Only requests made at or after this instant (RFC 3339)
    #[arg(long, value_name = "TIME")]
    created_after: Option<String>,
    /// Only requests made before this instant (RFC 3339)
    #[arg(long, value_name = "TIME")]
    created_before: Option<String>,
    /// How many on this page (1 to 500)
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Start after the page that printed this cursor
    #[arg(long, conflicts_with = "all")]
    cursor: Option<String>,
    /// Follow every page to the end
    #[arg(long)]
    all: bool,
}

/// The connection list through the typed client: a page (saying how to get
/// the next), or every page.
async fn list(client: &Client, args: ListArgs) -> Result<String, Error> {
    use crate::client::{ConnectionQuery, PageRequest};
    let query = ConnectionQuery {
        status: args.status,
        kind: args.kind,
        team: args.team,
        network: args.network,
        requested_by: args.requested_by,
        created_after: args.created_after,
        created_before: args.created_before,
    };
    let (found, next) = if args.all {
        (client.api.all_connections(&query).await?, None)
    } else {
        let page = PageRequest {
            limit: Some(args.limit),
            cursor: args.cursor,
        };
        let page = client.api.list_connections(&query, &page).await?;
        (page.items, page.next_cursor)
    };
    if client.json_output() {
        return serde_json::to_string_pretty(&found)
            .map(|text| text + "\n")
            .map_err(|e| Error::Failed(format!("could not print the answer: {e}")));
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                wire_name(&c.status),
                wire_name(&c.kind),
                c.requested_by.clone(),
                output::time(&c.created_at),
                dash(&c.summary),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "ID",
            "STATUS",
            "KIND",
            "REQUESTED BY",
            "REQUESTED",
            "SUMMARY",
        ],
        &rows,
    );
    if let Some(next) = next {
        text.push_str(&format!(
            "More: add --cursor {next} for the next page, or --all for every page.\n"
        ));
    }
    Ok(text)
}

pub(super) async fn run(client: &Client, command: ConnectionCommand) -> Result<String, Error> {
    match command {
        ConnectionCommand::Request(args) => request(client, *args).await,
        ConnectionCommand::Remove { id } => {
            let c = client.api.remove_connection(id).await?;
            typed_answer(
                client,
                &c,
                format!("{id}: {}, removing what it built\n", wire_name(&c.status)),
            )
        }
        ConnectionCommand::Retry { id } => {
            let c = client.api.retry(id).await?;
            typed_answer(
                client,
                &c,
                format!("{id}: {}, building again\n", wire_name(&c.status)),
            )
        }
        ConnectionCommand::List(args) => list(client, *args).await,
        ConnectionCommand::Approvals => {
            let waiting = client.api.all_approvals().await?;
            let rows: Vec<Vec<String>> = waiting
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        wire_name(&c.kind),
                        c.requested_by.clone(),
                        output::time(&c.created_at),
                        dash(&c.summary),
                    ]
                })
                .collect();
            let text = if rows.is_empty() {
                "Nothing waits for your decision.\n".to_owned()
            } else {
                table(
                    &["ID", "KIND", "REQUESTED BY", "REQUESTED", "SUMMARY"],
                    &rows,
                )
            };
            typed_answer(client, &waiting, text)
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
        ConnectionCommand::Renew {
            id,
            days,
            hours,
            comment,
        } => {
            let hours = hours.or(days.map(|d| d.saturating_mul(24)));
            let reply = client
                .post(
                    &format!("/connections/{id}/renewals"),
                    &json!({ "expires_in_hours": hours, "comment": comment.unwrap_or_default() }),
                )
                .await?;
            renewal_reply(client, reply)
        }
        ConnectionCommand::Renewals { id } => {
            let reply = client
                .get(&format!("/connections/{id}/renewals"), &[])
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let renewals: Vec<crate::api::v1::renewals::RenewalOut> = reply.parse()?;
            if renewals.is_empty() {
                return Ok("Never renewed.".into());
            }
            let at = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
            Ok(table(
                &["RENEWAL", "ASKED BY", "FROM", "UNTIL", "STATUS", "COMMENT"],
                &renewals
                    .into_iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.requested_by,
                            at(r.previous_expiry),
                            at(r.expires_at),
                            r.status,
                            r.comment,
                        ]
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        ConnectionCommand::ApproveRenewal { id, comment } => {
            let reply = client
                .post(
                    &format!("/renewals/{id}/approve"),
                    &json!({ "comment": comment.unwrap_or_default() }),
                )
                .await?;
            renewal_reply(client, reply)
        }
        ConnectionCommand::RejectRenewal { id, comment } => {
            let reply = client
                .post(
                    &format!("/renewals/{id}/reject"),
                    &json!({ "comment": comment }),
                )
                .await?;
            renewal_reply(client, reply)
        }
        ConnectionCommand::Change {
            id,
            protocol,
            ports,
            reason,
        } => change::ask(client, id, protocol, ports, reason).await,
        ConnectionCommand::Changes { id } => change::list(client, id).await,
        ConnectionCommand::ApproveChange { id, plan_hash } => {
            change::decide(client, id, Some(plan_hash), None).await
        }
        ConnectionCommand::RejectChange { id, reason } => {
            change::decide(client, id, None, Some(reason)).await
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

/// A renewal as the terminal shows it.
fn renewal_reply(client: &Client, reply: Reply) -> Result<String, Error> {
    if client.json_output() {
        return Ok(reply.pretty());
    }
    let r: crate::api::v1::renewals::RenewalOut = reply.parse()?;
    let status = match r.status.as_str() {
        "pending" => {
            "pending: a lead of the requester's team decides (they were emailed)".to_owned()
        }
        other => other.to_owned(),
    };
    Ok(fields(&[
        ("Renewal", r.id.to_string()),
        ("Connection", r.connection_id.to_string()),
        ("Status", status),
        (
            "Expires",
            r.previous_expiry.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        (
            "Asked until",
            r.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    ]))
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

/// `switchboard status`: how many connections you can see are in each state.
pub(super) async fn status(client: &Client) -> Result<String, Error> {
    let status = client.api.status().await?;
    let rows: Vec<Vec<String>> = status
        .counts
        .iter()
        .map(|(state, n)| vec![state.clone(), n.to_string()])
        .collect();
    typed_answer(client, &status, table(&["STATE", "CONNECTIONS"], &rows))
}
