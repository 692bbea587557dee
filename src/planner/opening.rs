//! Opening a network's firewall to a source (another network, or ranges).

use super::*;

pub(super) fn firewall_opening(
    source: &Source,
    destination: &End,
    protocol: Protocol,
    ports: &[PortRange],
) -> Result<Plan, Refusal> {
    if ports.is_empty() && protocol != Protocol::Icmp {
        return Err(refuse(
            "ports",
            "a firewall opening needs the ports to open, e.g. 443 or 8000-8100",
        ));
    }
    let (from_name, from_prefixes) = match source {
        Source::Network(end) => {
            if end.network == destination.network
                && end.account == destination.account
                && end.team == destination.team
            {
                return Err(refuse(
                    "destination_network_id",
                    "the source and the destination are the same network",
                ));
            }
            (end.network.clone(), end.prefix_list())
        }
        Source::Cidr(cidr) => (cidr.to_string(), cidr.to_string()),
    };
    let mechanism = if destination.can(Mechanism::SecurityGroupRule) {
        Mechanism::SecurityGroupRule
    } else if destination.can(Mechanism::NftablesRule) {
        Mechanism::NftablesRule
    } else {
        return Err(refuse(
            "destination_network_id",
            format!(
                "the {} provider of {} cannot open its firewall",
                destination.provider_kind, destination.network
            ),
        ));
    };
    let other = if mechanism == Mechanism::SecurityGroupRule {
        Mechanism::NftablesRule
    } else {
        Mechanism::SecurityGroupRule
    };
    let ports_text = ports_text(protocol, ports);
    Ok(Plan {
        kind: Kind::FirewallOpening,
        mechanism,
        summary: format!(
            "allow {protocol} {ports_text} from {from_name} into {}",
            destination.network
        ),
        explanation: format!(
            "{} is a {} network, so a {} on it lets {from_name} in. This opens the firewall only: the two must already be able to route to each other.",
            destination.network,
            destination.provider_kind,
            mechanism.label()
        ),
        rejected: vec![Alternative {
            mechanism: other,
            why_not: format!(
                "{} is not where {} lives",
                other.label(),
                destination.network
            ),
        }],
        // The rule is the whole of it: no other resource is made.
        resources: Vec::new(),
        routes: Vec::new(),
        rules: vec![Rule {
            account: destination.account.clone(),
            network: destination.network.clone(),
            allow_from: from_prefixes,
            protocol: protocol.to_string(),
            ports: ports_text,
            at: destination.place(),
        }],
        guardrails: Vec::new(),
    })
}
