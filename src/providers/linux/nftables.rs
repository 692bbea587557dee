//! The namespace's `switchboard` nftables table: rules opened for firewall
//! items, closed to all else, found by their comments.

use super::*;

/// Deletes the site's table once nothing of Switchboard's is left in it but
/// the rules letting replies back (a table that is gone stays gone).
pub(super) async fn drop_table_if_unused(site: &Site) -> Result<(), ProviderError> {
    let left = rules(site).await?;
    if !left.is_empty() && left.iter().all(|(_, _, m)| m == REPLIES) {
        site.exec(&["nft", "delete", "table", "inet", TABLE], None)
            .await?;
    }
    Ok(())
}

/// Removes the rules with this comment from the namespace's table; whether
/// there were any.
pub(super) async fn delete_rules(site: &Site, comment: &str) -> Result<bool, ProviderError> {
    let mut deleted = false;
    for (chain, handle, _) in rules(site)
        .await?
        .into_iter()
        .filter(|(_, _, m)| m == comment)
    {
        site.exec(
            &[
                "nft",
                "delete",
                "rule",
                "inet",
                TABLE,
                &chain,
                "handle",
                &handle.to_string(),
            ],
            None,
        )
        .await?;
        deleted = true;
    }
    Ok(deleted)
}

/// The nftables rules of the namespace's switchboard table: (chain, handle, comment).
pub(super) async fn rules(site: &Site) -> Result<Vec<(String, u64, String)>, ProviderError> {
    let Ok(out) = site
        .exec(&["nft", "-j", "list", "table", "inet", TABLE], None)
        .await
    else {
        return Ok(Vec::new()); // no table yet
    };
    parse_rules(site, &out)
}

pub(super) fn parse_rules(
    site: &Site,
    out: &str,
) -> Result<Vec<(String, u64, String)>, ProviderError> {
    if out.trim().is_empty() {
        return Ok(Vec::new()); // no table yet
    }
    let listing: Value = serde_json::from_str(out)
        .map_err(|e| ProviderError::Transient(format!("nft's listing of {site}: {e}")))?;
    Ok(listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let r = o.get("rule")?;
            Some((
                r["chain"].as_str()?.to_owned(),
                r["handle"].as_u64()?,
                r["comment"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect())
}

/// The table and its chains, each starting with a rule that lets replies to
/// allowed traffic back (a tunnel drops everything else that comes through it);
/// the table's rules as they were (the replies rules aside, nothing is added).
pub(super) async fn ensure_table(site: &Site) -> Result<Vec<(String, u64, String)>, ProviderError> {
    site.exec(&["nft", "add", "table", "inet", TABLE], None)
        .await?;
    let have = rules(site).await?;
    for chain in CHAINS {
        let spec = format!("{{ type filter hook {chain} priority 0; policy accept; }}");
        site.exec(&["nft", "add", "chain", "inet", TABLE, chain, &spec], None)
            .await?;
        if !have.iter().any(|(c, _, m)| c == chain && m == REPLIES) {
            let comment = format!("\"{REPLIES}\"");
            let args = [
                "nft",
                "insert",
                "rule",
                "inet",
                TABLE,
                chain,
                "ct",
                "state",
                "established,related",
                "accept",
                "comment",
                &comment,
            ];
            site.exec(&args, None).await?;
        }
    }
    Ok(have)
}

/// The comment of the nftables rule of a firewall item.
pub(super) fn rule_comment(item: &Item) -> String {
    let (protocol, ports, from) = rule_of(item);
    format!("switchboard {protocol} {ports} from {from}")
}

/// A firewall item's protocol, ports and sources.
pub(super) fn rule_of(item: &Item) -> (&str, &str, &str) {
    match &item.build {
        Build::FirewallRule {
            protocol,
            ports,
            allow_from,
            ..
        } => (
            Some(protocol.as_str())
                .filter(|p| !p.is_empty())
                .unwrap_or("any"),
            Some(ports.as_str())
                .filter(|p| !p.is_empty())
                .unwrap_or("all ports"),
            allow_from,
        ),
        _ => ("any", "all ports", ""),
    }
}

impl Linux {
    pub(super) async fn rule(&self, item: &Item) -> Result<Step, ProviderError> {
        let site = self.site(item)?;
        let (protocol, ports, from) = rule_of(item);
        let from = parse_prefixes(item, from, "sources")?;
        let ports = match ports {
            "all ports" => Vec::new(),
            text => parse_ports(text).map_err(ProviderError::Permanent)?,
        };
        let mut rule = vec![
            "ip".to_owned(),
            "saddr".to_owned(),
            format!("{{ {} }}", list(&from)),
        ];
        match (protocol, ports.is_empty()) {
            ("tcp" | "udp", false) => rule.extend([
                protocol.to_owned(),
                "dport".to_owned(),
                format!(
                    "{{ {} }}",
                    ports
                        .iter()
                        .map(|p| if p.from == p.to {
                            p.from.to_string()
                        } else {
                            format!("{}-{}", p.from, p.to)
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ]),
            ("tcp" | "udp" | "icmp", _) => {
                rule.extend(["meta".into(), "l4proto".into(), protocol.to_owned()])
            }
            ("any", _) => {}
            (other, _) => {
                return Err(ProviderError::Permanent(format!(
                    "nftables rules here open tcp, udp, icmp or any, not {other:?}"
                )));
            }
        }
        let comment = rule_comment(item);
        let have = ensure_table(&site).await?;
        let mut action = "found";
        for chain in CHAINS {
            if have.iter().any(|(c, _, m)| c == chain && *m == comment) {
                continue;
            }
            let mut args: Vec<String> = ["nft", "insert", "rule", "inet", TABLE, chain]
                .map(str::to_owned)
                .to_vec();
            args.extend(rule.iter().cloned());
            args.extend(["accept".into(), "comment".into(), format!("\"{comment}\"")]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            site.exec(&args, None).await?;
            action = "created";
        }
        Ok(Step::new(
            action,
            item,
            Some(format!("{comment} in {site}")),
        ))
    }
}
