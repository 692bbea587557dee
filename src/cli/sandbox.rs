//! `switchboard sandbox …`: the sandbox's simulated cloud over
//! `/api/v1/sandbox/resources` (admins), to demonstrate drift.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::output::{fields, table};
use super::{Client, Error};

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// The sandbox's resources, newest first
    List {
        /// Only the resources of this connection
        #[arg(long)]
        connection: Option<Uuid>,
    },
    /// Change a resource behind Switchboard's back
    Change {
        /// The resource's id (sbx-…)
        id: String,
        /// Its new detail
        #[arg(long)]
        detail: String,
    },
    /// Delete a resource behind Switchboard's back
    Delete {
        /// The resource's id (sbx-…)
        id: String,
    },
}

#[derive(Deserialize)]
struct Resource {
    id: String,
    account: String,
    connection_id: Uuid,
    kind: String,
    name: String,
    detail: String,
    created_at: DateTime<Utc>,
}

pub(super) async fn run(client: &Client, command: SandboxCommand) -> Result<String, Error> {
    match command {
        SandboxCommand::List { connection } => {
            let query: Vec<(&str, String)> = connection
                .map(|c| ("connection_id", c.to_string()))
                .into_iter()
                .collect();
            let reply = client.get_all("/sandbox/resources", &query).await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let resources: Vec<Resource> = reply.parse()?;
            let rows: Vec<Vec<String>> = resources
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.kind.clone(),
                        r.name.clone(),
                        r.detail.clone(),
                        r.connection_id.to_string(),
                    ]
                })
                .collect();
            Ok(table(
                &["ID", "KIND", "NAME", "DETAIL", "CONNECTION"],
                &rows,
            ))
        }
        SandboxCommand::Change { id, detail } => {
            let reply = client
                .patch(
                    &format!("/sandbox/resources/{id}"),
                    &json!({ "detail": detail }),
                )
                .await?;
            if client.json_output() {
                return Ok(reply.pretty());
            }
            let r: Resource = reply.parse()?;
            Ok(fields(&[
                ("changed", format!("{} {}", r.kind, r.name)),
                ("id", r.id),
                ("account", r.account),
                ("connection", r.connection_id.to_string()),
                ("detail", r.detail),
                ("created", r.created_at.to_rfc3339()),
            ]))
        }
        SandboxCommand::Delete { id } => {
            client.delete(&format!("/sandbox/resources/{id}")).await?;
            Ok(format!(
                "Deleted sandbox resource {id} behind Switchboard's back\n"
            ))
        }
    }
}
