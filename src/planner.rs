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

pub mod build;
mod dns;
mod exposure;
mod link;
pub mod network;
mod opening;

use build::Build;

/// A way to make one thing reach another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Where its tunnels are reached, when Switchboard gave it that address
    /// (a namespace built on an underlay).
    pub endpoint: Option<String>,
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

    /// The end as a provider finds it.
    fn built_in(&self) -> build::Network {
        build::Network {
            account: self.account.clone(),
            name: self.network.clone(),
            region: self.region.clone(),
            id: self.external_id.clone(),
            endpoint: self.endpoint.clone(),
        }
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
    Network(Box<End>),
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

/// Something the plan creates, as a plan stores and shows it: `kind` labels
/// it and `params` say what to build ([`Build`] reads them back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub account: String,
    pub kind: String,
    pub name: String,
    pub detail: String,
    /// What the provider needs to build it (network ids, regions, the peer…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

impl Resource {
    /// A resource the planner decided, labelled and stored from what it builds.
    pub(crate) fn new(account: &str, name: String, detail: String, build: Build) -> Resource {
        Resource {
            account: account.to_owned(),
            kind: build.label(),
            name,
            detail,
            params: build.params(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alternative {
    pub mechanism: Mechanism,
    pub why_not: String,
}

/// What will be built, exactly: approvers consent to this, and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub kind: Kind,
    pub mechanism: Mechanism,
    pub summary: String,
    pub explanation: String,
    pub rejected: Vec<Alternative>,
    pub resources: Vec<Resource>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    /// What each guardrail that looks at the request says of it (not part of
    /// the hash: the rules may change, what is built does not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<crate::domain::guardrail::Verdict>,
}

impl Plan {
    /// The version of what `hash` covers; bumped whenever that changes, and
    /// stored hashes are carried forward (`services::connections::carry_plans_forward`).
    pub const HASH_VERSION: &'static str = "v2";

    /// What approvers consent to: SHA-256 of what is built (the mechanism, the
    /// resources, routes and rules), prefixed with the hash version. The prose
    /// (summary, explanation, the alternatives' reasons) is left out, so a
    /// release may reword it without sending approved connections back to approval.
    pub fn hash(&self) -> String {
        #[derive(Serialize)]
        struct Built<'a> {
            kind: Kind,
            mechanism: Mechanism,
            resources: &'a [Resource],
            routes: &'a [Route],
            rules: &'a [Rule],
        }
        let built = Built {
            kind: self.kind,
            mechanism: self.mechanism,
            resources: &self.resources,
            routes: &self.routes,
            rules: &self.rules,
        };
        let digest = Sha256::digest(serde_json::to_vec(&built).unwrap_or_default());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{hex}", Self::HASH_VERSION)
    }

    /// What differs from `other`, line by line, for a request sent back to approval.
    pub fn difference(&self, other: &Plan) -> Vec<String> {
        let lines = |p: &Plan| -> Vec<String> {
            let mut l = vec![format!("mechanism: {}", p.mechanism)];
            l.extend(p.resources.iter().map(|r| {
                let params: Vec<String> =
                    r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let params = if params.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", params.join(", "))
                };
                format!(
                    "create {} {} in {}: {}{params}",
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
        } => link::network_to_network(a, b, *protocol, ports),
        Ask::ServiceExposure {
            target,
            address,
            port,
            hostname,
            path,
            proxies,
            dns,
        } => exposure::service_exposure(target, *address, *port, hostname, path, proxies, dns),
        Ask::FirewallOpening {
            source,
            destination,
            protocol,
            ports,
        } => opening::firewall_opening(source, destination, *protocol, ports),
        Ask::DnsRecord {
            name,
            record_type,
            value,
            ttl,
            dns,
        } => dns::dns_record(name, record_type, value, *ttl, dns),
    }
}

#[cfg(test)]
mod tests;
