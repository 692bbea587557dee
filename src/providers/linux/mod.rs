//! The `linux` provider: on-prem networks that are Linux network namespaces on
//! the worker's host or hosts reached over SSH (`site.rs`: a network's
//! `external_id` says which). It links two of them with a WireGuard tunnel
//! (userspace `wireguard-go`, as this kernel has no WireGuard module), routes
//! each side's prefixes into the tunnel, and opens the requested ports with
//! nftables; nothing else passes the tunnel.
//!
//! Settings: `endpoint.<external_id>`, the address where that network's
//! tunnels are reached (its underlay address); `ssh_identity` and
//! `ssh_known_hosts` for hosts over SSH. Needs root, `ip`, `nft`, `wg` and
//! `wireguard-go` wherever the networks are.
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
mod site;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use serde_json::Value;
use uuid::Uuid;

use super::{Item, Provider, ProviderError, Removal, Seen, Step, Wanted, fnv1a, kinds};
use crate::domain::connection::parse_ports;
use crate::planner::Mechanism;
use crate::store::provider_accounts::ProviderAccount;
use site::{Site, SshOptions, run};

const INTERFACE: &str = "WireGuard interface";
const TABLE: &str = "switchboard";
const CHAINS: [&str; 2] = ["input", "forward"];
const REPLIES: &str = "switchboard replies";

pub struct Linux {
    account: String,
    /// Where each namespace's tunnels are reached, from every linux account.
    endpoints: HashMap<String, String>,
    /// How each linux account reaches its hosts over SSH.
    ssh: HashMap<String, SshOptions>,
}

/// The interface of the network `ns` towards `peer` (their external ids).
fn interface(ns: &str, peer: &str) -> String {
    format!("sb{:08x}", fnv1a(format!("{ns}|{peer}").as_bytes()))
}

fn listen_port(ns: &str, peer: &str) -> u16 {
    40_000 + (fnv1a(format!("{ns}|{peer}").as_bytes()) % 20_000) as u16
}

fn prefixes(item: &Item, key: &str) -> Result<Vec<IpNet>, ProviderError> {
    let text = item.param(key).unwrap_or_default();
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
    if list.is_empty() {
        return Err(ProviderError::Permanent(format!(
            "{} has no {key}",
            item.name
        )));
    }
    if list.iter().any(|p| matches!(p, IpNet::V6(_))) {
        return Err(ProviderError::Permanent(format!(
            "this version of Switchboard builds IPv4 tunnels and rules only ({})",
            item.name
        )));
    }
    Ok(list)
}

fn list(prefixes: &[IpNet]) -> String {
    prefixes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The control socket of a wireguard-go interface; wireguard-go exits (and its
/// interface goes) when the socket is deleted.
fn control_socket(interface: &str) -> String {
    format!("/var/run/wireguard/{interface}.sock")
}

/// Stops the wireguard-go of an interface, if one runs on the site's host.
async fn stop_wireguard(site: &Site, interface: &str) -> Result<(), ProviderError> {
    site.on_host("rm", &["-f", &control_socket(interface)], None)
        .await?;
    // It notices within milliseconds; give it a moment to close the device.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// Starts wireguard-go for a new interface in the site's namespace (stopping
/// one left from an interface deleted by hand). It puts itself in the
/// background, its output on /dev/null, so it outlives this worker (and the
/// SSH session that started it).
async fn start_wireguard(site: &Site, interface: &str) -> Result<(), ProviderError> {
    stop_wireguard(site, interface).await?;
    let line = format!(
        "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 exec {}wireguard-go {interface} </dev/null >/dev/null 2>&1",
        site.in_namespace_prefix()
    );
    site.on_host("sh", &["-c", &line], None).await.map_err(|_| {
        ProviderError::Permanent(format!(
            "wireguard-go could not make {interface} in {site} (it needs root, /dev/net/tun, wireguard-go and the namespace to exist)"
        ))
    })?;
    Ok(())
}

/// The namespace's address in its network's own ranges (on another interface
/// than `tunnel`), from which traffic through a tunnel leaves.
async fn own_address(
    site: &Site,
    own: &[IpNet],
    tunnel: &str,
) -> Result<std::net::IpAddr, ProviderError> {
    let addresses = site.ip(&["-j", "-4", "addr", "show"]).await?;
    let addresses: Value = serde_json::from_str(&addresses)
        .map_err(|e| ProviderError::Transient(format!("ip's addresses of {site}: {e}")))?;
    addresses
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["ifname"] != tunnel)
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str()?.parse::<std::net::IpAddr>().ok())
        .find(|a| own.iter().any(|p| p.contains(a)))
        .ok_or_else(|| {
            ProviderError::Permanent(format!(
                "{site} has no address in {}: give one of its interfaces an address there",
                list(own)
            ))
        })
}

/// A tunnel's device in the site: traffic leaves it from the network's own
/// address, and nothing comes through it but what a firewall item opens (a
/// drop rule with `comment`, after the openings).
async fn close_tunnel_device(
    site: &Site,
    own: &[IpNet],
    device: &str,
    comment: &str,
) -> Result<(), ProviderError> {
    let source = own_address(site, own, device).await?;
    site.ip(&["addr", "replace", &format!("{source}/32"), "dev", device])
        .await?;
    let have = ensure_table(site).await?;
    for chain in CHAINS {
        if !have.iter().any(|(c, _, m)| c == chain && m == comment) {
            let quoted = format!("\"{comment}\"");
            let rule = [
                "nft", "add", "rule", "inet", TABLE, chain, "iifname", device, "drop", "comment",
                &quoted,
            ];
            site.exec(&rule, None).await?;
        }
    }
    Ok(())
}

/// Deletes the site's table once nothing of Switchboard's is left in it but
/// the rules letting replies back (a table that is gone stays gone).
async fn drop_table_if_unused(site: &Site) -> Result<(), ProviderError> {
    let left = rules(site).await?;
    if !left.is_empty() && left.iter().all(|(_, _, m)| m == REPLIES) {
        site.exec(&["nft", "delete", "table", "inet", TABLE], None)
            .await?;
    }
    Ok(())
}

/// Removes the rules with this comment from the namespace's table; whether
/// there were any.
async fn delete_rules(site: &Site, comment: &str) -> Result<bool, ProviderError> {
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

/// Where a route item's traffic goes: the WireGuard interface towards the
/// peer, or the IPsec device for a cloud's VPN.
fn route_device(site: &str, item: &Item) -> Result<String, ProviderError> {
    if item.param("mechanism") == Some(Mechanism::SiteToSiteVpn.label()) {
        return Ok(ipsec::DEVICE.to_owned());
    }
    let peer = item
        .param("peer_network_id")
        .ok_or_else(|| ProviderError::Permanent(format!("{} names no peer network", item.name)))?;
    Ok(interface(site, peer))
}

/// The nftables rules of the namespace's switchboard table: (chain, handle, comment).
async fn rules(site: &Site) -> Result<Vec<(String, u64, String)>, ProviderError> {
    let Ok(out) = site
        .exec(&["nft", "-j", "list", "table", "inet", TABLE], None)
        .await
    else {
        return Ok(Vec::new()); // no table yet
    };
    parse_rules(site, &out)
}

fn parse_rules(site: &Site, out: &str) -> Result<Vec<(String, u64, String)>, ProviderError> {
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
async fn ensure_table(site: &Site) -> Result<Vec<(String, u64, String)>, ProviderError> {
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

/// A namespace's links: name → up.
async fn links(site: &Site) -> Result<HashMap<String, bool>, ProviderError> {
    parse_links(site, &site.ip(&["-j", "link", "show"]).await?)
}

fn parse_links(site: &Site, out: &str) -> Result<HashMap<String, bool>, ProviderError> {
    let links: Value = serde_json::from_str(out)
        .map_err(|e| ProviderError::Transient(format!("ip's listing of {site}: {e}")))?;
    Ok(links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let up = l["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "UP"));
            Some((l["ifname"].as_str()?.to_owned(), up))
        })
        .collect())
}

/// A namespace's routes: destination → device.
async fn routes(site: &Site) -> Result<HashMap<String, String>, ProviderError> {
    parse_routes(site, &site.ip(&["-j", "route", "show"]).await?)
}

fn parse_routes(site: &Site, out: &str) -> Result<HashMap<String, String>, ProviderError> {
    let routes: Value = serde_json::from_str(out)
        .map_err(|e| ProviderError::Transient(format!("ip's routes of {site}: {e}")))?;
    Ok(routes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let dst = r["dst"].as_str()?;
            // `ip` writes a host route without its /32.
            let dst = if dst.contains('/') {
                dst.to_owned()
            } else {
                format!("{dst}/32")
            };
            Some((dst, r["dev"].as_str()?.to_owned()))
        })
        .collect())
}

/// What every userspace WireGuard interface of the host has: its public key
/// and its peers. One `wg show all dump` (the control sockets are shared by all
/// namespaces); private keys are dropped as they are read.
#[derive(Default)]
struct Tunnels(HashMap<String, (String, Vec<Peer>)>);

/// A peer of an interface, as `wg` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Peer {
    key: String,
    ranges: String,
    /// When the last handshake with it completed (Unix seconds; 0: never).
    handshake: u64,
}

/// WireGuard rejects a session's keys 180 s after its handshake, so a peer
/// with no handshake for longer has no working session; with a keepalive
/// every 25 s, a live tunnel renews its session every two minutes.
const SESSION_SECONDS: u64 = 180;

/// How long `apply` waits for the two ends' first handshake.
const FIRST_HANDSHAKE: Duration = Duration::from_secs(15);

/// Why a peer's session is not working, in plain words; `None` when it is.
fn stale(here: &str, ns: &str, peer: &str, handshake: u64, now: u64) -> Option<String> {
    match now.saturating_sub(handshake) {
        _ if handshake == 0 => Some(format!(
            "WireGuard interface {here} in {ns} has never completed a handshake with {peer}"
        )),
        age if age > SESSION_SECONDS => Some(format!(
            "WireGuard interface {here} in {ns} has had no handshake with {peer} for {age} s (a session lasts {SESSION_SECONDS} s)"
        )),
        _ => None,
    }
}

/// Reads every WireGuard interface of the sites' hosts, one `wg show all
/// dump` per host. What a host could read counts even when one socket is stale
/// (its wireguard-go gone): that interface then shows as missing, not
/// everything as unknown. Private keys are blanked on the host, so they never
/// travel.
async fn tunnels<'a>(sites: impl IntoIterator<Item = &'a Site>) -> Result<Tunnels, ProviderError> {
    let mut hosts: Vec<Site> = Vec::new();
    for site in sites {
        let host = site.host();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let mut out = String::new();
    for host in hosts {
        let line =
            "wg show all dump 2>/dev/null | awk -F'\t' -v OFS='\t' 'NF == 5 { $2 = \"\" } 1'; true";
        out.push_str(&host.on_host("sh", &["-c", line], None).await?);
    }
    let mut all: HashMap<String, (String, Vec<Peer>)> = HashMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.len() {
            // interface, private key (blanked), public key, port, fwmark
            5 => {
                all.entry(f[0].to_owned()).or_default().0 = f[2].to_owned();
            }
            // interface, peer key, preshared, endpoint, allowed ips,
            // latest handshake, received, sent, keepalive
            9 => {
                let peers = &mut all.entry(f[0].to_owned()).or_default().1;
                // Hosts sharing a socket directory (namespaces of one machine)
                // list the same interface more than once.
                if !peers.iter().any(|p| p.key == f[1]) {
                    peers.push(Peer {
                        key: f[1].to_owned(),
                        ranges: f[4].to_owned(),
                        handshake: f[5].parse().unwrap_or(0),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(Tunnels(all))
}

impl Tunnels {
    fn public_key(&self, interface: &str) -> Option<&str> {
        self.0.get(interface).map(|(k, _)| k.as_str())
    }

    fn peers(&self, interface: &str) -> &[Peer] {
        self.0.get(interface).map_or(&[], |(_, p)| p.as_slice())
    }
}

fn same_ranges(a: &str, b: &str) -> bool {
    let set = |t: &str| {
        let mut v: Vec<String> = t
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        v.sort();
        v
    };
    set(a) == set(b)
}

/// The comment of the nftables rule of a firewall item.
fn rule_comment(item: &Item) -> String {
    format!(
        "switchboard {} {} from {}",
        item.param("protocol").unwrap_or("any"),
        item.param("ports").unwrap_or("all ports"),
        item.param("allow_from").unwrap_or_default()
    )
}

fn tunnel_comment(interface: &str) -> String {
    format!("switchboard tunnel {interface}")
}

impl Linux {
    pub fn new(account: &ProviderAccount, all: &[ProviderAccount]) -> Result<Self, String> {
        Ok(Linux {
            account: account.name.clone(),
            endpoints: super::endpoints(all)?,
            ssh: all
                .iter()
                .filter(|a| a.kind == "linux")
                .map(|a| (a.name.clone(), SshOptions::of(a)))
                .collect(),
        })
    }

    /// The site an item's `key` names, reached as its account says: the
    /// item's own network is this account's, a `peer_` one the peer account's.
    fn site(&self, item: &Item, key: &str) -> Result<Site, ProviderError> {
        let account = if key.starts_with("peer_") {
            item.param("peer_account").unwrap_or(&self.account)
        } else {
            &self.account
        };
        let options = self.ssh.get(account).cloned().unwrap_or_default();
        Site::of(item, key, &options)
    }

    fn endpoint(&self, ns: &str) -> Result<&str, ProviderError> {
        self.endpoints.get(ns).map(String::as_str).ok_or_else(|| {
            ProviderError::Permanent(format!(
                "no linux account has an endpoint.{ns} setting: the address where {ns}'s tunnels are reached"
            ))
        })
    }

    async fn tunnel(&self, item: &Item) -> Result<Step, ProviderError> {
        let site = self.site(item, "network_id")?;
        let peer = self.site(item, "peer_network_id")?;
        let own = prefixes(item, "prefixes")?;
        let theirs = prefixes(item, "peer_prefixes")?;
        let (here, there) = (interface(&site.id, &peer.id), interface(&peer.id, &site.id));
        self.endpoint(&site.id)?;
        let present = links(&site).await?;
        let action = if present.contains_key(&here) {
            "found"
        } else {
            start_wireguard(&site, &here).await?;
            // The private key is made and handed over on the host itself.
            let port = listen_port(&site.id, &peer.id).to_string();
            site.on_host(
                "sh",
                &[
                    "-c",
                    "wg genkey | wg set \"$0\" listen-port \"$1\" private-key /dev/stdin",
                    &here,
                    &port,
                ],
                None,
            )
            .await?;
            "created"
        };
        close_tunnel_device(&site, &own, &here, &tunnel_comment(&here)).await?;
        site.ip(&["link", "set", &here, "up"]).await?;
        // Once both ends exist, each gets the other's current key.
        if links(&peer).await?.contains_key(&there) {
            self.pair(&site, &peer, &own, &theirs).await?;
        }
        Ok(Step::new(action, item, Some(format!("{here} in {site}"))))
    }

    /// Makes each end's only peer the other end, with its ranges and address.
    async fn pair(
        &self,
        site: &Site,
        peer: &Site,
        own: &[IpNet],
        theirs: &[IpNet],
    ) -> Result<(), ProviderError> {
        let t = tunnels([site, peer]).await?;
        for (a, b, ranges) in [(site, peer, theirs), (peer, site, own)] {
            let (here, there) = (interface(&a.id, &b.id), interface(&b.id, &a.id));
            let key = t
                .public_key(&there)
                .ok_or_else(|| ProviderError::Transient(format!("{there} has no key yet")))?;
            for old in t.peers(&here).iter().filter(|p| p.key != key) {
                a.on_host("wg", &["set", &here, "peer", &old.key, "remove"], None)
                    .await?;
            }
            let endpoint = format!("{}:{}", self.endpoint(&b.id)?, listen_port(&b.id, &a.id));
            a.on_host(
                "wg",
                &[
                    "set",
                    &here,
                    "peer",
                    key,
                    "allowed-ips",
                    &list(ranges),
                    "endpoint",
                    &endpoint,
                    "persistent-keepalive",
                    "25",
                ],
                None,
            )
            .await?;
        }
        // Built means working: both ends have a session with each other.
        let (here, there) = (interface(&site.id, &peer.id), interface(&peer.id, &site.id));
        let started = tokio::time::Instant::now();
        loop {
            let t = tunnels([site, peer]).await?;
            let shook = |a: &str| {
                let peers = t.peers(a);
                !peers.is_empty() && peers.iter().all(|p| p.handshake != 0)
            };
            if shook(&here) && shook(&there) {
                return Ok(());
            }
            if started.elapsed() > FIRST_HANDSHAKE {
                return Err(ProviderError::Transient(format!(
                    "{here} in {site} and {there} in {peer} completed no handshake within {} s: check that each can reach the other's endpoint ({}:{} and {}:{}) over UDP",
                    FIRST_HANDSHAKE.as_secs(),
                    self.endpoint(&site.id)?,
                    listen_port(&site.id, &peer.id),
                    self.endpoint(&peer.id)?,
                    listen_port(&peer.id, &site.id),
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn route(&self, item: &Item) -> Result<Step, ProviderError> {
        let site = self.site(item, "network_id")?;
        let destination: IpNet = item
            .param("destination")
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| ProviderError::Permanent(format!("{} has no destination", item.name)))?;
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

    async fn rule(&self, item: &Item) -> Result<Step, ProviderError> {
        let site = self.site(item, "network_id")?;
        let from = prefixes(item, "allow_from")?;
        let protocol = item.param("protocol").unwrap_or("any");
        let ports = match item.param("ports") {
            None | Some("all ports") => Vec::new(),
            Some(text) => parse_ports(text).map_err(ProviderError::Permanent)?,
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

    /// Removes one item; whether there was anything to remove.
    async fn remove(&self, item: &Item) -> Result<bool, ProviderError> {
        let site = self.site(item, "network_id")?;
        match item.kind.as_str() {
            INTERFACE => {
                let here = interface(&site.id, &self.site(item, "peer_network_id")?.id);
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
            kinds::ROUTE => {
                let here = route_device(&site.id, item)?;
                let destination = item.param("destination").unwrap_or_default();
                let present = routes(&site)
                    .await?
                    .get(destination)
                    .is_some_and(|dev| *dev == here);
                if present {
                    site.ip(&["route", "del", destination, "dev", &here])
                        .await?;
                }
                Ok(present)
            }
            kinds::FIREWALL_RULE => delete_rules(&site, &rule_comment(item)).await,
            kinds::IPSEC_TUNNEL => ipsec::remove(&site, item).await,
            _ => Ok(false),
        }
    }
}

/// What one namespace has, read once per observation.
struct Namespace {
    links: HashMap<String, bool>,
    routes: HashMap<String, String>,
    rules: Vec<(String, u64, String)>,
    /// Its charon, read only where an item has IPsec tunnels.
    ipsec: Option<ipsec::Daemon>,
}

impl Namespace {
    /// Links, routes and rules in one command (one round trip to a host
    /// over SSH).
    async fn read(site: &Site) -> Result<Namespace, ProviderError> {
        const PART: &str = "--switchboard--";
        let p = site.in_namespace_prefix();
        let line = format!(
            "{p}ip -j link show && echo {PART} && {p}ip -j route show && echo {PART} && {{ {p}nft -j list table inet {TABLE} 2>/dev/null; true; }}"
        );
        let out = site.on_host("sh", &["-c", &line], None).await?;
        let parts: Vec<&str> = out.split(PART).collect();
        let [links, routes, rules] = parts[..] else {
            return Err(ProviderError::Transient(format!(
                "{site} answered an unexpected listing"
            )));
        };
        Ok(Namespace {
            links: parse_links(site, links)?,
            routes: parse_routes(site, routes)?,
            rules: parse_rules(site, rules)?,
            ipsec: None,
        })
    }
}

fn differences(
    item: &Item,
    spaces: &BTreeMap<String, Namespace>,
    t: &Tunnels,
    now: u64,
) -> Vec<String> {
    let Some(ns) = item.param("network_id") else {
        return vec![format!("{} names no network", item.name)];
    };
    let Some(space) = spaces.get(ns) else {
        return vec![format!("{ns} could not be read")];
    };
    let has_rule = |comment: &str| {
        CHAINS.iter().all(|chain| {
            space
                .rules
                .iter()
                .any(|(c, _, m)| c == chain && m == comment)
        })
    };
    match item.kind.as_str() {
        INTERFACE => {
            let peer = item.param("peer_network_id").unwrap_or_default();
            let (here, there) = (interface(ns, peer), interface(peer, ns));
            let mut out = Vec::new();
            match space.links.get(&here) {
                None => return vec![format!("WireGuard interface {here} is missing from {ns}")],
                Some(false) => out.push(format!("WireGuard interface {here} in {ns} is down")),
                Some(true) => {}
            }
            let peers = t.peers(&here);
            let want = item.param("peer_prefixes").unwrap_or_default();
            match (t.public_key(&there), peers) {
                (Some(key), [p]) if p.key == key => {
                    if !same_ranges(&p.ranges, want) {
                        out.push(format!(
                            "WireGuard interface {here} in {ns} carries {}, expected {want}",
                            p.ranges
                        ));
                    }
                    out.extend(stale(&here, ns, peer, p.handshake, now));
                }
                _ => out.push(format!(
                    "WireGuard interface {here} in {ns} does not have {peer}'s current key as its peer"
                )),
            }
            if !has_rule(&tunnel_comment(&here)) {
                out.push(format!(
                    "the nftables rule closing {here} to all but what is opened is missing from {ns}"
                ));
            }
            if !has_rule(REPLIES) {
                out.push(format!(
                    "the nftables rule letting replies back through {here} is missing from {ns}"
                ));
            }
            out
        }
        kinds::ROUTE => {
            let Ok(here) = route_device(ns, item) else {
                return vec![format!("{} names no peer", item.name)];
            };
            let destination = item.param("destination").unwrap_or_default();
            match space.routes.get(destination) {
                Some(dev) if *dev == here => Vec::new(),
                Some(dev) => vec![format!(
                    "route {destination} in {ns} goes to {dev}, expected {here}"
                )],
                None => vec![format!("route {destination} → {here} is missing from {ns}")],
            }
        }
        kinds::IPSEC_TUNNEL => ipsec::differences(ns, item, space.ipsec.as_ref(), &space.rules),
        kinds::FIREWALL_RULE => {
            let comment = rule_comment(item);
            if has_rule(&comment) {
                Vec::new()
            } else {
                vec![format!(
                    "nftables rule {} is missing from {ns}",
                    comment.trim_start_matches("switchboard ")
                )]
            }
        }
        _ => Vec::new(),
    }
}

#[async_trait]
impl Provider for Linux {
    fn kind(&self) -> &'static str {
        "linux"
    }

    async fn apply(&self, _connection_id: Uuid, item: &Item) -> Result<Step, ProviderError> {
        match item.kind.as_str() {
            INTERFACE => self.tunnel(item).await,
            kinds::IPSEC_TUNNEL => {
                let site = self.site(item, "network_id")?;
                ipsec::apply(&site, self.endpoint(&site.id)?, item).await
            }
            kinds::ROUTE => self.route(item).await,
            kinds::FIREWALL_RULE => self.rule(item).await,
            other => Err(ProviderError::Permanent(format!(
                "the linux provider does not build a {other}"
            ))),
        }
    }

    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError> {
        // Each site is read once (links, routes, rules), and every tunnel's
        // keys in one call per host, however many connections there are.
        let mut spaces = BTreeMap::new();
        let mut hosts = std::collections::HashSet::new();
        for item in wanted.iter().flat_map(|w| &w.items) {
            let Ok(site) = self.site(item, "network_id") else {
                continue;
            };
            // The far end of a tunnel is read for its current key.
            if let Ok(peer) = self.site(item, "peer_network_id") {
                hosts.insert(peer.host());
            }
            if spaces.contains_key(&site.id) {
                continue;
            }
            let tunnels = wanted
                .iter()
                .flat_map(|w| &w.items)
                .any(|i| i.kind == kinds::IPSEC_TUNNEL && i.param("network_id") == Some(&site.id));
            let mut space = Namespace::read(&site).await?;
            if tunnels {
                space.ipsec = ipsec::read(&site).await;
            }
            spaces.insert(site.id.clone(), space);
            hosts.insert(site.host());
        }
        let t = tunnels(&hosts).await?;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        Ok(super::seen_each(wanted, |_, item| {
            differences(item, &spaces, &t, now)
        }))
    }

    async fn destroy(
        &self,
        _connection_id: Uuid,
        removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError> {
        let mut steps = Vec::new();
        for removal in removals.iter().rev() {
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
