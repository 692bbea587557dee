//! A DNS record in the zone of a DNS account that serves the name.

use super::*;

/// Is `name` in `zone` (or the zone itself)?
pub(super) fn in_zone(name: &str, zone: &str) -> bool {
    let zone = zone.trim_end_matches('.');
    name == zone || name.ends_with(&format!(".{zone}"))
}

pub(super) fn dns_record(
    name: &str,
    record_type: &str,
    value: &str,
    ttl: u32,
    dns: &[Service],
) -> Result<Plan, Refusal> {
    let Some(zone) = dns.iter().find(|d| in_zone(name, &d.detail)) else {
        return Err(refuse(
            "name",
            format!(
                "no DNS account serves a zone containing {name}{}",
                if dns.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (zones: {})",
                        dns.iter()
                            .map(|d| d.detail.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        ));
    };
    Ok(Plan {
        kind: Kind::DnsRecord,
        mechanism: Mechanism::DnsRecord,
        summary: format!("{name} {record_type} {value} (TTL {ttl} s)"),
        explanation: format!(
            "The zone {} is served by the DNS account {}, which gets the record.",
            zone.detail, zone.account
        ),
        rejected: Vec::new(),
        resources: vec![Resource::new(
            &zone.account,
            name.to_owned(),
            format!("{value}, TTL {ttl} s"),
            Build::DnsRecord {
                record_type: record_type.to_owned(),
                value: value.to_owned(),
                ttl,
            },
        )],
        routes: Vec::new(),
        rules: Vec::new(),
        guardrails: Vec::new(),
    })
}
