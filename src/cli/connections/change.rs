//! `switchboard connection change | changes | approve-change | reject-change`:
//! other ports, protocol or reason for an active connection.

use serde_json::json;
use uuid::Uuid;

use super::super::output::{fields, table};
use super::super::{Client, Error, Reply};
use crate::api::v1::changes::ChangeOut;

/// `POST /connections/{id}/changes` with what is given.
pub(super) async fn ask(
    client: &Client,
    id: Uuid,
    protocol: Option<String>,
    ports: Option<String>,
    reason: Option<String>,
) -> Result<String, Error> {
    if protocol.is_none() && ports.is_none() && reason.is_none() {
        return Err(Error::Usage(
            "say what changes: --ports, --protocol and/or --reason".into(),
        ));
    }
    let reply = client
        .post(
            &format!("/connections/{id}/changes"),
            &json!({ "protocol": protocol, "ports": ports, "reason": reason }),
        )
        .await?;
    shown(client, reply)
}

/// A connection's changes, newest first.
pub(super) async fn list(client: &Client, id: Uuid) -> Result<String, Error> {
    let reply = client
        .get(&format!("/connections/{id}/changes"), &[])
        .await?;
    if client.json_output() {
        return Ok(reply.pretty());
    }
    let changes: Vec<ChangeOut> = reply.parse()?;
    if changes.is_empty() {
        return Ok("Never changed: version 1 is the request as approved.".into());
    }
    Ok(table(
        &["CHANGE", "VERSION", "ASKED BY", "PORTS", "STATUS", "SCOPE"],
        &changes
            .into_iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.version.map_or("-".into(), |v| v.to_string()),
                    c.requested_by,
                    format!(
                        "{} {}",
                        c.protocol.unwrap_or_else(|| "any".into()),
                        c.ports
                            .filter(|p| !p.is_empty())
                            .unwrap_or_else(|| "all ports".into())
                    ),
                    c.status,
                    c.scope,
                ]
            })
            .collect::<Vec<_>>(),
    ))
}

/// A lead approves (with the plan hash shown) or rejects (with why) a change.
pub(super) async fn decide(
    client: &Client,
    id: Uuid,
    approve: Option<String>,
    reason: Option<String>,
) -> Result<String, Error> {
    let reply = match (approve, reason) {
        (Some(hash), _) => {
            client
                .post(
                    &format!("/changes/{id}/approve"),
                    &json!({ "plan_hash": hash }),
                )
                .await?
        }
        (None, Some(reason)) => {
            client
                .post(
                    &format!("/changes/{id}/reject"),
                    &json!({ "reason": reason }),
                )
                .await?
        }
        (None, None) => return Err(Error::Usage("--plan-hash or --reason is required".into())),
    };
    shown(client, reply)
}

fn shown(client: &Client, reply: Reply) -> Result<String, Error> {
    if client.json_output() {
        return Ok(reply.pretty());
    }
    let c: ChangeOut = reply.parse()?;
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join("; ")
        }
    };
    Ok(fields(&[
        ("Change", c.id.to_string()),
        ("Connection", c.connection_id.to_string()),
        ("Status", c.status),
        (
            "Scope",
            match c.scope.as_str() {
                "wider" => "wider: a lead of each side approves it".to_owned(),
                other => format!("{other}: built without the other side"),
            },
        ),
        ("Adds", list(&c.difference.added)),
        ("Removes", list(&c.difference.removed)),
        ("Keeps", list(&c.difference.kept)),
        ("Plan hash", c.plan_hash),
    ]))
}
