//! WireGuard tunnels between managed hosts: one interface per end, keys made
//! on the host itself, the peers' handshakes read to tell a working session.

use super::*;

pub(super) fn interface(ns: &str, peer: &str) -> String {
    format!("sb{:08x}", fnv1a(format!("{ns}|{peer}").as_bytes()))
}

pub(super) fn listen_port(ns: &str, peer: &str) -> u16 {
    40_000 + (fnv1a(format!("{ns}|{peer}").as_bytes()) % 20_000) as u16
}

/// The control socket of a wireguard-go interface; wireguard-go exits (and its
/// interface goes) when the socket is deleted.
pub(super) fn control_socket(interface: &str) -> String {
    format!("/var/run/wireguard/{interface}.sock")
}

/// Stops the wireguard-go of an interface, if one runs on the site's host.
pub(super) async fn stop_wireguard(site: &Site, interface: &str) -> Result<(), ProviderError> {
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
pub(super) async fn start_wireguard(site: &Site, interface: &str) -> Result<(), ProviderError> {
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
pub(super) async fn own_address(
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
pub(super) async fn close_tunnel_device(
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

/// What every userspace WireGuard interface of the host has: its public key
/// and its peers. One `wg show all dump` (the control sockets are shared by all
/// namespaces); private keys are dropped as they are read.
#[derive(Default)]
pub(super) struct Tunnels(pub(super) HashMap<String, (String, Vec<Peer>)>);

/// A peer of an interface, as `wg` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Peer {
    pub(super) key: String,
    pub(super) ranges: String,
    /// When the last handshake with it completed (Unix seconds; 0: never).
    pub(super) handshake: u64,
}

/// WireGuard rejects a session's keys 180 s after its handshake, so a peer
/// with no handshake for longer has no working session; with a keepalive
/// every 25 s, a live tunnel renews its session every two minutes.
pub(super) const SESSION_SECONDS: u64 = 180;

/// How long `apply` waits for the two ends' first handshake.
pub(super) const FIRST_HANDSHAKE: Duration = Duration::from_secs(15);

/// Why a peer's session is not working, in plain words; `None` when it is.
pub(super) fn stale(here: &str, ns: &str, peer: &str, handshake: u64, now: u64) -> Option<String> {
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
pub(super) async fn tunnels<'a>(
    sites: impl IntoIterator<Item = &'a Site>,
) -> Result<Tunnels, ProviderError> {
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
    pub(super) fn public_key(&self, interface: &str) -> Option<&str> {
        self.0.get(interface).map(|(k, _)| k.as_str())
    }

    pub(super) fn peers(&self, interface: &str) -> &[Peer] {
        self.0.get(interface).map_or(&[], |(_, p)| p.as_slice())
    }
}

pub(super) fn same_ranges(a: &str, b: &str) -> bool {
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

pub(super) fn tunnel_comment(interface: &str) -> String {
    format!("switchboard tunnel {interface}")
}

impl Linux {
    pub(super) async fn tunnel(&self, item: &Item) -> Result<Step, ProviderError> {
        let site = self.site(item)?;
        let peer = self.peer_site(item)?;
        let (own, theirs) = tunnel_prefixes(item)?;
        let (here, there) = (interface(&site.id, &peer.id), interface(&peer.id, &site.id));
        let endpoints = [
            self.endpoint(&site.id, item.build.network())?,
            self.endpoint(&peer.id, item.build.peer())?,
        ];
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
            self.pair([&site, &peer], endpoints, &own, &theirs).await?;
        }
        Ok(Step::new(action, item, Some(format!("{here} in {site}"))))
    }

    /// Makes each end's only peer the other end, with its ranges and address
    /// (`endpoints`: where each end's tunnels are reached).
    pub(super) async fn pair(
        &self,
        [site, peer]: [&Site; 2],
        endpoints: [&str; 2],
        own: &[IpNet],
        theirs: &[IpNet],
    ) -> Result<(), ProviderError> {
        let t = tunnels([site, peer]).await?;
        for (a, b, b_endpoint, ranges) in [
            (site, peer, endpoints[1], theirs),
            (peer, site, endpoints[0], own),
        ] {
            let (here, there) = (interface(&a.id, &b.id), interface(&b.id, &a.id));
            let key = t
                .public_key(&there)
                .ok_or_else(|| ProviderError::Transient(format!("{there} has no key yet")))?;
            for old in t.peers(&here).iter().filter(|p| p.key != key) {
                a.on_host("wg", &["set", &here, "peer", &old.key, "remove"], None)
                    .await?;
            }
            let endpoint = format!("{b_endpoint}:{}", listen_port(&b.id, &a.id));
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
                    endpoints[0],
                    listen_port(&site.id, &peer.id),
                    endpoints[1],
                    listen_port(&peer.id, &site.id),
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
