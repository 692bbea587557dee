//! The path check. AWS lets Switchboard send no packet, so the approved
//! traffic is followed through what the region's API says carries it: the
//! route tables of each end (a more specific route, made by hand, takes part of
//! the traffic elsewhere), what the sending end's security group lets out, and
//! the network ACLs of both ends (stateless; the lowest-numbered matching rule
//! decides). Whatever blocks the traffic is named. The peering or attachment
//! and the receiving group are the connection's own items, already compared.
//!
//! Not followed: the transit gateway's own route table, and the ACLs' return
//! traffic to ephemeral ports.

use super::*;

/// One network ACL that filters the traffic of a VPC's subnets.
#[derive(Clone, Debug)]
pub(super) struct Acl {
    pub(super) id: String,
    /// Tied to subnets (a VPC's default ACL is, to those no other takes).
    pub(super) associated: bool,
    pub(super) entries: Vec<AclEntry>,
}

/// One rule of a network ACL.
#[derive(Clone, Debug)]
pub(super) struct AclEntry {
    pub(super) number: i32,
    pub(super) egress: bool,
    pub(super) allow: bool,
    /// AWS's protocol number ("6", "17", "1"), or "-1" for all.
    pub(super) protocol: String,
    pub(super) cidr: Option<IpNet>,
    pub(super) ports: Option<(u16, u16)>,
}

impl Acl {
    pub(super) fn read(acl: &aws_sdk_ec2::types::NetworkAcl) -> Acl {
        let mut entries: Vec<AclEntry> = acl
            .entries()
            .iter()
            .map(|e| AclEntry {
                number: e.rule_number().unwrap_or(i32::MAX),
                egress: e.egress() == Some(true),
                allow: e.rule_action() == Some(&aws_sdk_ec2::types::RuleAction::Allow),
                protocol: e.protocol().unwrap_or("-1").to_owned(),
                cidr: e.cidr_block().and_then(|c| c.parse().ok()),
                ports: e.port_range().and_then(|r| {
                    Some((u16::try_from(r.from()?).ok()?, u16::try_from(r.to()?).ok()?))
                }),
            })
            .collect();
        entries.sort_by_key(|e| e.number);
        Acl {
            id: acl.network_acl_id().unwrap_or_default().to_owned(),
            associated: !acl.associations().is_empty(),
            entries,
        }
    }
}

/// What a connection lets through: a protocol (`tcp`, `udp`, `icmp`, `any`)
/// and port ranges (none: every port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Traffic {
    pub(super) protocol: String,
    pub(super) ports: Vec<(u16, u16)>,
}

impl Traffic {
    /// The traffic a firewall item opens.
    pub(super) fn of(item: &Item) -> Option<Traffic> {
        let Build::FirewallRule {
            protocol, ports, ..
        } = &item.build
        else {
            return None;
        };
        let ports = opened_ports(ports)
            .ok()?
            .iter()
            .map(|p| (p.from, p.to))
            .collect();
        Some(Traffic {
            protocol: protocol.clone(),
            ports,
        })
    }

    /// AWS's protocol number, or None for every protocol.
    fn number(&self) -> Option<&'static str> {
        match self.protocol.as_str() {
            "tcp" => Some("6"),
            "udp" => Some("17"),
            "icmp" => Some("1"),
            _ => None,
        }
    }

    /// "tcp 443", "udp 53-54", "all traffic"
    pub(super) fn words(&self) -> String {
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|(f, t)| {
                if f == t {
                    f.to_string()
                } else {
                    format!("{f}-{t}")
                }
            })
            .collect();
        match (self.number(), ports.is_empty()) {
            (None, true) => "all traffic".to_owned(),
            (None, false) => format!("ports {}", ports.join(",")),
            (Some(_), true) => self.protocol.clone(),
            (Some(_), false) => format!("{} {}", self.protocol, ports.join(",")),
        }
    }

    /// The traffic one port range at a time: rules are often one per port,
    /// and several together may let through what no single one does.
    fn pieces(&self) -> Vec<Traffic> {
        if self.ports.is_empty() {
            return vec![self.clone()];
        }
        self.ports
            .iter()
            .map(|r| Traffic {
                protocol: self.protocol.clone(),
                ports: vec![*r],
            })
            .collect()
    }

    /// Does `ports` (None: every port) meet any of the traffic's ports?
    fn meets(&self, ports: Option<(u16, u16)>) -> bool {
        match ports {
            None => true,
            Some((from, to)) => {
                self.ports.is_empty() || self.ports.iter().any(|(f, t)| *f <= to && from <= *t)
            }
        }
    }

    /// Does `ports` (None: every port) hold all of the traffic's ports?
    fn held_by(&self, ports: Option<(u16, u16)>) -> bool {
        match ports {
            None => true,
            Some((from, to)) if self.ports.is_empty() => from == 0 && to == u16::MAX,
            Some((from, to)) => self.ports.iter().all(|(f, t)| from <= *f && *t <= to),
        }
    }
}

/// How a network ACL treats traffic to or from `peer`, port range by port
/// range: the first range some rule denies (part of), with that rule. A deny
/// is named when no earlier rule let all of the range through.
pub(super) fn acl_blocks<'a>(
    acl: &'a Acl,
    egress: bool,
    peer: IpNet,
    traffic: &Traffic,
) -> Option<(&'a AclEntry, Traffic)> {
    traffic
        .pieces()
        .into_iter()
        .find_map(|piece| Some((piece_blocked(acl, egress, peer, &piece)?, piece)))
}

fn piece_blocked<'a>(
    acl: &'a Acl,
    egress: bool,
    peer: IpNet,
    traffic: &Traffic,
) -> Option<&'a AclEntry> {
    for entry in acl.entries.iter().filter(|e| e.egress == egress) {
        let Some(cidr) = entry.cidr else { continue };
        let protocol_meets =
            entry.protocol == "-1" || traffic.number().is_none_or(|n| n == entry.protocol);
        let overlaps = cidr.contains(&peer) || peer.contains(&cidr);
        if !(protocol_meets && overlaps && traffic.meets(entry.ports)) {
            continue;
        }
        if !entry.allow {
            return Some(entry);
        }
        let whole = cidr.contains(&peer)
            && (entry.protocol == "-1" || traffic.number() == Some(entry.protocol.as_str()))
            && (entry.protocol == "-1" || traffic.held_by(entry.ports));
        if whole {
            return None;
        }
    }
    // AWS ends every ACL with a rule denying the rest; one without it is
    // read as AWS would apply it.
    acl.entries.iter().rfind(|e| e.egress == egress && !e.allow)
}

/// Does the security group let the traffic out to `to` (each port range by
/// some permission)?
pub(super) fn lets_out(egress: &[Permission], to: IpNet, traffic: &Traffic) -> bool {
    traffic
        .pieces()
        .iter()
        .all(|piece| lets_piece_out(egress, to, piece))
}

fn lets_piece_out(egress: &[Permission], to: IpNet, traffic: &Traffic) -> bool {
    egress.iter().any(|p| {
        let range = p.cidr.parse::<IpNet>().is_ok_and(|c| c.contains(&to));
        let protocol = p.protocol == "-1"
            || p.protocol == traffic.protocol
            || traffic.number() == Some(p.protocol.as_str());
        let ports = p.protocol == "-1"
            || match (p.from, p.to) {
                (Some(f), Some(t)) => u16::try_from(f)
                    .ok()
                    .zip(u16::try_from(t).ok())
                    .is_some_and(|r| traffic.held_by(Some(r))),
                _ => true,
            };
        range && protocol && ports
    })
}

/// Routes more specific than `destination` that send part of it somewhere
/// other than `expected`, in words.
pub(super) fn stolen_by(
    tables: &[(String, Vec<SeenRoute>)],
    destination: IpNet,
    expected: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (table, routes) in tables {
        for (dest, target, blackhole) in routes {
            let Ok(net) = dest.parse::<IpNet>() else {
                continue;
            };
            if net == destination || !destination.contains(&net) {
                continue;
            }
            if *blackhole {
                out.push(format!(
                    "route {net} in {table} drops part of {destination}: its target is gone"
                ));
            } else if target.as_deref() != expected {
                out.push(format!(
                    "route {net} in {table} sends part of {destination} to {}, not to {}",
                    target.as_deref().unwrap_or("nothing"),
                    expected.unwrap_or("the link")
                ));
            }
        }
    }
    out
}

/// What the path check of one connection found in one region.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct PathCheck {
    /// The VPCs whose routes, groups and ACLs were read.
    pub(super) vpcs: BTreeSet<String>,
    /// What blocks the approved traffic, in words.
    pub(super) blocked: Vec<String>,
    /// The traffic followed.
    pub(super) traffic: Vec<Traffic>,
}

impl RegionState {
    /// The path check of a connection's items in this region: every route
    /// (nothing more specific takes part of it, the sending group lets the
    /// traffic out, the sending ACLs let it out) and every firewall item (the
    /// receiving ACLs let it in). None when nothing carries traffic here.
    pub(super) fn path(&self, items: &[&Item]) -> Option<PathCheck> {
        let mut check = PathCheck::default();
        // A link opens the same traffic at both ends: what one end opens is
        // what the other sends.
        for t in items.iter().filter_map(|i| Traffic::of(i)) {
            if !check.traffic.contains(&t) {
                check.traffic.push(t);
            }
        }
        for item in items {
            let Ok(vpc) = vpc(item) else { continue };
            match &item.build {
                Build::Route {
                    destination, via, ..
                } => {
                    let Ok(to) = destination.parse::<IpNet>() else {
                        continue;
                    };
                    check.vpcs.insert(vpc.to_owned());
                    let expected = self.route_target(item, vpc, via);
                    let tables = self.tables.get(vpc).map_or(&[][..], Vec::as_slice);
                    check
                        .blocked
                        .extend(stolen_by(tables, to, expected.as_deref()));
                    for t in &check.traffic {
                        if let Some(group) = self.egress.get(vpc)
                            && !lets_out(group, to, t)
                        {
                            let id = self.groups.get(vpc).map_or("", |g| g.0.as_str());
                            check.blocked.push(format!(
                                "security group {id} of {vpc} does not let {} out to {to}",
                                t.words()
                            ));
                        }
                        check.blocked.extend(self.acl_words(vpc, true, to, t));
                    }
                }
                Build::FirewallRule { allow_from, .. } => {
                    let Some(t) = Traffic::of(item) else { continue };
                    check.vpcs.insert(vpc.to_owned());
                    for from in allow_from.split(',').filter_map(|c| c.trim().parse().ok()) {
                        check.blocked.extend(self.acl_words(vpc, false, from, &t));
                    }
                }
                _ => {}
            }
        }
        (!check.vpcs.is_empty()).then_some(check)
    }

    /// The ACL rules of a VPC that block traffic out to (or in from) `peer`.
    fn acl_words(&self, vpc: &str, egress: bool, peer: IpNet, t: &Traffic) -> Vec<String> {
        let (way, direction) = if egress {
            ("out to", "outbound")
        } else {
            ("in from", "inbound")
        };
        let acls = self.acls.get(vpc).map_or(&[][..], Vec::as_slice);
        // The ACLs of the VPC's subnets; in a VPC without subnets, its default.
        let any_associated = acls.iter().any(|a| a.associated);
        acls.iter()
            .filter(|acl| acl.associated || !any_associated)
            .filter_map(|acl| {
                let (rule, piece) = acl_blocks(acl, egress, peer, t)?;
                Some(format!(
                    "network ACL {} of {vpc} denies {} {way} {peer} ({direction} rule {})",
                    acl.id,
                    piece.words(),
                    if rule.number == 32767 {
                        "*".to_owned()
                    } else {
                        rule.number.to_string()
                    }
                ))
            })
            .collect()
    }
}

/// The path check of every connection whose configuration matches, region
/// by region: blocked → a difference (the connection is unreachable),
/// otherwise a proof of what was followed.
pub(super) fn prove(wanted: &[Wanted], seen: &mut [Seen], regions: &HashMap<&str, RegionState>) {
    let matching = super::super::matching(wanted, seen);
    let mut proved = Vec::new();
    for (n, w) in matching {
        let mut by_region: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
        for item in &w.items {
            by_region.entry(item.build.region()).or_default().push(item);
        }
        for (region, items) in by_region {
            let Some(check) = regions.get(region).and_then(|s| s.path(&items)) else {
                continue;
            };
            proved.push(n);
            if check.blocked.is_empty() {
                let traffic: Vec<String> = check.traffic.iter().map(Traffic::words).collect();
                let unread = regions.get(region).and_then(|s| s.acls_unread.as_deref());
                seen[n].verified.push(format!(
                    "a path check in {region}: the route tables, security groups{} of {} let {} through{}",
                    if unread.is_none() { " and network ACLs" } else { "" },
                    check.vpcs.into_iter().collect::<Vec<_>>().join(" and "),
                    if traffic.is_empty() {
                        "the routed traffic".to_owned()
                    } else {
                        traffic.join(", ")
                    },
                    unread
                        .map(|why| format!(" (network ACLs not checked: {why})"))
                        .unwrap_or_default()
                ));
            } else {
                seen[n].differences.extend(
                    check
                        .blocked
                        .into_iter()
                        .map(|b| format!("the approved traffic does not pass: {b}")),
                );
            }
        }
    }
    super::super::keep_whole_proofs(seen, &proved);
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
