//! Reading a namespace (links, routes, rules, IPsec) and saying how each item
//! differs from what exists.

use super::*;

/// A namespace's links: name → up.
pub(super) async fn links(site: &Site) -> Result<HashMap<String, bool>, ProviderError> {
    parse_links(site, &site.ip(&["-j", "link", "show"]).await?)
}

pub(super) fn parse_links(site: &Site, out: &str) -> Result<HashMap<String, bool>, ProviderError> {
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
pub(super) async fn routes(site: &Site) -> Result<HashMap<String, String>, ProviderError> {
    parse_routes(site, &site.ip(&["-j", "route", "show"]).await?)
}

pub(super) fn parse_routes(
    site: &Site,
    out: &str,
) -> Result<HashMap<String, String>, ProviderError> {
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

/// What one namespace has, read once per observation.
pub(super) struct Namespace {
    pub(super) links: HashMap<String, bool>,
    pub(super) routes: HashMap<String, String>,
    pub(super) rules: Vec<(String, u64, String)>,
    /// Its charon, read only where an item has IPsec tunnels.
    pub(super) ipsec: Option<ipsec::Daemon>,
}

impl Namespace {
    /// Links, routes and rules in one command (one round trip to a host
    /// over SSH).
    pub(super) async fn read(site: &Site) -> Result<Namespace, ProviderError> {
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

pub(super) fn differences(
    item: &Item,
    spaces: &BTreeMap<String, Namespace>,
    t: &Tunnels,
    now: u64,
) -> Vec<String> {
    let Some(ns) = item.build.network().and_then(|n| n.id.as_deref()) else {
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
    match &item.build {
        Build::WireguardInterface {
            peer,
            peer_prefixes,
            ..
        } => {
            let peer = peer.id.as_deref().unwrap_or_default();
            let (here, there) = (interface(ns, peer), interface(peer, ns));
            let mut out = Vec::new();
            match space.links.get(&here) {
                None => return vec![format!("WireGuard interface {here} is missing from {ns}")],
                Some(false) => out.push(format!("WireGuard interface {here} in {ns} is down")),
                Some(true) => {}
            }
            let peers = t.peers(&here);
            let want = &peer_prefixes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
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
        Build::Route { destination, .. } => {
            let Ok(here) = route_device(ns, item) else {
                return vec![format!("{} names no peer", item.name)];
            };
            match space.routes.get(destination.as_str()) {
                Some(dev) if *dev == here => Vec::new(),
                Some(dev) => vec![format!(
                    "route {destination} in {ns} goes to {dev}, expected {here}"
                )],
                None => vec![format!("route {destination} → {here} is missing from {ns}")],
            }
        }
        Build::IpsecTunnel { .. } => {
            ipsec::differences(ns, item, space.ipsec.as_ref(), &space.rules)
        }
        Build::FirewallRule { .. } => {
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
