//! `switchboard network …`: teams' networks over `/api/v1/networks`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::output::{self, fields, key_values, table};
use super::pools::{Allocation, Plan};
use super::{Client, Error, key_value};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Networks with their prefixes, optionally filtered
    List {
        /// Only this team's networks (its slug)
        #[arg(long)]
        team: Option<String>,
        /// Only networks in this provider account (its name)
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        region: Option<String>,
    },
    /// One network
    Show { id: Uuid },
    /// A new network with the next free prefix of a pool
    Create {
        #[command(flatten)]
        network: NetworkArgs,
        /// The pool to allocate from: id, path (corp/eu-west) or name [default: the pool labelled with the region and --environment]
        #[arg(long)]
        pool: Option<String>,
        /// The prefix size, e.g. 24 for a /24 [default: the pool's]
        #[arg(long, value_name = "N")]
        size: Option<i64>,
        /// Without --pool: pick the pool labelled with this environment too
        #[arg(long)]
        environment: Option<String>,
    },
    /// Record a network that already exists, with its prefix
    Register {
        #[command(flatten)]
        network: NetworkArgs,
        /// The network's existing prefix, e.g. 10.20.0.0/16
        #[arg(long)]
        cidr: String,
        /// The pool it belongs to: id, path or name [default: the pool that contains it]
        #[arg(long)]
        pool: Option<String>,
    },
    /// Delete a network; its prefixes go back to the plan
    Delete { id: Uuid },
    /// Networks whose registration waits for an admin (admins)
    Registrations,
    /// Ask again for proof that the team owns the network's resource (e.g. after tagging the VPC switchboard:team=<team>)
    CheckOwnership { id: Uuid },
    /// Confirm that the network's team owns the resource it registered (admins)
    ConfirmOwnership { id: Uuid },
    /// Refuse a registration: the network no longer names that resource (admins)
    RefuseOwnership {
        id: Uuid,
        /// Why: the network's team reads it
        #[arg(long)]
        reason: String,
    },
    /// Approve building a network (a lead of its team): the plan `show` printed
    Approve {
        id: Uuid,
        /// The plan hash `network show` printed: a plan changed since is not approved
        #[arg(long, value_name = "HASH")]
        plan_hash: String,
    },
    /// Reject building a network (a lead of its team): it is deleted, its range freed
    Reject {
        id: Uuid,
        /// Why: the person who asked for it reads it
        #[arg(long)]
        reason: String,
    },
    /// What the workers did to build or remove a network
    Steps { id: Uuid },
}

/// What `create` and `register` both take.
#[derive(Args)]
pub struct NetworkArgs {
    /// The owning team (its slug)
    #[arg(long)]
    team: String,
    /// Unique within the team
    #[arg(long)]
    name: String,
    /// The provider account: name or id [default: the only one]
    #[arg(long)]
    account: Option<String>,
    /// The provider's region [default: the --pool's region label (or an enclosing pool's), else the account's only region]
    #[arg(long)]
    region: Option<String>,
    /// The provider's id for it, e.g. vpc-0abc123
    #[arg(long, value_name = "ID")]
    external_id: Option<String>,
    /// A tag, e.g. owner=payments (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = key_value)]
    tags: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Network {
    id: Uuid,
    name: String,
    team: String,
    provider_account: String,
    region: String,
    external_id: Option<String>,
    tags: BTreeMap<String, String>,
    prefixes: Vec<Allocation>,
    created_at: DateTime<Utc>,
    ownership: Ownership,
    status: String,
    build: Option<Build>,
}

/// What Switchboard builds for a network.
#[derive(Deserialize)]
struct Build {
    summary: String,
    plan_hash: String,
    failure: Option<String>,
    differences: Vec<String>,
}

#[derive(Deserialize)]
struct Step {
    at: DateTime<Utc>,
    action: String,
    resource: String,
    provider_id: Option<String>,
}

#[derive(Deserialize)]
struct Ownership {
    state: String,
    evidence: String,
}

#[derive(Deserialize)]
struct Account {
    id: Uuid,
    name: String,
    regions: Vec<String>,
}

pub(super) async fn run(client: &Client, command: NetworkCommand) -> Result<String, Error> {
    match command {
        NetworkCommand::List {
            team,
            provider,
            region,
        } => {
            let query: Vec<(&str, String)> = [
                ("team", team),
                ("provider_account", provider),
                ("region", region),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
            let reply = client.get_all("/networks", &query).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let networks: Vec<Network> = reply.parse()?;
            let rows: Vec<Vec<String>> = networks
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        n.team.clone(),
                        n.provider_account.clone(),
                        n.region.clone(),
                        prefixes(n),
                        n.id.to_string(),
                    ]
                })
                .collect();
            Ok(table(
                &["NAME", "TEAM", "PROVIDER", "REGION", "PREFIXES", "ID"],
                &rows,
            ))
        }
        NetworkCommand::Show { id } => {
            let reply = client.get(&format!("/networks/{id}"), &[]).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            Ok(show(&reply.parse()?))
        }
        NetworkCommand::Create {
            network,
            pool,
            size,
            environment,
        } => {
            create(
                client,
                network,
                pool,
                json!({ "prefix_length": size, "environment": environment }),
            )
            .await
        }
        NetworkCommand::Register {
            network,
            cidr,
            pool,
        } => create(client, network, pool, json!({ "cidr": cidr })).await,
        NetworkCommand::Delete { id } => {
            let reply = client.delete(&format!("/networks/{id}")).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            // A network Switchboard built is removed by the workers first (202).
            Ok(match reply.parse::<Network>() {
                Ok(n) if n.status == "removing" => format!(
                    "Removing network {id}: Switchboard removes what it built, then the network; \
                     `switchboard network steps {id}` follows it\n"
                ),
                _ => format!("Deleted network {id}; its prefixes went back to the plan\n"),
            })
        }
        NetworkCommand::Approve { id, plan_hash } => {
            let reply = client
                .post(
                    &format!("/networks/{id}/approve"),
                    &json!({ "plan_hash": plan_hash }),
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            Ok(show(&reply.parse()?))
        }
        NetworkCommand::Reject { id, reason } => {
            let reply = client
                .post(
                    &format!("/networks/{id}/reject"),
                    &json!({ "reason": reason }),
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            Ok(format!(
                "Rejected network {id}: it is deleted and its range went back to the plan\n"
            ))
        }
        NetworkCommand::Steps { id } => {
            let reply = client.get(&format!("/networks/{id}/steps"), &[]).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let steps: Vec<Step> = reply.parse()?;
            let rows: Vec<Vec<String>> = steps
                .iter()
                .map(|s| {
                    vec![
                        output::time(&s.at),
                        s.action.clone(),
                        s.resource.clone(),
                        s.provider_id.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            Ok(table(&["WHEN", "WHAT", "RESOURCE", "ID"], &rows))
        }
        NetworkCommand::Registrations => {
            let reply = client.get_all("/registrations", &[]).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let networks: Vec<Network> = reply.parse()?;
            let rows: Vec<Vec<String>> = networks
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        n.team.clone(),
                        n.provider_account.clone(),
                        n.external_id.clone().unwrap_or_else(|| "-".into()),
                        n.ownership.evidence.clone(),
                        n.id.to_string(),
                    ]
                })
                .collect();
            Ok(table(
                &["NAME", "TEAM", "PROVIDER", "RESOURCE", "WHY IT WAITS", "ID"],
                &rows,
            ))
        }
        NetworkCommand::CheckOwnership { id } => ownership(client, id, "check", json!({})).await,
        NetworkCommand::ConfirmOwnership { id } => {
            ownership(client, id, "confirm", json!({})).await
        }
        NetworkCommand::RefuseOwnership { id, reason } => {
            ownership(client, id, "refuse", json!({ "reason": reason })).await
        }
    }
}

/// `POST /networks/{id}/ownership/{verb}`, then the network as it is now.
async fn ownership(
    client: &Client,
    id: Uuid,
    verb: &str,
    body: serde_json::Value,
) -> Result<String, Error> {
    let reply = client
        .post(&format!("/networks/{id}/ownership/{verb}"), &body)
        .await?;
    if client.json_output() {
        return Ok(reply.pretty());
    }
    Ok(show(&reply.parse()?))
}

/// Creates a network. The API takes ids: the account and the pool are looked up
/// by name here, and the region defaults from them.
async fn create(
    client: &Client,
    args: NetworkArgs,
    pool: Option<String>,
    extra: serde_json::Value,
) -> Result<String, Error> {
    let account = find_account(client, args.account.as_deref()).await?;
    let (pool_id, pool_region) = match pool {
        Some(text) => {
            let plan = Plan::fetch(client).await?;
            let pool = plan.find(&text, Some("--pool"))?;
            (Some(pool.id), plan.label(pool, "region"))
        }
        None => (None, None),
    };
    let only_region = match &account.regions[..] {
        [region] => Some(region.clone()),
        _ => None,
    };
    let region = args.region.or(pool_region).or(only_region).ok_or_else(|| {
        Error::Usage(format!(
            "--region is required: no --pool with a region label (its own or an enclosing \
             pool's) to take it from, and the account {} has the regions: {}",
            account.name,
            account.regions.join(", ")
        ))
    })?;
    let tags: BTreeMap<String, String> = args.tags.into_iter().collect();
    let mut body = json!({ "name": args.name, "team": args.team, "provider_account_id": account.id,
        "region": region, "pool_id": pool_id, "external_id": args.external_id, "tags": tags });
    if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let reply = client.post("/networks", &body).await?;
    if client.json_output() {
        return Ok(reply.pretty());
    }
    Ok(show(&reply.parse()?))
}

/// The account `--account` names (name or id), or the only one there is.
async fn find_account(client: &Client, text: Option<&str>) -> Result<Account, Error> {
    let accounts: Vec<Account> = client.get_all("/provider-accounts", &[]).await?.parse()?;
    if accounts.is_empty() {
        return Err(Error::Failed(
            "--account: the portal has no provider accounts yet: an admin adds one \
             (POST /api/v1/provider-accounts)"
                .into(),
        ));
    }
    let names = accounts
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut found: Vec<Account> = match text.map(str::trim) {
        Some(text) => accounts
            .into_iter()
            .filter(|a| a.name == text || a.id.to_string() == text)
            .collect(),
        None => accounts,
    };
    match (found.len(), text) {
        (1, _) => Ok(found.remove(0)),
        (0, Some(text)) => Err(Error::Failed(format!(
            "--account: no provider account is called {text:?}; the accounts are: {names}"
        ))),
        _ => Err(Error::Usage(format!(
            "--account is required: the provider accounts are: {names}"
        ))),
    }
}

fn prefixes(n: &Network) -> String {
    if n.prefixes.is_empty() {
        return "-".into();
    }
    n.prefixes
        .iter()
        .map(|p| p.cidr.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(n: &Network) -> String {
    let mut lines = vec![
        ("Network", n.name.clone()),
        ("ID", n.id.to_string()),
        ("Status", n.status.replace('_', " ")),
        ("Team", n.team.clone()),
        ("Provider", n.provider_account.clone()),
        ("Region", n.region.clone()),
        ("Prefixes", prefixes(n)),
        (
            "External id",
            n.external_id.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Ownership", ownership_line(&n.ownership)),
        ("Tags", key_values(&n.tags)),
        ("Created", output::time(&n.created_at)),
    ];
    if let Some(b) = &n.build {
        lines.push(("Builds", b.summary.clone()));
        lines.push(("Plan hash", b.plan_hash.clone()));
        if let Some(why) = &b.failure {
            lines.push(("Failure", why.clone()));
        }
        if !b.differences.is_empty() {
            lines.push(("Differs", b.differences.join("; ")));
        }
    }
    fields(&lines)
}

fn ownership_line(o: &Ownership) -> String {
    match o.state.as_str() {
        "none" => "-".into(),
        "pending" => format!("not proved yet: {} (an admin may confirm it)", o.evidence),
        state => format!("{state}: {}", o.evidence),
    }
}
