//! What providers build: one typed enum, decided by the planner and built by the
//! providers. A plan stores each resource as a `kind` label and `params` (the
//! shape v1 publishes); [`Build::from_stored`] reads that back, or says what is
//! wrong, and [`Build::params`] writes it. Only this file knows the keys.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use ipnet::IpNet;

use super::{Mechanism, Route, Rule};

/// A network as a provider finds it: its account, name, region and the
/// provider's own id for it (`vpc-…`, a namespace), when known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    pub account: String,
    pub name: String,
    pub region: String,
    pub id: Option<String>,
    /// Where the network's tunnels are reached, when Switchboard gave it that
    /// address (a namespace it built on its account's underlay); otherwise the
    /// provider's settings say.
    pub endpoint: Option<String>,
}

/// A built namespace's place on its account's underlay: the bridge it joins
/// on the build host and its address there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnderlayAddress {
    pub bridge: String,
    pub address: IpNet,
}

/// One IPsec tunnel a cloud's VPN hands to the on-prem end: the cloud's outside
/// address and the pre-shared key. Never stored; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub address: String,
    pub psk: String,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field("address", &self.address)
            .field("psk", &"…")
            .finish()
    }
}

/// One subnet of a network Switchboard builds, in one availability zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub zone: String,
    pub cidr: IpNet,
}

/// What one item of a plan builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Build {
    /// A network itself (a VPC and its subnets), built for `team` with the
    /// range the address plan gave it; `network.id` is unknown until built.
    Network {
        network: Network,
        team: String,
        cidr: IpNet,
        subnets: Vec<Subnet>,
        underlay: Option<UnderlayAddress>,
    },
    /// A VPC peering requested from `network` and accepted in `peer`.
    Peering { network: Network, peer: Network },
    /// `network` attached to a transit gateway, its route table associated.
    TransitGatewayAttachment {
        network: Network,
        transit_gateway: String,
    },
    /// A site-to-site VPN on the transit gateway of `network` to the on-prem
    /// `peer`, with static routes to its prefixes.
    SiteToSiteVpn {
        network: Network,
        transit_gateway: String,
        peer: Network,
        peer_prefixes: Vec<IpNet>,
    },
    /// The on-prem end of a cloud's VPN, in `network`, to the tunnels the VPN
    /// hands over while building (`tunnels`, empty in a stored plan).
    IpsecTunnel {
        network: Network,
        peer: Network,
        prefixes: Vec<IpNet>,
        peer_prefixes: Vec<IpNet>,
        tunnels: Vec<Tunnel>,
    },
    /// One end of a WireGuard tunnel between two managed hosts.
    WireguardInterface {
        network: Network,
        peer: Network,
        prefixes: Vec<IpNet>,
        peer_prefixes: Vec<IpNet>,
    },
    /// `https://hostname/path` routed by the edge proxy to `upstream`.
    ProxyRoute {
        hostname: String,
        path: String,
        upstream: SocketAddr,
    },
    /// A record in a DNS zone (the item's name is the record's name).
    DnsRecord {
        record_type: String,
        value: String,
        ttl: u32,
    },
    /// A route in the route tables of `network`.
    Route {
        network: Network,
        mechanism: Mechanism,
        destination: String,
        via: String,
        peer_network_id: Option<String>,
    },
    /// A rule in the firewall of `network`.
    FirewallRule {
        network: Network,
        mechanism: Mechanism,
        allow_from: String,
        protocol: String,
        ports: String,
    },
}

impl Build {
    /// The label a plan shows for it ("VPC peering"); the DNS record of a
    /// service exposure keeps its own ("DNS record").
    pub fn label(&self) -> String {
        match self {
            Build::Network { .. } => "network".into(),
            Build::Peering { .. } => "VPC peering".into(),
            Build::TransitGatewayAttachment { .. } => "transit gateway attachment".into(),
            Build::SiteToSiteVpn { .. } => "site-to-site VPN".into(),
            Build::IpsecTunnel { .. } => "IPsec tunnel".into(),
            Build::WireguardInterface { .. } => "WireGuard interface".into(),
            Build::ProxyRoute { .. } => "proxy route".into(),
            Build::DnsRecord { record_type, .. } => format!("{record_type} record"),
            Build::Route { .. } => "route".into(),
            Build::FirewallRule { .. } => "firewall rule".into(),
        }
    }

    /// The network the item is built in, for the kinds that have one.
    pub fn network(&self) -> Option<&Network> {
        match self {
            Build::Network { network, .. }
            | Build::Peering { network, .. }
            | Build::TransitGatewayAttachment { network, .. }
            | Build::SiteToSiteVpn { network, .. }
            | Build::IpsecTunnel { network, .. }
            | Build::WireguardInterface { network, .. }
            | Build::Route { network, .. }
            | Build::FirewallRule { network, .. } => Some(network),
            Build::ProxyRoute { .. } | Build::DnsRecord { .. } => None,
        }
    }

    /// The network at the other end, for the kinds that link two.
    pub fn peer(&self) -> Option<&Network> {
        match self {
            Build::Peering { peer, .. }
            | Build::SiteToSiteVpn { peer, .. }
            | Build::IpsecTunnel { peer, .. }
            | Build::WireguardInterface { peer, .. } => Some(peer),
            _ => None,
        }
    }

    /// The region the item is built in ("" for items outside any network).
    pub fn region(&self) -> &str {
        self.network().map_or("", |n| n.region.as_str())
    }

    /// The mechanism a route or rule serves.
    pub fn mechanism(&self) -> Option<Mechanism> {
        match self {
            Build::Route { mechanism, .. } | Build::FirewallRule { mechanism, .. } => {
                Some(*mechanism)
            }
            _ => None,
        }
    }

    /// A route of a plan, as a provider builds it.
    pub fn route(route: &Route, mechanism: Mechanism) -> Build {
        Build::Route {
            network: Network {
                account: route.account.clone(),
                name: route.network.clone(),
                region: route.at.region.clone(),
                id: route.at.network_id.clone(),
                endpoint: None,
            },
            mechanism,
            destination: route.destination.clone(),
            via: route.via.clone(),
            peer_network_id: route.peer_network_id.clone(),
        }
    }

    /// A firewall rule of a plan, as a provider builds it.
    pub fn rule(rule: &Rule, mechanism: Mechanism) -> Build {
        Build::FirewallRule {
            network: Network {
                account: rule.account.clone(),
                name: rule.network.clone(),
                region: rule.at.region.clone(),
                id: rule.at.network_id.clone(),
                endpoint: None,
            },
            mechanism,
            allow_from: rule.allow_from.clone(),
            protocol: rule.protocol.clone(),
            ports: rule.ports.clone(),
        }
    }

    /// The params a plan stores for a resource (routes and rules are stored as
    /// their own lists, not here).
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut p = Params::default();
        match self {
            Build::Network {
                network,
                team,
                cidr,
                subnets,
                underlay,
            } => {
                p.network("", network);
                p.set("team", team);
                p.set("cidr", &cidr.to_string());
                let subnets: Vec<String> = subnets
                    .iter()
                    .map(|s| format!("{}={}", s.zone, s.cidr))
                    .collect();
                p.set("subnets", &subnets.join(", "));
                if let Some(u) = underlay {
                    p.set("underlay_bridge", &u.bridge);
                    p.set("underlay", &u.address.to_string());
                }
            }
            Build::Peering { network, peer } => {
                p.network("", network);
                p.network("peer_", peer);
            }
            Build::TransitGatewayAttachment {
                network,
                transit_gateway,
            } => {
                p.network("", network);
                p.set("transit_gateway", transit_gateway);
            }
            Build::SiteToSiteVpn {
                network,
                transit_gateway,
                peer,
                peer_prefixes,
            } => {
                p.network("", network);
                p.set("transit_gateway", transit_gateway);
                p.network("peer_", peer);
                p.set("peer_prefixes", &list(peer_prefixes));
            }
            Build::IpsecTunnel {
                network,
                peer,
                prefixes,
                peer_prefixes,
                tunnels: _,
            }
            | Build::WireguardInterface {
                network,
                peer,
                prefixes,
                peer_prefixes,
            } => {
                p.network("", network);
                p.network("peer_", peer);
                p.set("prefixes", &list(prefixes));
                p.set("peer_prefixes", &list(peer_prefixes));
            }
            Build::ProxyRoute {
                hostname,
                path,
                upstream,
            } => {
                p.set("hostname", hostname);
                p.set("path", path);
                p.set("upstream", &upstream.to_string());
            }
            Build::DnsRecord {
                record_type,
                value,
                ttl,
            } => {
                p.set("record_type", record_type);
                p.set("value", value);
                p.set("ttl", &ttl.to_string());
            }
            Build::Route { .. } | Build::FirewallRule { .. } => {}
        }
        p.0
    }

    /// A stored resource read back: its `kind` label and `params`. An error
    /// names what is missing or malformed.
    pub fn from_stored(kind: &str, params: &BTreeMap<String, String>) -> Result<Build, String> {
        let p = Stored(params);
        let build = match kind {
            "network" => Build::Network {
                network: p.network("")?,
                team: p.need("team")?.to_owned(),
                cidr: p
                    .need("cidr")?
                    .parse()
                    .map_err(|_| "cidr is not an address range".to_owned())?,
                subnets: p.subnets("subnets")?,
                underlay: match (p.get("underlay_bridge"), p.get("underlay")) {
                    (Some(bridge), Some(address)) => Some(UnderlayAddress {
                        bridge: bridge.to_owned(),
                        address: address
                            .parse()
                            .map_err(|_| "underlay is not an address with its prefix".to_owned())?,
                    }),
                    _ => None,
                },
            },
            "VPC peering" => Build::Peering {
                network: p.network("")?,
                peer: p.network("peer_")?,
            },
            "transit gateway attachment" => Build::TransitGatewayAttachment {
                network: p.network("")?,
                transit_gateway: p.need("transit_gateway")?.to_owned(),
            },
            "site-to-site VPN" => Build::SiteToSiteVpn {
                network: p.network("")?,
                transit_gateway: p.need("transit_gateway")?.to_owned(),
                peer: p.network("peer_")?,
                peer_prefixes: p.prefixes("peer_prefixes")?,
            },
            "IPsec tunnel" => Build::IpsecTunnel {
                network: p.network("")?,
                peer: p.network("peer_")?,
                prefixes: p.prefixes("prefixes")?,
                peer_prefixes: p.prefixes("peer_prefixes")?,
                tunnels: Vec::new(),
            },
            "WireGuard interface" => Build::WireguardInterface {
                network: p.network("")?,
                peer: p.network("peer_")?,
                prefixes: p.prefixes("prefixes")?,
                peer_prefixes: p.prefixes("peer_prefixes")?,
            },
            "proxy route" => Build::ProxyRoute {
                hostname: p.need("hostname")?.to_owned(),
                path: p.need("path")?.to_owned(),
                upstream: p
                    .need("upstream")?
                    .parse()
                    .map_err(|_| "upstream is not an address and port".to_owned())?,
            },
            _ if kind.ends_with(" record") => Build::DnsRecord {
                record_type: p.need("record_type")?.to_owned(),
                value: p.need("value")?.to_owned(),
                ttl: p
                    .need("ttl")?
                    .parse()
                    .map_err(|_| "ttl is not a number of seconds".to_owned())?,
            },
            other => return Err(format!("this version cannot build a {other}")),
        };
        Ok(build)
    }
}

/// Prefixes as a plan lists them: "10.1.0.0/16, 10.2.0.0/16".
fn list(prefixes: &[IpNet]) -> String {
    prefixes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Default)]
struct Params(BTreeMap<String, String>);

impl Params {
    fn set(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_owned(), value.to_owned());
    }

    fn network(&mut self, prefix: &str, n: &Network) {
        self.set(&format!("{prefix}account"), &n.account);
        self.set(&format!("{prefix}network"), &n.name);
        self.set(&format!("{prefix}region"), &n.region);
        if let Some(id) = &n.id {
            self.set(&format!("{prefix}network_id"), id);
        }
        if let Some(endpoint) = &n.endpoint {
            self.set(&format!("{prefix}endpoint"), endpoint);
        }
    }
}

struct Stored<'a>(&'a BTreeMap<String, String>);

impl Stored<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn need(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("{key} is missing"))
    }

    fn network(&self, prefix: &str) -> Result<Network, String> {
        Ok(Network {
            account: self.need(&format!("{prefix}account"))?.to_owned(),
            name: self.need(&format!("{prefix}network"))?.to_owned(),
            region: self
                .get(&format!("{prefix}region"))
                .unwrap_or_default()
                .to_owned(),
            id: self.get(&format!("{prefix}network_id")).map(str::to_owned),
            endpoint: self.get(&format!("{prefix}endpoint")).map(str::to_owned),
        })
    }

    /// "eu-west-1a=10.0.0.0/18, eu-west-1b=10.0.64.0/18".
    fn subnets(&self, key: &str) -> Result<Vec<Subnet>, String> {
        self.get(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (zone, cidr) = s
                    .split_once('=')
                    .ok_or_else(|| format!("{s:?} in {key} is not zone=range"))?;
                Ok(Subnet {
                    zone: zone.trim().to_owned(),
                    cidr: cidr
                        .trim()
                        .parse()
                        .map_err(|_| format!("{cidr:?} in {key} is not an address range"))?,
                })
            })
            .collect()
    }

    fn prefixes(&self, key: &str) -> Result<Vec<IpNet>, String> {
        self.get(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse()
                    .map_err(|_| format!("{p:?} in {key} is not an address range"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, id: Option<&str>) -> Network {
        Network {
            account: "cloud".into(),
            name: name.into(),
            region: "eu-west-1".into(),
            id: id.map(str::to_owned),
            endpoint: None,
        }
    }

    #[test]
    fn every_stored_kind_reads_back_as_it_was_written() {
        let builds = [
            Build::Network {
                network: net("a", None),
                team: "payments".into(),
                cidr: "10.20.0.0/16".parse().unwrap(),
                subnets: vec![
                    Subnet {
                        zone: "eu-west-1a".into(),
                        cidr: "10.20.0.0/18".parse().unwrap(),
                    },
                    Subnet {
                        zone: "eu-west-1b".into(),
                        cidr: "10.20.64.0/18".parse().unwrap(),
                    },
                ],
                underlay: None,
            },
            Build::Network {
                network: net("dc", None),
                team: "payments".into(),
                cidr: "10.61.0.0/24".parse().unwrap(),
                subnets: Vec::new(),
                underlay: Some(UnderlayAddress {
                    bridge: "sbul0".into(),
                    address: "192.168.90.2/24".parse().unwrap(),
                }),
            },
            Build::Peering {
                network: net("a", Some("vpc-1")),
                peer: net("b", None),
            },
            Build::TransitGatewayAttachment {
                network: net("a", Some("vpc-1")),
                transit_gateway: "tgw-1".into(),
            },
            Build::SiteToSiteVpn {
                network: net("a", Some("vpc-1")),
                transit_gateway: "tgw-1".into(),
                peer: net("dc", Some("ns1")),
                peer_prefixes: vec!["192.168.0.0/24".parse().unwrap()],
            },
            Build::IpsecTunnel {
                network: net("dc", Some("ns1")),
                peer: net("a", Some("vpc-1")),
                prefixes: vec!["192.168.0.0/24".parse().unwrap()],
                peer_prefixes: vec![
                    "10.1.0.0/16".parse().unwrap(),
                    "10.9.0.0/16".parse().unwrap(),
                ],
                tunnels: Vec::new(),
            },
            Build::WireguardInterface {
                network: net("a", Some("ns1")),
                peer: Network {
                    endpoint: Some("192.168.90.3".into()),
                    ..net("b", Some("ns2"))
                },
                prefixes: Vec::new(),
                peer_prefixes: vec!["10.2.0.0/16".parse().unwrap()],
            },
            Build::ProxyRoute {
                hostname: "app.example.com".into(),
                path: "/".into(),
                upstream: "10.1.2.3:8443".parse().unwrap(),
            },
            Build::DnsRecord {
                record_type: "AAAA".into(),
                value: "2001:db8::1".into(),
                ttl: 300,
            },
        ];
        for build in builds {
            let back = Build::from_stored(&build.label(), &build.params());
            assert_eq!(back.as_ref(), Ok(&build), "{}", build.label());
        }
    }

    #[test]
    fn a_stored_resource_that_cannot_be_built_says_why() {
        let none = BTreeMap::new();
        assert_eq!(
            Build::from_stored("teleporter", &none).unwrap_err(),
            "this version cannot build a teleporter"
        );
        assert_eq!(
            Build::from_stored("VPC peering", &none).unwrap_err(),
            "account is missing"
        );
        let bad = BTreeMap::from([
            ("record_type".to_owned(), "A".to_owned()),
            ("value".to_owned(), "203.0.113.1".to_owned()),
            ("ttl".to_owned(), "soon".to_owned()),
        ]);
        assert_eq!(
            Build::from_stored("DNS record", &bad).unwrap_err(),
            "ttl is not a number of seconds"
        );
    }

    #[test]
    fn handed_over_keys_are_never_printed() {
        let t = Tunnel {
            address: "52.2.144.13".into(),
            psk: "hunter2".into(),
        };
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
