//! The `linux` provider: on-prem networks that are Linux network namespaces on
//! the worker's host or hosts reached over SSH (`site.rs`: a network's
//! `external_id` says which). It links two of them with a WireGuard tunnel
//! (userspace `wireguard-go`, as this kernel has no WireGuard module), routes
//! each side's prefixes into the tunnel, and opens the requested ports with
//! nftables; nothing else passes the tunnel.
//!
//! Settings: `endpoint.<external_id>`, the address where that network's
//! tunnels are reached (its underlay address); `ssh_identity` and
//! `ssh_known_hosts` for hosts over SSH; `build_host`, `underlay_bridge` and
//! `underlay_range` for the namespaces it builds (`namespace.rs`), whose
//! endpoint is the underlay address their plan gives them. Needs root, `ip`,
//! `nft`, `wg` and `wireguard-go` wherever the networks are.
//!
//! Keys: each interface's private key is generated on the host that holds it
//! and handed to the interface there (`wg genkey | wg set …`); it never leaves
//! that host: not to the worker, the database, logs or pages. A tunnel made
//! again (after drift) gets new keys, and the other side is given the new
//! public key.
//!
//! Working, not just configured: a tunnel is built once both ends have
//! completed a handshake (a keepalive every 25 s keeps sessions renewed), and
//! the monitor reports an end whose last handshake is older than a session
//! lasts (180 s), or that never had one.
//!
//! A cloud's site-to-site VPN ends here too: its on-prem end is IPsec, run by
//! strongSwan in the namespace (`ipsec.rs`), with the tunnels the cloud hands
//! over.
//!
//! Names: the interface of namespace X towards Y is `sb` + 8 hex digits of a
//! hash of "X|Y" (wireguard-go's control sockets share one directory, so the
//! names must differ across namespaces); its port is derived the same way.
//! nftables rules live in the table `inet switchboard` of the namespace, each
//! with a comment saying what it is for.

mod ipsec;
mod namespace;
mod nftables;
mod observe;
mod probe;
mod site;
mod wireguard;

use nftables::*;
use observe::*;
use wireguard::*;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use serde_json::Value;
use uuid::Uuid;

use super::{Build, Item, Provider, ProviderError, Removal, Seen, Step, Wanted, fnv1a};
use crate::domain::connection::parse_ports;
use crate::domain::network::Underlay;
use crate::planner::Mechanism;
use crate::planner::build;
use crate::store::provider_accounts::ProviderAccount;
use site::{Site, SshOptions, run};

const TABLE: &str = "switchboard";
const CHAINS: [&str; 2] = ["input", "forward"];
const REPLIES: &str = "switchboard replies";

pub struct Linux {
    account: String,
    /// Where each namespace's tunnels are reached, from every linux account.
    endpoints: HashMap<String, String>,
    /// How each linux account reaches its hosts over SSH.
    ssh: HashMap<String, SshOptions>,
    /// Where this account builds networks (`build_host`): a host over SSH,
    /// else the workers' own.
    build_host: Option<String>,
}

/// The interface of the network `ns` towards `peer` (their external ids).
/// A network's place written one way (see `Site::key`), or why it is no place.
pub(super) fn resource_key(external_id: &str) -> Result<String, String> {
    Site::parse(external_id, &SshOptions::default())
        .map(|site| site.key())
        .map_err(|e| e.to_string())
}

/// `text` as a list of IPv4 ranges ("10.1.0.0/16, 10.2.0.0/16"), at least one.
fn parse_prefixes(item: &Item, text: &str, what: &str) -> Result<Vec<IpNet>, ProviderError> {
    let list: Vec<IpNet> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse().map_err(|_| {
                ProviderError::Permanent(format!("{p:?} in {} is not an address range", item.name))
            })
        })
        .collect::<Result<_, _>>()?;
    ipv4(item, &list, what)
}

/// `list`, when it holds at least one range and only IPv4 ones.
fn ipv4(item: &Item, list: &[IpNet], what: &str) -> Result<Vec<IpNet>, ProviderError> {
    if list.is_empty() {
        return Err(ProviderError::Permanent(format!(
            "{} has no {what}",
            item.name
        )));
    }
    if list.iter().any(|p| matches!(p, IpNet::V6(_))) {
        return Err(ProviderError::Permanent(format!(
            "this version of Switchboard builds IPv4 tunnels and rules only ({})",
            item.name
        )));
    }
    Ok(list.to_vec())
}

/// A tunnel's own ranges and its peer's.
fn tunnel_prefixes(item: &Item) -> Result<(Vec<IpNet>, Vec<IpNet>), ProviderError> {
    match &item.build {
        Build::WireguardInterface {
            prefixes,
            peer_prefixes,
            ..
        }
        | Build::IpsecTunnel {
            prefixes,
            peer_prefixes,
            ..
        } => Ok((
            ipv4(item, prefixes, "prefixes")?,
            ipv4(item, peer_prefixes, "peer prefixes")?,
        )),
        _ => Err(ProviderError::Permanent(format!(
            "{} is not a tunnel",
            item.name
        ))),
    }
}

fn list(prefixes: &[IpNet]) -> String {
    prefixes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Where a route item's traffic goes: the WireGuard interface towards the
/// peer, or the IPsec device for a cloud's VPN.
fn route_device(site: &str, item: &Item) -> Result<String, ProviderError> {
    let Build::Route {
        mechanism,
        peer_network_id,
        ..
    } = &item.build
    else {
        return Err(ProviderError::Permanent(format!(
            "{} is not a route",
            item.name
        )));
    };
    if *mechanism == Mechanism::SiteToSiteVpn {
        return Ok(ipsec::DEVICE.to_owned());
    }
    let peer = peer_network_id
        .as_deref()
        .ok_or_else(|| ProviderError::Permanent(format!("{} names no peer network", item.name)))?;
    Ok(interface(site, peer))
}

/// A route item's destination.
fn destination(item: &Item) -> &str {
    match &item.build {
        Build::Route { destination, .. } => destination,
        _ => "",
    }
}

impl Linux {
    pub fn new(account: &ProviderAccount, all: &[ProviderAccount]) -> Result<Self, String> {
        // Each namespace's plan carries its place on the underlay; a bad
        // setting makes the account unservable, said to admins, not a build failure.
        Underlay::from_settings(
            account.setting("underlay_bridge"),
            account.setting("underlay_range"),
        )
        .map_err(|why| format!("linux account {}: {why}", account.name))?;
        Ok(Linux {
            account: account.name.clone(),
            endpoints: super::endpoints(all)?,
            ssh: all
                .iter()
                .filter(|a| a.kind == "linux")
                .map(|a| (a.name.clone(), SshOptions::of(a)))
                .collect(),
            build_host: account.setting("build_host").map(str::to_owned),
        })
    }

    /// The site of the item's own network, reached as this account says.
    fn site(&self, item: &Item) -> Result<Site, ProviderError> {
        let options = self.ssh.get(&self.account).cloned().unwrap_or_default();
        Site::of(item, item.build.network(), &options)
    }

    /// The site at the far end of a WireGuard tunnel, reached as its account says.
    fn peer_site(&self, item: &Item) -> Result<Site, ProviderError> {
        let peer = match &item.build {
            Build::WireguardInterface { peer, .. } => Some(peer),
            _ => None,
        };
        let account = peer
            .map(|p| p.account.as_str())
            .filter(|a| !a.is_empty())
            .unwrap_or(&self.account);
        let options = self.ssh.get(account).cloned().unwrap_or_default();
        Site::of(item, peer, &options)
    }

    /// Where the tunnels of the network at `ns` are reached: the address
    /// Switchboard gave it (a namespace it built on an underlay), else the
    /// `endpoint.<ns>` setting of a linux account.
    fn endpoint<'a>(
        &'a self,
        ns: &str,
        network: Option<&'a build::Network>,
    ) -> Result<&'a str, ProviderError> {
        if let Some(endpoint) = network.and_then(|n| n.endpoint.as_deref()) {
            return Ok(endpoint);
        }
        self.endpoints.get(ns).map(String::as_str).ok_or_else(|| {
            ProviderError::Permanent(format!(
                "no linux account has an endpoint.{ns} setting: the address where {ns}'s tunnels are reached"
            ))
        })
    }

    async fn route(&self, item: &Item) -> Result<Step, ProviderError> {
        let site = self.site(item)?;
        let destination: IpNet = destination(item)
            .parse()
            .map_err(|_| ProviderError::Permanent(format!("{} has no destination", item.name)))?;
        let here = route_device(&site.id, item)?;
        let action = match routes(&site).await?.get(&destination.to_string()) {
            Some(dev) if *dev == here => "found",
            _ => {
                site.ip(&["route", "replace", &destination.to_string(), "dev", &here])
                    .await?;
                "created"
            }
        };
        Ok(Step::new(
            action,
            item,
            Some(format!("{destination} dev {here} in {site}")),
        ))
    }

    /// Removes one item; whether there was anything to remove.
    async fn remove(&self, item: &Item) -> Result<bool, ProviderError> {
        let site = self.site(item)?;
        match &item.build {
            Build::WireguardInterface { .. } => {
                let here = interface(&site.id, &self.peer_site(item)?.id);
                delete_rules(&site, &tunnel_comment(&here)).await?;
                if !links(&site).await?.contains_key(&here) {
                    return Ok(false);
                }
                stop_wireguard(&site, &here).await?;
                if links(&site).await?.contains_key(&here) {
                    site.ip(&["link", "del", &here]).await?;
                }
                drop_table_if_unused(&site).await?;
                Ok(true)
            }
            Build::Route { destination, .. } => {
                let here = route_device(&site.id, item)?;
                let present = routes(&site)
                    .await?
                    .get(destination.as_str())
                    .is_some_and(|dev| *dev == here);
                if present {
                    site.ip(&["route", "del", destination, "dev", &here])
                        .await?;
                }
                Ok(present)
            }
            Build::FirewallRule { .. } => delete_rules(&site, &rule_comment(item)).await,
            Build::IpsecTunnel { .. } => ipsec::remove(&site, item).await,
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl Provider for Linux {
    fn kind(&self) -> &'static str {
        "linux"
    }

    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError> {
        match &item.build {
            // A network's own id names its namespace.
            Build::Network { .. } => self.network(connection_id, item).await,
            Build::WireguardInterface { .. } => self.tunnel(item).await,
            Build::IpsecTunnel { .. } => {
                let site = self.site(item)?;
                ipsec::apply(&site, self.endpoint(&site.id, item.build.network())?, item).await
            }
            Build::Route { .. } => self.route(item).await,
            Build::FirewallRule { .. } => self.rule(item).await,
            _ => Err(ProviderError::Permanent(format!(
                "the linux provider does not build a {}",
                item.label
            ))),
        }
    }

    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError> {
        // Each site is read once (links, routes, rules), and every tunnel's
        // keys in one call per host, however many connections there are.
        let mut spaces = BTreeMap::new();
        let mut hosts = std::collections::HashSet::new();
        let built: Vec<&Item> = wanted
            .iter()
            .flat_map(|w| &w.items)
            .filter(|i| matches!(i.build, Build::Network { .. }))
            .collect();
        let networks = self.network_differences(&built).await?;
        for item in wanted.iter().flat_map(|w| &w.items) {
            if matches!(item.build, Build::Network { .. }) {
                continue;
            }
            let Ok(site) = self.site(item) else {
                continue;
            };
            // The far end of a tunnel is read for its current key.
            if let Ok(peer) = self.peer_site(item) {
                hosts.insert(peer.host());
            }
            if spaces.contains_key(&site.id) {
                continue;
            }
            let tunnels = wanted.iter().flat_map(|w| &w.items).any(|i| {
                matches!(i.build, Build::IpsecTunnel { .. })
                    && i.build.network().and_then(|n| n.id.as_deref()) == Some(site.id.as_str())
            });
            let mut space = Namespace::read(&site).await?;
            if tunnels {
                space.ipsec = ipsec::read(&site).await;
            }
            spaces.insert(site.id.clone(), space);
            hosts.insert(site.host());
        }
        let t = tunnels(&hosts).await?;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let mut seen = super::seen_each(wanted, |_, item| match &item.build {
            Build::Network { network, .. } => network
                .id
                .as_ref()
                .and_then(|id| networks.get(id))
                .cloned()
                .unwrap_or_default(),
            _ => differences(item, &spaces, &t, now),
        });
        // Configured as approved is not yet working: prove it where we can.
        self.prove(wanted, &mut seen).await;
        Ok(seen)
    }

    async fn destroy(
        &self,
        connection_id: Uuid,
        removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError> {
        let mut steps = Vec::new();
        for removal in removals.iter().rev() {
            // A network's namespace is found by the name its id gives,
            // whether or not its build was recorded.
            if let Build::Network { .. } = removal.item.build {
                if self.remove_network(connection_id).await? {
                    steps.push(Step::new("deleted", &removal.item, None));
                }
                continue;
            }
            if removal.made.is_empty() {
                continue;
            }
            if self.remove(&removal.item).await? {
                steps.push(Step::new("deleted", &removal.item, None));
            }
        }
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_of_a_tunnel_has_its_own_interface_and_port() {
        let (a, b) = (interface("lab-a", "lab-b"), interface("lab-b", "lab-a"));
        assert_ne!(a, b);
        assert!(
            a.len() <= 15,
            "a Linux interface name has at most 15 characters"
        );
        assert_eq!(a, interface("lab-a", "lab-b"), "the same name every time");
        assert!((40_000..60_000).contains(&listen_port("lab-a", "lab-b")));
    }

    #[test]
    fn a_peer_without_a_recent_handshake_has_no_working_session() {
        let now = 1_800_000_000;
        let at = |ago| stale("sb1", "dc1", "dc2", now - ago, now);
        assert_eq!(at(0), None);
        assert_eq!(at(SESSION_SECONDS), None);
        assert_eq!(
            at(SESSION_SECONDS + 20).unwrap(),
            "WireGuard interface sb1 in dc1 has had no handshake with dc2 for 200 s (a session lasts 180 s)"
        );
        assert_eq!(
            stale("sb1", "dc1", "dc2", 0, now).unwrap(),
            "WireGuard interface sb1 in dc1 has never completed a handshake with dc2"
        );
    }

    #[test]
    fn ranges_compare_whatever_their_order() {
        assert!(same_ranges(
            "10.1.0.0/16, 10.2.0.0/16",
            "10.2.0.0/16,10.1.0.0/16"
        ));
        assert!(!same_ranges("10.1.0.0/16", "10.1.0.0/16,10.2.0.0/16"));
    }
}
