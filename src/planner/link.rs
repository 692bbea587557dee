//! Linking two networks: which mechanism (the simplest that fits, with why
//! each other one does not), what it builds, and the routes and rules both
//! networks need.

use super::*;

/// Two networks reach each other, on `protocol` and `ports`.
pub(super) fn network_to_network(
    a: &End,
    b: &End,
    protocol: Protocol,
    ports: &[PortRange],
) -> Result<Plan, Refusal> {
    if a.network == b.network && a.account == b.account && a.team == b.team {
        return Err(refuse(
            "destination_network_id",
            "a network already reaches itself: pick another network",
        ));
    }
    let clash = overlaps(a, b);
    if !clash.is_empty() {
        return Err(refuse(
            "destination_network_id",
            format!(
                "the address ranges overlap, so traffic could not be routed: {}",
                clash.join("; ")
            ),
        ));
    }
    let tgw = match (&a.transit_gateway, &b.transit_gateway) {
        (Some(x), Some(y)) if x == y => Some(x.clone()),
        _ => None,
    };
    let (mechanism, rejected) = choose(a, b, tgw.as_deref())?;
    let name = format!("{}--{}", a.network, b.network);
    let Link {
        via,
        explanation,
        resources,
    } = match mechanism {
        Mechanism::TransitGateway => {
            let tgw = tgw.ok_or_else(|| refuse("destination_network_id", "no transit gateway"))?;
            through_gateway(a, b, &name, &tgw)
        }
        Mechanism::VpcPeering | Mechanism::InterRegionPeering => peering(mechanism, a, b, &name),
        Mechanism::SiteToSiteVpn => vpn(a, b, &name)?,
        Mechanism::Wireguard => wireguard(a, b, &name),
        other => {
            return Err(refuse(
                "destination_network_id",
                format!("{other} does not link two networks"),
            ));
        }
    };
    let ports_text = ports_text(protocol, ports);
    let routes = routes(a, b, mechanism, &via);
    let rules = [(a, b), (b, a)]
        .into_iter()
        .map(|(here, there)| Rule {
            account: here.account.clone(),
            network: here.network.clone(),
            allow_from: there.prefix_list(),
            protocol: protocol.to_string(),
            ports: ports_text.clone(),
            at: here.place(),
        })
        .collect();
    Ok(Plan {
        kind: Kind::NetworkToNetwork,
        mechanism,
        // Both ends get rules: either side may open a connection to the other.
        summary: format!(
            "{} between {} and {}, both ways ({})",
            mechanism.label(),
            a.network,
            b.network,
            match (protocol, ports.is_empty()) {
                (Protocol::Any, true) => "all traffic".to_owned(),
                (Protocol::Any, false) => format!("ports {ports_text}"),
                _ => format!("{protocol} {ports_text}"),
            }
        ),
        explanation,
        rejected,
        resources,
        routes,
        rules,
        guardrails: Vec::new(),
    })
}

/// Each network's routes to the other's prefixes, through the link.
fn routes(a: &End, b: &End, mechanism: Mechanism, via: &str) -> Vec<Route> {
    let mut routes = Vec::new();
    for (here, there) in [(a, b), (b, a)] {
        for prefix in &there.prefixes {
            routes.push(Route {
                account: here.account.clone(),
                network: here.network.clone(),
                destination: prefix.to_string(),
                // A VPN's cloud end routes to its transit gateway, the
                // on-prem end into the IPsec tunnels.
                via: match &here.transit_gateway {
                    Some(tgw) if mechanism == Mechanism::SiteToSiteVpn => tgw.clone(),
                    _ => via.to_owned(),
                },
                at: here.place(),
                peer_network_id: there.external_id.clone(),
            });
        }
    }
    routes
}

/// The simplest mechanism that fits, and why each other one does not.
fn choose(a: &End, b: &End, tgw: Option<&str>) -> Result<(Mechanism, Vec<Alternative>), Refusal> {
    let mut rejected = Vec::new();
    let mut chosen = None;
    for (mechanism, fits) in candidates(a, b, tgw) {
        match fits {
            Ok(()) => match chosen {
                None => chosen = Some(mechanism),
                Some(first) => rejected.push(Alternative {
                    mechanism,
                    why_not: format!("{} is simpler here", first.label()),
                }),
            },
            Err(why_not) => rejected.push(Alternative { mechanism, why_not }),
        }
    }
    let Some(mechanism) = chosen else {
        return Err(refuse(
            "destination_network_id",
            format!(
                "no mechanism can link a {} network with a {} network: {}",
                a.provider_kind,
                b.provider_kind,
                rejected
                    .iter()
                    .map(|r| format!("{}: {}", r.mechanism, r.why_not))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    };
    Ok((mechanism, rejected))
}

/// Every link mechanism from best to last resort, each with whether it fits
/// these two ends (or why not). A long list of short rules, kept together so
/// their order reads as the preference it is.
fn candidates(a: &End, b: &End, tgw: Option<&str>) -> [(Mechanism, Result<(), String>); 5] {
    let same_kind = a.provider_kind == b.provider_kind;
    let same_account = a.account == b.account;
    let same_region = a.region == b.region;
    let both = |m| a.can(m) && b.can(m);
    [
        (
            Mechanism::TransitGateway,
            if !both(Mechanism::TransitGateway) {
                Err("the providers cannot attach both networks to a transit gateway".into())
            } else if !same_kind || !same_region {
                Err("the networks are not in the same provider and region".into())
            } else if tgw.is_none() {
                Err(format!(
                    "no transit gateway is configured for {} in both accounts",
                    a.region
                ))
            } else {
                Ok(())
            },
        ),
        (
            Mechanism::VpcPeering,
            if !both(Mechanism::VpcPeering) {
                Err("the providers cannot peer these networks".into())
            } else if !(same_kind && same_account && same_region) {
                Err("the networks are not in the same account and region".into())
            } else if tgw.is_some() {
                Err("the account routes this region through its transit gateway; a peering would bypass it".into())
            } else {
                Ok(())
            },
        ),
        (
            Mechanism::InterRegionPeering,
            if !both(Mechanism::InterRegionPeering) || !same_kind {
                Err("the networks are not in the same cloud provider".into())
            } else {
                Ok(())
            },
        ),
        (
            Mechanism::SiteToSiteVpn,
            if !(a.can(Mechanism::SiteToSiteVpn) || b.can(Mechanism::SiteToSiteVpn)) {
                Err("neither provider builds a VPN gateway in this version of Switchboard".into())
            } else if ![a, b]
                .iter()
                .all(|e| e.can(Mechanism::SiteToSiteVpn) || e.can(Mechanism::Wireguard))
            {
                Err("one end cannot terminate a VPN tunnel".into())
            } else if same_kind {
                Err("both networks are in the same provider, which links them directly".into())
            } else if let Some(cloud) = [a, b]
                .into_iter()
                .find(|e| e.can(Mechanism::SiteToSiteVpn) && e.transit_gateway.is_none())
            {
                Err(format!(
                    "the VPN attaches to the account's transit gateway, and {} has none configured for {}",
                    cloud.account, cloud.region
                ))
            } else {
                Ok(())
            },
        ),
        (
            Mechanism::Wireguard,
            if both(Mechanism::Wireguard) {
                Ok(())
            } else {
                Err("WireGuard needs hosts this portal manages on both sides".into())
            },
        ),
    ]
}

/// What a mechanism builds, how routes name the way through, and why it was chosen.
struct Link {
    via: String,
    explanation: String,
    resources: Vec<Resource>,
}

/// Both networks attached to the transit gateway their accounts route through.
fn through_gateway(a: &End, b: &End, name: &str, tgw: &str) -> Link {
    let mut resources = Vec::new();
    let via = tgw.to_owned();
    let explanation = format!(
        "Both networks are in {} and their accounts route that region through the transit gateway {tgw}, so each network is attached to it.",
        a.region
    );
    for end in [a, b] {
        resources.push(Resource::new(
            &end.account,
            format!("{name}/{}", end.network),
            format!("attach {} to {tgw}, associate the route table", end.id()),
            Build::TransitGatewayAttachment {
                network: end.built_in(),
                transit_gateway: tgw.to_owned(),
            },
        ));
    }
    Link {
        via,
        explanation,
        resources,
    }
}

/// A peering, in one account and region or across them.
fn peering(mechanism: Mechanism, a: &End, b: &End, name: &str) -> Link {
    let same_region = a.region == b.region;
    let mut resources = Vec::new();
    let via = format!("peering {name}");
    let explanation = if mechanism == Mechanism::VpcPeering {
        format!(
            "Both networks are in the account {} and the region {}: a VPC peering links them directly, with no gateway to pay for or run.",
            a.account, a.region
        )
    } else {
        format!(
            "The networks are in the same provider but {}: a peering requested from {} and accepted in {} links them.",
            if same_region {
                "different accounts"
            } else {
                "different regions"
            },
            a.account,
            b.account
        )
    };
    resources.push(Resource::new(
        &a.account,
        name.to_owned(),
        format!(
            "from {} ({}) to {} ({}, {}), accepted by the other side",
            a.id(),
            a.region,
            b.id(),
            b.account,
            b.region
        ),
        Build::Peering {
            network: a.built_in(),
            peer: b.built_in(),
        },
    ));
    Link {
        via,
        explanation,
        resources,
    }
}

/// A cloud's site-to-site VPN to an on-prem network, whose end this portal runs.
fn vpn(a: &End, b: &End, name: &str) -> Result<Link, Refusal> {
    let mut resources = Vec::new();
    let (cloud, other) = if a.can(Mechanism::SiteToSiteVpn) {
        (a, b)
    } else {
        (b, a)
    };
    let tgw = cloud
        .transit_gateway
        .clone()
        .ok_or_else(|| refuse("destination_network_id", "no transit gateway"))?;
    let via = format!("IPsec {name}");
    let explanation = format!(
        "The networks are in different providers ({} and {}): a site-to-site VPN on {}'s transit gateway {tgw} carries the traffic over IPsec to {}, whose end this portal runs.",
        a.provider_kind, b.provider_kind, cloud.account, other.network
    );
    resources.push(Resource::new(
        &cloud.account,
        format!("{name}/{}", cloud.network),
        format!("attach {} to {tgw}, associate the route table", cloud.id()),
        Build::TransitGatewayAttachment {
            network: cloud.built_in(),
            transit_gateway: tgw.clone(),
        },
    ));
    resources.push(Resource::new(
        &cloud.account,
        name.to_owned(),
        format!(
            "on {tgw}, with a customer gateway at {}'s endpoint, two IPsec tunnels and static routes to {}",
            other.network,
            other.prefix_list()
        ),
        Build::SiteToSiteVpn {
            network: cloud.built_in(),
            transit_gateway: tgw.clone(),
            peer: other.built_in(),
            peer_prefixes: other.prefixes.clone(),
        },
    ));
    resources.push(Resource::new(
        &other.account,
        format!("{name}/{}", other.network),
        format!(
            "the on-prem end of the VPN, in {}, to the tunnels AWS gives",
            other.id()
        ),
        Build::IpsecTunnel {
            network: other.built_in(),
            peer: cloud.built_in(),
            prefixes: other.prefixes.clone(),
            peer_prefixes: cloud.prefixes.clone(),
            tunnels: Vec::new(),
        },
    ));
    Ok(Link {
        via,
        explanation,
        resources,
    })
}

/// A WireGuard tunnel between two hosts this portal manages.
fn wireguard(a: &End, b: &End, name: &str) -> Link {
    let mut resources = Vec::new();
    let via = format!("wg {name}");
    let explanation = format!(
        "Both ends are hosts this portal manages ({} and {}): a WireGuard tunnel links them, with keys generated for this connection.",
        a.account, b.account
    );
    for (end, other) in [(a, b), (b, a)] {
        // Each end needs the other's place and both prefix lists: the
        // peer's ranges are what its tunnel carries.
        resources.push(Resource::new(
            &end.account,
            format!("{name}/{}", end.network),
            format!("tunnel endpoint on {}", end.id()),
            Build::WireguardInterface {
                network: end.built_in(),
                peer: other.built_in(),
                prefixes: end.prefixes.clone(),
                peer_prefixes: other.prefixes.clone(),
            },
        ));
    }
    Link {
        via,
        explanation,
        resources,
    }
}
