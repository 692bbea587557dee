//! Networks Switchboard builds in a linux account: a network namespace named
//! after the network (`sb-` and 8 hex digits of a hash of its id), on the
//! account's `build_host` (`ssh://user@host`, else the workers' host), with
//! the network's first address on an interface `sbnet` (one end of a veth
//! pair kept inside the namespace: many kernels here have no dummy
//! module), which routes the range there. The name is the
//! mark: a build killed half-way finds its namespace by name, and removal
//! deletes only the namespace named after that network.
//!
//! On an account with an underlay, the namespace also joins the bridge
//! `underlay_bridge` of its host (made if missing) through a veth pair: `sbu`
//! and the namespace's hash on the host, `sbunder` inside with the address its
//! plan gives it from `underlay_range`. Its tunnels are reached there, so a
//! WireGuard connection can link it to any network that reaches the bridge.
//! Deleting the namespace deletes the pair.

use std::collections::{BTreeMap, HashSet};

use super::*;
use crate::planner::build::UnderlayAddress;

/// The interface holding a built network's own address.
pub(super) const NETWORK_DEVICE: &str = "sbnet";
/// The other end of its veth pair, also inside the namespace.
const PEER_DEVICE: &str = "sbnet-peer";
/// The namespace's end of its pair to the underlay bridge.
const UNDERLAY_DEVICE: &str = "sbunder";

/// The host's end of the namespace's pair to the underlay bridge.
fn host_device(ns: &str) -> String {
    format!("sbu{}", ns.trim_start_matches("sb-"))
}

/// The namespace a network is built as.
pub(super) fn namespace_of(network_id: Uuid) -> String {
    format!("sb-{:08x}", fnv1a(network_id.as_bytes()))
}

/// The network's first usable address, with its prefix length: what `sbnet` holds.
fn own_address(cidr: &IpNet) -> String {
    let first = cidr.hosts().next().unwrap_or(cidr.addr());
    format!("{first}/{}", cidr.prefix_len())
}

/// The namespaces of a host, by name.
async fn namespaces(host: &Site) -> Result<HashSet<String>, ProviderError> {
    let out = host.on_host("ip", &["netns", "list"], None).await?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

impl Linux {
    /// Where a network is built: its namespace on the account's build host.
    fn build_site(&self, network_id: Uuid) -> Result<Site, ProviderError> {
        let ns = namespace_of(network_id);
        let id = match &self.build_host {
            Some(host) => format!("{}/{ns}", host.trim_end_matches('/')),
            None => ns,
        };
        let options = self.ssh.get(&self.account).cloned().unwrap_or_default();
        Site::parse(&id, &options)
    }

    /// Builds (or finds, or completes) the network's namespace and its
    /// address; the step's id is the namespace's place (its external id).
    pub(super) async fn network(
        &self,
        network_id: Uuid,
        item: &Item,
    ) -> Result<Step, ProviderError> {
        let Build::Network { cidr, underlay, .. } = &item.build else {
            return Err(ProviderError::Permanent(format!(
                "{} is not a network",
                item.name
            )));
        };
        if !matches!(cidr, IpNet::V4(_)) {
            return Err(ProviderError::Permanent(
                "this version of Switchboard builds IPv4 namespaces only".into(),
            ));
        }
        let site = self.build_site(network_id)?;
        let ns = namespace_of(network_id);
        let mut action = "found";
        if !namespaces(&site.host()).await?.contains(&ns) {
            site.on_host("ip", &["netns", "add", &ns], None).await?;
            action = "created";
        }
        site.ip(&["link", "set", "lo", "up"]).await?;
        if !links(&site).await?.contains_key(NETWORK_DEVICE) {
            site.ip(&[
                "link",
                "add",
                NETWORK_DEVICE,
                "type",
                "veth",
                "peer",
                "name",
                PEER_DEVICE,
            ])
            .await?;
            if action == "found" {
                action = "repaired";
            }
        }
        site.ip(&["addr", "replace", &own_address(cidr), "dev", NETWORK_DEVICE])
            .await?;
        site.ip(&["link", "set", PEER_DEVICE, "up"]).await?;
        site.ip(&["link", "set", NETWORK_DEVICE, "up"]).await?;
        // Joined in any case; "repaired" when something was missing.
        if let Some(underlay) = underlay
            && join_underlay(&site, &ns, underlay).await?
            && action == "found"
        {
            action = "repaired";
        }
        Ok(Step::new(action, item, Some(site.id.clone())))
    }

    /// Deletes the network's namespace (and with it its pair to the
    /// underlay), if it is there.
    pub(super) async fn remove_network(&self, network_id: Uuid) -> Result<bool, ProviderError> {
        let site = self.build_site(network_id)?;
        let ns = namespace_of(network_id);
        if !namespaces(&site.host()).await?.contains(&ns) {
            return Ok(false);
        }
        site.on_host("ip", &["netns", "del", &ns], None).await?;
        Ok(true)
    }

    /// What each built network's namespace lacks: gone, or without its address.
    pub(super) async fn network_differences(
        &self,
        items: &[&Item],
    ) -> Result<BTreeMap<String, Vec<String>>, ProviderError> {
        let options = self.ssh.get(&self.account).cloned().unwrap_or_default();
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut listed: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        for item in items {
            let (
                Build::Network {
                    cidr,
                    network,
                    underlay,
                    ..
                },
                Some(id),
            ) = (&item.build, item.build.network().and_then(|n| n.id.clone()))
            else {
                continue;
            };
            let site = Site::parse(&id, &options)?;
            let Some(ns) = site.ns.clone() else { continue };
            let host = site.host();
            if !listed.contains_key(&host.id) {
                listed.insert(host.id.clone(), namespaces(&host).await?);
            }
            let mut differs = Vec::new();
            if !listed[&host.id].contains(&ns) {
                differs.push(format!(
                    "the namespace {id} of {} no longer exists",
                    network.name
                ));
            } else {
                let out = site
                    .ip(&["-o", "addr", "show", "dev", NETWORK_DEVICE])
                    .await
                    .unwrap_or_default();
                let address = own_address(cidr);
                if !out.split_whitespace().any(|w| w == address) {
                    differs.push(format!(
                        "{NETWORK_DEVICE} in {id} no longer has the address {address}"
                    ));
                }
                if let Some(u) = underlay {
                    let out = site
                        .ip(&["-o", "addr", "show", "dev", UNDERLAY_DEVICE])
                        .await
                        .unwrap_or_default();
                    let address = u.address.to_string();
                    if !out.split_whitespace().any(|w| w == address) {
                        differs.push(format!(
                            "{UNDERLAY_DEVICE} in {id} no longer has its underlay address {address}"
                        ));
                    }
                }
            }
            seen.insert(id, differs);
        }
        Ok(seen)
    }
}

/// Joins the namespace to its underlay bridge (making the bridge if the host
/// has none) with its underlay address; whether anything was missing.
async fn join_underlay(
    site: &Site,
    ns: &str,
    underlay: &UnderlayAddress,
) -> Result<bool, ProviderError> {
    let host = site.host();
    let on_host = links(&host).await?;
    let mut missing = false;
    if !on_host.contains_key(&underlay.bridge) {
        host.on_host(
            "ip",
            &["link", "add", "name", &underlay.bridge, "type", "bridge"],
            None,
        )
        .await?;
        missing = true;
    }
    host.on_host("ip", &["link", "set", &underlay.bridge, "up"], None)
        .await?;
    let outside = host_device(ns);
    if !links(site).await?.contains_key(UNDERLAY_DEVICE) {
        if on_host.contains_key(&outside) {
            // Half of a pair whose inside end went away: make it again.
            host.on_host("ip", &["link", "del", &outside], None).await?;
        }
        host.on_host(
            "ip",
            &[
                "link",
                "add",
                &outside,
                "type",
                "veth",
                "peer",
                "name",
                UNDERLAY_DEVICE,
                "netns",
                ns,
            ],
            None,
        )
        .await?;
        missing = true;
    }
    host.on_host(
        "ip",
        &["link", "set", &outside, "master", &underlay.bridge, "up"],
        None,
    )
    .await?;
    site.ip(&[
        "addr",
        "replace",
        &underlay.address.to_string(),
        "dev",
        UNDERLAY_DEVICE,
    ])
    .await?;
    site.ip(&["link", "set", UNDERLAY_DEVICE, "up"]).await?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_is_a_namespace_named_after_it_holding_its_first_address() {
        let id = Uuid::nil();
        let ns = namespace_of(id);
        assert!(ns.starts_with("sb-") && ns.len() == 11, "{ns}");
        assert_eq!(ns, namespace_of(id), "the same name every time");
        assert_ne!(ns, namespace_of(Uuid::from_u128(1)));
        assert_eq!(own_address(&"10.9.4.0/24".parse().unwrap()), "10.9.4.1/24");
        let outside = host_device(&ns);
        assert!(
            outside.starts_with("sbu") && outside.len() <= 15,
            "{outside}"
        );
    }
}
