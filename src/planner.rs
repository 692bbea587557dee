//! Chooses how to build a connection and says why, in plain words. Pure: the
//! services give it both ends (provider, account, region, prefixes) and what each
//! provider can build; it returns the plan approvers consent to, or a refusal that
//! names the field and the reason.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::connection::{Kind, PortRange, Protocol};

/// A way to make one thing reach another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    TransitGateway,
    VpcPeering,
    InterRegionPeering,
    SiteToSiteVpn,
    Wireguard,
    ProxyRoute,
    SecurityGroupRule,
    NftablesRule,
    DnsRecord,
}

impl Mechanism {
    /// In the user's words.
    pub fn label(self) -> &'static str {
        match self {
            Mechanism::TransitGateway => "transit gateway attachment",
            Mechanism::VpcPeering => "VPC peering",
            Mechanism::InterRegionPeering => "cross-region/cross-account VPC peering",
            Mechanism::SiteToSiteVpn => "site-to-site VPN",
            Mechanism::Wireguard => "WireGuard tunnel",
            Mechanism::ProxyRoute => "edge proxy route",
            Mechanism::SecurityGroupRule => "security group rule",
            Mechanism::NftablesRule => "nftables rule",
            Mechanism::DnsRecord => "DNS record",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One end of a connection: a network and where it lives.
#[derive(Clone, Debug, PartialEq)]
pub struct End {
    pub network: String,
    pub team: String,
    pub provider_kind: String,
    pub account: String,
    pub region: String,
    pub prefixes: Vec<IpNet>,
    /// The provider's id for the network (e.g. `vpc-…`), when known.
    pub external_id: Option<String>,
    /// The transit gateway the account routes this region through, if any.
    pub transit_gateway: Option<String>,
    /// What the end's provider can build.
    pub capabilities: Vec<Mechanism>,
}

impl End {
    fn can(&self, m: Mechanism) -> bool {
        self.capabilities.contains(&m)
    }

    fn id(&self) -> &str {
        self.external_id.as_deref().unwrap_or(&self.network)
    }

    fn place(&self) -> Place {
        Place {
            region: self.region.clone(),
            network_id: self.external_id.clone(),
        }
    }

    /// The end as a provider sees it, under `prefix`: network, region, id, account.
    fn params(&self, prefix: &str) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        p.insert(format!("{prefix}account"), self.account.clone());
        p.insert(format!("{prefix}network"), self.network.clone());
        p.insert(format!("{prefix}region"), self.region.clone());
        if let Some(id) = &self.external_id {
            p.insert(format!("{prefix}network_id"), id.clone());
        }
        p
    }

    fn prefix_list(&self) -> String {
        self.prefixes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A provider account that is not a network: an edge proxy or a DNS server.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub account: String,
    /// The proxy's public address, or the DNS zone served.
    pub detail: String,
    /// Where a proxy's requests to the services come from (its `source_cidr`
    /// setting); by default its address.
    pub source: Option<String>,
}

/// Where traffic of a firewall opening comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Network(End),
    Cidr(IpNet),
}

/// What the planner is asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    NetworkToNetwork {
        a: End,
        b: End,
        protocol: Protocol,
        ports: Vec<PortRange>,
    },
    ServiceExposure {
        target: End,
        address: std::net::IpAddr,
        port: u16,
        hostname: String,
        path: String,
        /// Every proxy account; the planner takes the first serving the region.
        proxies: Vec<(Service, Vec<String>)>,
        /// DNS accounts with the zone each serves.
        dns: Vec<Service>,
    },
    FirewallOpening {
        source: Source,
        destination: End,
        protocol: Protocol,
        ports: Vec<PortRange>,
    },
    DnsRecord {
        name: String,
        record_type: String,
        value: String,
        ttl: u32,
        dns: Vec<Service>,
    },
}

/// Something the plan creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resource {
    pub account: String,
    pub kind: String,
    pub name: String,
    pub detail: String,
    /// What the provider needs to build it (network ids, regions, the peer…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Route {
    /// The provider account holding the network.
    pub account: String,
    /// The network whose route tables get the route.
    pub network: String,
    pub destination: String,
    pub via: String,
    #[serde(flatten)]
    pub at: Place,
    /// The network at the other end of the link the route goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_network_id: Option<String>,
}

/// Where a route or rule goes: the network's region and provider id, when known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Place {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    /// The provider account holding the network.
    pub account: String,
    /// The network whose firewall gets the rule.
    pub network: String,
    pub allow_from: String,
    pub protocol: String,
    pub ports: String,
    #[serde(flatten)]
    pub at: Place,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alternative {
    pub mechanism: Mechanism,
    pub why_not: String,
}

/// What will be built, exactly: approvers consent to this, and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub kind: Kind,
    pub mechanism: Mechanism,
    pub summary: String,
    pub explanation: String,
    pub rejected: Vec<Alternative>,
    pub resources: Vec<Resource>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

impl Plan {
    /// SHA-256 of the plan's canonical JSON: equal plans, equal hashes.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a plan serializes");
        Sha256::digest(json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// What differs from `other`, line by line, for a request sent back to approval.
    pub fn difference(&self, other: &Plan) -> Vec<String> {
        let lines = |p: &Plan| -> Vec<String> {
            let mut l = vec![format!("mechanism: {}", p.mechanism)];
            l.extend(p.resources.iter().map(|r| {
                format!(
                    "create {} {} in {}: {}",
                    r.kind, r.name, r.account, r.detail
                )
            }));
            l.extend(
                p.routes
                    .iter()
                    .map(|r| format!("route {} via {} in {}", r.destination, r.via, r.network)),
            );
            l.extend(p.rules.iter().map(|r| {
                format!(
                    "allow {} {} from {} into {}",
                    r.protocol, r.ports, r.allow_from, r.network
                )
            }));
            l
        };
        let (old, new) = (lines(self), lines(other));
        let mut diff: Vec<String> = old
            .iter()
            .filter(|l| !new.contains(l))
            .map(|l| format!("- {l}"))
            .collect();
        diff.extend(
            new.iter()
                .filter(|l| !old.contains(l))
                .map(|l| format!("+ {l}")),
        );
        diff
    }
}

/// Why no plan can be made: the request field to fix and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: &'static str,
    pub reason: String,
}

fn refuse(field: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        field,
        reason: reason.into(),
    }
}

fn ports_text(protocol: Protocol, ports: &[PortRange]) -> String {
    if ports.is_empty() || protocol == Protocol::Icmp {
        "all ports".into()
    } else {
        ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Prefixes of `a` and `b` that overlap, named.
fn overlaps(a: &End, b: &End) -> Vec<String> {
    let mut found = Vec::new();
    for x in &a.prefixes {
        for y in &b.prefixes {
            if x.contains(&y.network()) || y.contains(&x.network()) {
                found.push(format!("{x} ({}) overlaps {y} ({})", a.network, b.network));
            }
        }
    }
    found
}

pub fn plan(ask: &Ask) -> Result<Plan, Refusal> {
    match ask {
        Ask::NetworkToNetwork {
            a,
            b,
            protocol,
            ports,
        } => network_to_network(a, b, *protocol, ports),
        Ask::ServiceExposure {
            target,
            address,
            port,
            hostname,
            path,
            proxies,
            dns,
        } => service_exposure(target, *address, *port, hostname, path, proxies, dns),
        Ask::FirewallOpening {
            source,
            destination,
            protocol,
            ports,
        } => firewall_opening(source, destination, *protocol, ports),
        Ask::DnsRecord {
            name,
            record_type,
            value,
            ttl,
            dns,
        } => dns_record(name, record_type, value, *ttl, dns),
    }
}

fn network_to_network(
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
    let same_kind = a.provider_kind == b.provider_kind;
    let same_account = a.account == b.account;
    let same_region = a.region == b.region;
    let both = |m| a.can(m) && b.can(m);

    // Candidates from best to last resort; the first that fits wins.
    let mut rejected = Vec::new();
    let mut chosen = None;
    let tgw = match (&a.transit_gateway, &b.transit_gateway) {
        (Some(x), Some(y)) if x == y => Some(x.clone()),
        _ => None,
    };
    let candidates: [(Mechanism, Result<(), String>); 5] = [
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
    ];
    for (mechanism, fits) in candidates {
        match fits {
            Ok(()) if chosen.is_none() => chosen = Some(mechanism),
            Ok(()) => rejected.push(Alternative {
                mechanism,
                why_not: format!("{} is simpler here", chosen.expect("set above").label()),
            }),
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

    let name = format!("{}--{}", a.network, b.network);
    let ports_text = ports_text(protocol, ports);
    let mut resources = Vec::new();
    let via;
    let explanation;
    match mechanism {
        Mechanism::TransitGateway => {
            let tgw = tgw.expect("checked above");
            via = tgw.clone();
            explanation = format!(
                "Both networks are in {} and their accounts route that region through the transit gateway {tgw}, so each network is attached to it.",
                a.region
            );
            for end in [a, b] {
                resources.push(Resource {
                    account: end.account.clone(),
                    kind: "transit gateway attachment".into(),
                    name: format!("{name}/{}", end.network),
                    detail: format!("attach {} to {tgw}, associate the route table", end.id()),
                    params: {
                        let mut p = end.params("");
                        p.insert("transit_gateway".into(), tgw.clone());
                        p
                    },
                });
            }
        }
        Mechanism::VpcPeering | Mechanism::InterRegionPeering => {
            via = format!("peering {name}");
            explanation = if mechanism == Mechanism::VpcPeering {
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
            resources.push(Resource {
                account: a.account.clone(),
                kind: "VPC peering".into(),
                name: name.clone(),
                detail: format!(
                    "from {} ({}) to {} ({}, {}), accepted by the other side",
                    a.id(),
                    a.region,
                    b.id(),
                    b.account,
                    b.region
                ),
                params: a.params("").into_iter().chain(b.params("peer_")).collect(),
            });
        }
        Mechanism::SiteToSiteVpn => {
            let (cloud, other) = if a.can(Mechanism::SiteToSiteVpn) {
                (a, b)
            } else {
                (b, a)
            };
            let tgw = cloud.transit_gateway.clone().expect("checked above");
            via = format!("IPsec {name}");
            explanation = format!(
                "The networks are in different providers ({} and {}): a site-to-site VPN on {}'s transit gateway {tgw} carries the traffic over IPsec to {}, whose end this portal runs.",
                a.provider_kind, b.provider_kind, cloud.account, other.network
            );
            let mut attach = cloud.params("");
            attach.insert("transit_gateway".into(), tgw.clone());
            resources.push(Resource {
                account: cloud.account.clone(),
                kind: "transit gateway attachment".into(),
                name: format!("{name}/{}", cloud.network),
                detail: format!("attach {} to {tgw}, associate the route table", cloud.id()),
                params: attach.clone(),
            });
            let mut vpn: BTreeMap<String, String> =
                attach.into_iter().chain(other.params("peer_")).collect();
            vpn.insert("peer_prefixes".into(), other.prefix_list());
            resources.push(Resource {
                account: cloud.account.clone(),
                kind: "site-to-site VPN".into(),
                name: name.clone(),
                detail: format!(
                    "on {tgw}, with a customer gateway at {}'s endpoint, two IPsec tunnels and static routes to {}",
                    other.network,
                    other.prefix_list()
                ),
                params: vpn,
            });
            let mut ipsec: BTreeMap<String, String> = other
                .params("")
                .into_iter()
                .chain(cloud.params("peer_"))
                .collect();
            ipsec.insert("prefixes".into(), other.prefix_list());
            ipsec.insert("peer_prefixes".into(), cloud.prefix_list());
            resources.push(Resource {
                account: other.account.clone(),
                kind: "IPsec tunnel".into(),
                name: format!("{name}/{}", other.network),
                detail: format!(
                    "the on-prem end of the VPN, in {}, to the tunnels AWS gives",
                    other.id()
                ),
                params: ipsec,
            });
        }
        Mechanism::Wireguard => {
            via = format!("wg {name}");
            explanation = format!(
                "Both ends are hosts this portal manages ({} and {}): a WireGuard tunnel links them, with keys generated for this connection.",
                a.account, b.account
            );
            for (end, other) in [(a, b), (b, a)] {
                // Each end needs the other's place and both prefix lists: the
                // peer's ranges are what its tunnel carries.
                let mut params: BTreeMap<String, String> = end
                    .params("")
                    .into_iter()
                    .chain(other.params("peer_"))
                    .collect();
                params.insert("prefixes".into(), end.prefix_list());
                params.insert("peer_prefixes".into(), other.prefix_list());
                resources.push(Resource {
                    account: end.account.clone(),
                    kind: "WireGuard interface".into(),
                    name: format!("{name}/{}", end.network),
                    detail: format!("tunnel endpoint on {}", end.id()),
                    params,
                });
            }
        }
        _ => unreachable!("only link mechanisms are candidates"),
    }
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
                    _ => via.clone(),
                },
                at: here.place(),
                peer_network_id: there.external_id.clone(),
            });
        }
    }
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
        summary: format!(
            "{} between {} and {} ({})",
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
    })
}

fn in_zone(name: &str, zone: &str) -> bool {
    let zone = zone.trim_end_matches('.');
    name == zone || name.ends_with(&format!(".{zone}"))
}

fn service_exposure(
    target: &End,
    address: std::net::IpAddr,
    port: u16,
    hostname: &str,
    path: &str,
    proxies: &[(Service, Vec<String>)],
    dns: &[Service],
) -> Result<Plan, Refusal> {
    if !target.prefixes.iter().any(|p| p.contains(&address)) {
        return Err(refuse(
            "target_address",
            format!(
                "{address} is not in the network {} ({})",
                target.network,
                target.prefix_list()
            ),
        ));
    }
    let Some((proxy, _)) = proxies
        .iter()
        .find(|(_, regions)| regions.is_empty() || regions.contains(&target.region))
    else {
        return Err(refuse(
            "destination_network_id",
            format!(
                "no edge proxy account serves {}: an admin adds a proxy provider account first",
                target.region
            ),
        ));
    };
    let zone = dns.iter().find(|d| in_zone(hostname, &d.detail));
    let mut rejected = Vec::new();
    let mut resources = vec![Resource {
        account: proxy.account.clone(),
        kind: "proxy route".into(),
        name: format!("{hostname}{path}"),
        detail: format!("https://{hostname}{path} → {address}:{port}"),
        params: BTreeMap::from([
            ("hostname".to_owned(), hostname.to_owned()),
            ("path".to_owned(), path.to_owned()),
            (
                "upstream".to_owned(),
                std::net::SocketAddr::new(address, port).to_string(),
            ),
        ]),
    }];
    match zone {
        Some(z) => resources.push(Resource {
            account: z.account.clone(),
            kind: "DNS record".into(),
            name: hostname.to_owned(),
            detail: format!("{hostname} → {} (the proxy)", proxy.detail),
            params: BTreeMap::from([
                (
                    "record_type".to_owned(),
                    match proxy.detail.parse::<std::net::IpAddr>() {
                        Ok(std::net::IpAddr::V4(_)) => "A",
                        Ok(std::net::IpAddr::V6(_)) => "AAAA",
                        Err(_) => "CNAME",
                    }
                    .to_owned(),
                ),
                ("value".to_owned(), proxy.detail.clone()),
                ("ttl".to_owned(), "300".to_owned()),
            ]),
        }),
        None => rejected.push(Alternative {
            mechanism: Mechanism::DnsRecord,
            why_not: format!(
                "no DNS account serves a zone containing {hostname}: point the name at {} by hand",
                proxy.detail
            ),
        }),
    }
    Ok(Plan {
        kind: Kind::ServiceExposure,
        mechanism: Mechanism::ProxyRoute,
        summary: format!(
            "https://{hostname}{path} through {} to {address}:{port} in {}",
            proxy.account, target.network
        ),
        explanation: format!(
            "The edge proxy {} routes {hostname}{path} to the service at {address}:{port}{}; the network itself stays private.",
            proxy.account,
            if zone.is_some() {
                ", and a DNS record points the name at the proxy"
            } else {
                ""
            }
        ),
        rejected,
        resources,
        routes: Vec::new(),
        rules: vec![Rule {
            account: target.account.clone(),
            network: target.network.clone(),
            allow_from: proxy_source(proxy),
            protocol: "tcp".into(),
            ports: port.to_string(),
            at: target.place(),
        }],
    })
}

/// The range a network's firewall opens to for a proxy: its `source_cidr`, else
/// its address if that is an IP, else words the network's provider will refuse
/// (an admin then sets `source_cidr`).
fn proxy_source(proxy: &Service) -> String {
    match (&proxy.source, proxy.detail.parse::<std::net::IpAddr>()) {
        (Some(cidr), _) => cidr.clone(),
        (None, Ok(ip)) => IpNet::from(ip).to_string(),
        (None, Err(_)) => format!("the proxy {}", proxy.detail),
    }
}

fn firewall_opening(
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
    })
}

fn dns_record(
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
        resources: vec![Resource {
            account: zone.account.clone(),
            kind: format!("{record_type} record"),
            name: name.to_owned(),
            detail: format!("{value}, TTL {ttl} s"),
            params: BTreeMap::from([
                ("record_type".to_owned(), record_type.to_owned()),
                ("value".to_owned(), value.to_owned()),
                ("ttl".to_owned(), ttl.to_string()),
            ]),
        }],
        routes: Vec::new(),
        rules: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD: &[Mechanism] = &[
        Mechanism::TransitGateway,
        Mechanism::VpcPeering,
        Mechanism::InterRegionPeering,
        Mechanism::SiteToSiteVpn,
        Mechanism::SecurityGroupRule,
    ];
    const ONPREM: &[Mechanism] = &[Mechanism::Wireguard, Mechanism::NftablesRule];

    fn end(network: &str, kind: &str, account: &str, region: &str, cidr: &str) -> End {
        End {
            network: network.into(),
            team: "t".into(),
            provider_kind: kind.into(),
            account: account.into(),
            region: region.into(),
            prefixes: vec![cidr.parse().unwrap()],
            external_id: None,
            transit_gateway: None,
            capabilities: if kind == "linux" { ONPREM } else { CLOUD }.to_vec(),
        }
    }

    fn link(a: End, b: End) -> Result<Plan, Refusal> {
        plan(&Ask::NetworkToNetwork {
            a,
            b,
            protocol: Protocol::Tcp,
            ports: vec![PortRange { from: 443, to: 443 }],
        })
    }

    fn with_tgw(mut e: End, tgw: &str) -> End {
        e.transit_gateway = Some(tgw.into());
        e
    }

    #[test]
    fn a_vpn_to_on_prem_attaches_to_the_transit_gateway_and_routes_each_side_its_way() {
        let cloud = with_tgw(
            end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
            "tgw-1",
        );
        let dc = end("dc", "linux", "dc1", "paris", "192.168.0.0/24");
        let p = link(dc.clone(), cloud.clone()).unwrap();
        let built: Vec<(&str, &str)> = p
            .resources
            .iter()
            .map(|r| (r.account.as_str(), r.kind.as_str()))
            .collect();
        assert_eq!(
            built,
            [
                ("prod", "transit gateway attachment"),
                ("prod", "site-to-site VPN"),
                ("dc1", "IPsec tunnel"),
            ],
            "the cloud's VPN exists before the on-prem end that dials it"
        );
        assert_eq!(p.resources[1].params["peer_prefixes"], "192.168.0.0/24");
        assert_eq!(p.resources[2].params["peer_prefixes"], "10.1.0.0/16");
        let via = |network: &str| {
            p.routes
                .iter()
                .find(|r| r.network == network)
                .map(|r| r.via.clone())
                .unwrap()
        };
        assert_eq!(via("pay"), "tgw-1");
        assert_eq!(via("dc"), "IPsec dc--pay");

        let without = link(end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"), dc).unwrap_err();
        assert_eq!(without.field, "destination_network_id");
        assert!(
            without
                .reason
                .contains("the VPN attaches to the account's transit gateway, and prod has none configured for eu-west-1"),
            "{}",
            without.reason
        );
    }

    /// End pairs → the mechanism chosen and words the explanation must contain.
    #[test]
    fn the_mechanism_for_each_pair_of_ends() {
        let cases: Vec<(End, End, Mechanism, &str)> = vec![
            (
                end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                end("search", "aws", "prod", "eu-west-1", "10.2.0.0/16"),
                Mechanism::VpcPeering,
                "in the account",
            ),
            (
                with_tgw(
                    end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                    "tgw-1",
                ),
                with_tgw(
                    end("search", "aws", "prod", "eu-west-1", "10.2.0.0/16"),
                    "tgw-1",
                ),
                Mechanism::TransitGateway,
                "tgw-1",
            ),
            (
                end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                end("search", "aws", "prod", "us-east-1", "10.2.0.0/16"),
                Mechanism::InterRegionPeering,
                "different regions",
            ),
            (
                end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                end("search", "aws", "staging", "eu-west-1", "10.2.0.0/16"),
                Mechanism::InterRegionPeering,
                "different accounts",
            ),
            (
                with_tgw(
                    end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                    "tgw-1",
                ),
                with_tgw(
                    end("search", "aws", "prod", "us-east-1", "10.2.0.0/16"),
                    "tgw-2",
                ),
                Mechanism::InterRegionPeering,
                "different regions",
            ),
            (
                with_tgw(
                    end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                    "tgw-1",
                ),
                end("dc", "linux", "dc1", "paris", "192.168.0.0/24"),
                Mechanism::SiteToSiteVpn,
                "transit gateway tgw-1",
            ),
            (
                end("dc1", "linux", "dc1", "paris", "192.168.0.0/24"),
                end("dc2", "linux", "dc2", "lyon", "192.168.1.0/24"),
                Mechanism::Wireguard,
                "WireGuard",
            ),
            (
                end("a", "sandbox", "demo", "local", "10.1.0.0/16"),
                end("b", "sandbox", "demo", "local", "10.2.0.0/16"),
                Mechanism::VpcPeering,
                "in the account",
            ),
        ];
        for (a, b, want, words) in cases {
            let label = format!("{} ↔ {}", a.network, b.network);
            let p = link(a, b).unwrap_or_else(|r| panic!("{label}: {r:?}"));
            assert_eq!(p.mechanism, want, "{label}");
            assert!(p.explanation.contains(words), "{label}: {}", p.explanation);
            assert!(
                p.rejected.iter().all(|r| r.mechanism != want),
                "{label}: the chosen mechanism is not also rejected"
            );
            assert_eq!(
                p.rejected.len(),
                4,
                "{label}: every alternative is explained"
            );
            assert_eq!(p.routes.len(), 2, "{label}: a route each way");
            assert_eq!(p.rules[0].ports, "443");
        }
    }

    #[test]
    fn overlapping_ranges_are_refused_with_the_prefixes_named() {
        let r = link(
            end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
            end("search", "aws", "prod", "eu-west-1", "10.1.128.0/20"),
        )
        .unwrap_err();
        assert_eq!(r.field, "destination_network_id");
        assert!(
            r.reason
                .contains("10.1.0.0/16 (pay) overlaps 10.1.128.0/20 (search)"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn a_network_cannot_be_linked_to_itself_or_to_nothing() {
        let a = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
        assert!(link(a.clone(), a.clone()).is_err());
        // Two teams may both call a network "prod": different networks.
        let theirs = End {
            team: "search".into(),
            prefixes: vec!["10.2.0.0/16".parse().unwrap()],
            ..a.clone()
        };
        assert!(link(a.clone(), theirs).is_ok());
        let mut odd = end("x", "proxy", "edge", "eu-west-1", "10.9.0.0/16");
        odd.capabilities = vec![Mechanism::ProxyRoute];
        let r = link(a, odd).unwrap_err();
        assert!(r.reason.contains("no mechanism can link"), "{}", r.reason);
    }

    #[test]
    fn the_hash_follows_the_plan() {
        let a = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
        let b = end("search", "aws", "prod", "eu-west-1", "10.2.0.0/16");
        let p1 = link(a.clone(), b.clone()).unwrap();
        assert_eq!(p1.hash(), link(a.clone(), b.clone()).unwrap().hash());
        assert_eq!(p1.hash().len(), 64);
        let wider = End {
            prefixes: vec!["10.2.0.0/15".parse().unwrap()],
            ..b
        };
        let p2 = link(a, wider).unwrap();
        assert_ne!(p1.hash(), p2.hash());
        let diff = p1.difference(&p2);
        assert!(
            diff.contains(&"- route 10.2.0.0/16 via peering pay--search in pay".to_string()),
            "{diff:?}"
        );
        assert!(
            diff.contains(&"+ route 10.2.0.0/15 via peering pay--search in pay".to_string()),
            "{diff:?}"
        );
    }

    #[test]
    fn service_exposure_uses_the_proxy_and_dns_when_a_zone_matches() {
        let target = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
        let proxy = (
            Service {
                account: "edge".into(),
                detail: "203.0.113.10".into(),
                source: None,
            },
            vec![],
        );
        let zone = Service {
            account: "dns".into(),
            detail: "example.com".into(),
            source: None,
        };
        let ask = |hostname: &str, address: &str, dns: Vec<Service>| Ask::ServiceExposure {
            target: target.clone(),
            address: address.parse().unwrap(),
            port: 8443,
            hostname: hostname.into(),
            path: "/".into(),
            proxies: vec![proxy.clone()],
            dns,
        };
        let p = plan(&ask("api.example.com", "10.1.2.3", vec![zone.clone()])).unwrap();
        assert_eq!(p.mechanism, Mechanism::ProxyRoute);
        assert_eq!(p.resources.len(), 2);
        assert_eq!(p.resources[1].kind, "DNS record");
        // The proxy gets what it routes, the DNS record the proxy's address.
        let route = &p.resources[0].params;
        assert_eq!(route["hostname"], "api.example.com");
        assert_eq!(route["path"], "/");
        assert_eq!(route["upstream"], "10.1.2.3:8443");
        assert_eq!(p.resources[1].params["value"], "203.0.113.10");
        // The network opens the service's port to the proxy's address.
        assert_eq!(p.rules[0].allow_from, "203.0.113.10/32");
        assert_eq!(p.rules[0].ports, "8443");
        let p = plan(&ask("api.other.org", "10.1.2.3", vec![zone])).unwrap();
        assert_eq!(p.resources.len(), 1);
        assert!(p.rejected[0].why_not.contains("by hand"));
        let r = plan(&ask("api.example.com", "10.9.9.9", vec![])).unwrap_err();
        assert_eq!(r.field, "target_address");
        let mut no_proxy = ask("api.example.com", "10.1.2.3", vec![]);
        if let Ask::ServiceExposure { proxies, .. } = &mut no_proxy {
            proxies.clear();
        }
        let r = plan(&no_proxy).unwrap_err();
        assert!(r.reason.contains("no edge proxy"), "{}", r.reason);
    }

    #[test]
    fn firewall_openings_need_ports_and_use_the_destinations_firewall() {
        let dst = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
        let from = Source::Cidr("192.0.2.0/24".parse().unwrap());
        let p = plan(&Ask::FirewallOpening {
            source: from.clone(),
            destination: dst.clone(),
            protocol: Protocol::Tcp,
            ports: vec![PortRange {
                from: 5432,
                to: 5432,
            }],
        })
        .unwrap();
        assert_eq!(p.mechanism, Mechanism::SecurityGroupRule);
        assert_eq!(p.rules[0].allow_from, "192.0.2.0/24");
        let onprem = end("dc", "linux", "dc1", "paris", "192.168.0.0/24");
        let p = plan(&Ask::FirewallOpening {
            source: from.clone(),
            destination: onprem,
            protocol: Protocol::Udp,
            ports: vec![PortRange { from: 53, to: 53 }],
        })
        .unwrap();
        assert_eq!(p.mechanism, Mechanism::NftablesRule);
        let r = plan(&Ask::FirewallOpening {
            source: from,
            destination: dst,
            protocol: Protocol::Tcp,
            ports: vec![],
        })
        .unwrap_err();
        assert_eq!(r.field, "ports");
    }

    #[test]
    fn dns_records_go_to_the_account_serving_the_zone() {
        let zones = vec![
            Service {
                account: "corp-dns".into(),
                detail: "corp.example".into(),
                source: None,
            },
            Service {
                account: "public-dns".into(),
                detail: "example.com".into(),
                source: None,
            },
        ];
        let p = plan(&Ask::DnsRecord {
            name: "db.corp.example".into(),
            record_type: "A".into(),
            value: "10.1.2.3".into(),
            ttl: 300,
            dns: zones.clone(),
        })
        .unwrap();
        assert_eq!(p.resources[0].account, "corp-dns");
        let r = plan(&Ask::DnsRecord {
            name: "db.elsewhere.net".into(),
            record_type: "A".into(),
            value: "10.1.2.3".into(),
            ttl: 300,
            dns: zones,
        })
        .unwrap_err();
        assert_eq!(r.field, "name");
        assert!(r.reason.contains("corp.example, example.com"));
    }
}
