//! `switchboard audit`: who changed what, newest first (admins).

use clap::Args;

use super::output::{self, table};
use super::{Client, Error, typed_answer};
use crate::client::{AuditQuery, PageRequest};

#[derive(Args)]
pub struct AuditArgs {
    /// Only entries about this kind of object, e.g. connection, network, team
    #[arg(long)]
    object_type: Option<String>,
    /// Only entries about this object (its id)
    #[arg(long)]
    object_id: Option<String>,
    /// Only what this person did (their email address) or `system`
    #[arg(long)]
    actor: Option<String>,
    /// Only this action, e.g. connection.approve
    #[arg(long)]
    action: Option<String>,
    /// Only entries at or after this instant (RFC 3339)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only entries before this instant (RFC 3339)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// How many on this page (1 to 500)
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Start after the page that printed this cursor
    #[arg(long)]
    cursor: Option<String>,
}

pub(super) async fn run(client: &Client, args: AuditArgs) -> Result<String, Error> {
    let query = AuditQuery {
        object_type: args.object_type,
        object_id: args.object_id,
        actor: args.actor,
        action: args.action,
        since: args.since,
        until: args.until,
    };
    let page = PageRequest {
        limit: Some(args.limit),
        cursor: args.cursor,
    };
    let page = client.api.list_audit_events(&query, &page).await?;
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|e| {
            vec![
                output::time(&e.at),
                e.actor.clone(),
                e.action.clone(),
                format!("{} {}", e.object_type, e.object_id),
            ]
        })
        .collect();
    let mut text = table(&["AT", "WHO", "ACTION", "OBJECT"], &rows);
    if let Some(next) = &page.next_cursor {
        text.push_str(&format!("Older: add --cursor {next}\n"));
    }
    typed_answer(client, &page.items, text)
}
