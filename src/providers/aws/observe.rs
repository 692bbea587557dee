//! Observing a region in a few filtered, paginated reads, and saying how each
//! item differs from what exists.

use super::*;

impl Aws {
    /// The region's VPNs that items name (one filtered read), and the static
    /// routes of their gateways' tables (one read per gateway).
    pub(super) async fn read_vpns(
        &self,
        ec2: &Client,
        region: &str,
        wanted: &[Wanted],
        state: &mut RegionState,
    ) -> Result<(), ProviderError> {
        let items: Vec<&Item> = wanted
            .iter()
            .flat_map(|w| &w.items)
            .filter(|i| {
                matches!(i.build, Build::SiteToSiteVpn { .. }) && i.build.region() == region
            })
            .collect();
        let names: BTreeSet<&str> = items.iter().map(|i| i.name.as_str()).collect();
        let names: Vec<&str> = names.into_iter().collect();
        for chunk in names.chunks(FILTER_VALUES) {
            let found = ec2
                .describe_vpn_connections()
                .filters(filter(&format!("tag:{ITEM_TAG}"), chunk.iter().copied()))
                .send()
                .await
                .map_err(|e| refused("read the VPNs", e))?;
            state.vpns.extend(found.vpn_connections().iter().cloned());
        }
        let gateways: BTreeSet<&str> = items.iter().filter_map(|i| gateway(i).ok()).collect();
        for tgw in gateways {
            let table = self.gateway_table(ec2, region, tgw).await?;
            let routes = static_routes(ec2, &table).await?;
            state.gateway_routes.insert(tgw.to_owned(), (table, routes));
        }
        Ok(())
    }
}

/// A transit gateway's static route: destination and attachment (when AWS says).
pub(super) type GatewayRoute = (String, Option<String>);

/// A route as observed: destination, target, and whether it is a blackhole.
pub(super) type SeenRoute = (String, Option<String>, bool);

/// What exists in one region around the VPCs being observed.
#[derive(Default)]
pub(super) struct RegionState {
    /// (id, requester VPC, accepter VPC, state)
    pub(super) peerings: Vec<(String, String, String, Option<PeeringState>)>,
    /// VPC → its route tables and their routes
    pub(super) tables: HashMap<String, Vec<(String, Vec<SeenRoute>)>>,
    /// VPC → its default security group and the ingress it allows
    pub(super) groups: HashMap<String, (String, Vec<Permission>)>,
    /// VPC → what its default security group lets out
    pub(super) egress: HashMap<String, Vec<Permission>>,
    /// VPC → its network ACLs that apply to subnets
    pub(super) acls: HashMap<String, Vec<Acl>>,
    /// Why the network ACLs could not be read, when AWS refused it.
    pub(super) acls_unread: Option<String>,
    /// (id, transit gateway, VPC, state)
    pub(super) attachments: Vec<(
        String,
        String,
        String,
        Option<TransitGatewayAttachmentState>,
    )>,
    /// VPNs Switchboard made, as AWS describes them
    pub(super) vpns: Vec<VpnConnection>,
    /// transit gateway → its route table and that table's static routes
    pub(super) gateway_routes: HashMap<String, (String, Vec<GatewayRoute>)>,
    /// Built networks' VPCs → the ranges associated with them
    pub(super) vpcs: HashMap<String, Vec<String>>,
    /// Built networks' VPCs → their subnets (range, zone)
    pub(super) subnets: HashMap<String, Vec<(String, String)>>,
}

/// AWS caps the values of one filter at 200.
pub(super) const FILTER_VALUES: usize = 200;

pub(super) async fn read_region(ec2: &Client, vpcs: &[&str]) -> Result<RegionState, ProviderError> {
    let mut state = RegionState::default();
    let mut seen_peerings = BTreeSet::new();
    for chunk in vpcs.chunks(FILTER_VALUES) {
        for side in ["requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id"] {
            let mut pages = ec2
                .describe_vpc_peering_connections()
                .filters(filter(side, chunk.iter().copied()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| refused("read the peerings", e))?;
                for p in page.vpc_peering_connections() {
                    let id = p.vpc_peering_connection_id().unwrap_or_default().to_owned();
                    if seen_peerings.insert(id.clone()) {
                        let vpc = |v: Option<&aws_sdk_ec2::types::VpcPeeringConnectionVpcInfo>| {
                            v.and_then(|v| v.vpc_id()).unwrap_or_default().to_owned()
                        };
                        state.peerings.push((
                            id,
                            vpc(p.requester_vpc_info()),
                            vpc(p.accepter_vpc_info()),
                            p.status().and_then(|s| s.code()).cloned(),
                        ));
                    }
                }
            }
        }
        let mut pages = ec2
            .describe_route_tables()
            .filters(filter("vpc-id", chunk.iter().copied()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| refused("read the route tables", e))?;
            for t in page.route_tables() {
                let routes = t.routes().iter().filter_map(seen_route).collect();
                state
                    .tables
                    .entry(t.vpc_id().unwrap_or_default().to_owned())
                    .or_default()
                    .push((t.route_table_id().unwrap_or_default().to_owned(), routes));
            }
        }
        let mut pages = ec2
            .describe_security_groups()
            .filters(filter("vpc-id", chunk.iter().copied()))
            .filters(filter("group-name", ["default"]))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| refused("read the security groups", e))?;
            for g in page.security_groups() {
                let vpc = g.vpc_id().unwrap_or_default().to_owned();
                state.egress.insert(vpc.clone(), egress(g));
                state.groups.insert(
                    vpc,
                    (g.group_id().unwrap_or_default().to_owned(), ingress(g)),
                );
            }
        }
        let mut pages = ec2
            .describe_network_acls()
            .filters(filter("vpc-id", chunk.iter().copied()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            // An account whose credentials may not read ACLs (granted before
            // the path check read them) is still observed: the check says
            // what it could not look at.
            let page = match page.map_err(|e| refused("read the network ACLs", e)) {
                Ok(page) => page,
                Err(ProviderError::Permanent(why)) => {
                    state.acls_unread = Some(why);
                    break;
                }
                Err(e) => return Err(e),
            };
            for acl in page.network_acls() {
                // An ACL tied to no subnet (and not the default) filters nothing.
                if acl.is_default() == Some(true) || !acl.associations().is_empty() {
                    state
                        .acls
                        .entry(acl.vpc_id().unwrap_or_default().to_owned())
                        .or_default()
                        .push(Acl::read(acl));
                }
            }
        }
        let mut pages = ec2
            .describe_transit_gateway_vpc_attachments()
            .filters(filter("vpc-id", chunk.iter().copied()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| refused("read the transit gateway attachments", e))?;
            for a in page.transit_gateway_vpc_attachments() {
                state.attachments.push((
                    a.transit_gateway_attachment_id()
                        .unwrap_or_default()
                        .to_owned(),
                    a.transit_gateway_id().unwrap_or_default().to_owned(),
                    a.vpc_id().unwrap_or_default().to_owned(),
                    a.state().cloned(),
                ));
            }
        }
    }
    Ok(state)
}

/// A route as read: destination, target, blackhole.
pub(super) fn seen_route(r: &aws_sdk_ec2::types::Route) -> Option<SeenRoute> {
    let target = r
        .vpc_peering_connection_id()
        .or(r.transit_gateway_id())
        .or(r.gateway_id())
        .or(r.nat_gateway_id())
        .or(r.network_interface_id())
        .map(str::to_owned);
    let blackhole = r.state() == Some(&RouteState::Blackhole);
    Some((r.destination_cidr_block()?.to_owned(), target, blackhole))
}

pub(super) fn peering_gone(state: Option<&PeeringState>) -> bool {
    matches!(
        state,
        Some(
            PeeringState::Deleted
                | PeeringState::Deleting
                | PeeringState::Rejected
                | PeeringState::Failed
                | PeeringState::Expired
        )
    )
}

impl RegionState {
    /// The peering of two VPCs: a live one if any, else the last one seen.
    pub(super) fn peering(
        &self,
        vpc: &str,
        peer: &str,
    ) -> Option<&(String, String, String, Option<PeeringState>)> {
        let between = |p: &&(String, String, String, Option<PeeringState>)| {
            (p.1 == vpc && p.2 == peer) || (p.1 == peer && p.2 == vpc)
        };
        self.peerings
            .iter()
            .filter(between)
            .find(|p| !peering_gone(p.3.as_ref()))
            .or_else(|| self.peerings.iter().rfind(between))
    }

    /// How a VPN differs from what it should be: gone, not available, a
    /// tunnel AWS reports down, an on-prem range no longer routed to it.
    pub(super) fn vpn_differences(&self, item: &Item) -> Vec<String> {
        let tgw = gateway(item).unwrap_or_default();
        let Some(vpn) = self.vpns.iter().find(|v| {
            v.transit_gateway_id() == Some(tgw)
                && v.tags()
                    .iter()
                    .any(|t| t.key() == Some(ITEM_TAG) && t.value() == Some(&item.name))
                && !matches!(v.state(), Some(VpnState::Deleted | VpnState::Deleting))
        }) else {
            return vec![format!(
                "the site-to-site VPN {} on {tgw} is missing",
                item.name
            )];
        };
        let id = vpn.vpn_connection_id().unwrap_or_default();
        if vpn.state() != Some(&VpnState::Available) {
            return vec![format!(
                "VPN {id} is `{}`, expected `available`",
                vpn.state().map_or("unknown", |s| s.as_str())
            )];
        }
        let mut out: Vec<String> = vpn
            .vgw_telemetry()
            .iter()
            .filter(|t| t.status() == Some(&TelemetryStatus::Down))
            .map(|t| {
                format!(
                    "tunnel {} of VPN {id} is DOWN{}",
                    t.outside_ip_address().unwrap_or("?"),
                    t.status_message()
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        if let Some((table, routes)) = self.gateway_routes.get(tgw) {
            for prefix in peer_prefixes(item).iter().map(ToString::to_string) {
                if !routes.iter().any(|(d, _)| *d == prefix) {
                    out.push(format!("route {prefix} → VPN {id} is missing from {table}"));
                }
            }
        }
        out
    }

    /// Where a route should send its traffic: the gateway it names, or the
    /// live peering of its two VPCs (none when that peering is missing).
    pub(super) fn route_target(&self, item: &Item, vpc: &str, via: &str) -> Option<String> {
        if through_gateway(item) {
            Some(via.to_owned())
        } else {
            let peer = peer_vpc(item).unwrap_or_default();
            self.peering(vpc, peer)
                .filter(|p| !peering_gone(p.3.as_ref()))
                .map(|p| p.0.clone())
        }
    }

    /// How an item differs from what exists, in plain words.
    pub(super) fn differences(&self, item: &Item) -> Vec<String> {
        match item.build {
            Build::SiteToSiteVpn { .. } => return self.vpn_differences(item),
            Build::Network { .. } => return self.network_differences(item),
            _ => {}
        }
        let Ok(vpc) = vpc(item) else {
            return Vec::new();
        };
        match &item.build {
            Build::Peering { .. } => {
                let peer = peer_vpc(item).unwrap_or_default();
                match self.peering(vpc, peer) {
                    None => vec![format!("the peering of {vpc} and {peer} is missing")],
                    Some((id, _, _, state)) => match state {
                        Some(PeeringState::Active) => Vec::new(),
                        other => vec![format!(
                            "peering {id} is `{}`, expected `active`",
                            other.as_ref().map_or("unknown", |s| s.as_str())
                        )],
                    },
                }
            }
            Build::TransitGatewayAttachment { .. } => {
                let tgw = gateway(item).unwrap_or_default();
                let mine = |a: &&(
                    String,
                    String,
                    String,
                    Option<TransitGatewayAttachmentState>,
                )| { a.1 == tgw && a.2 == vpc };
                let live = self
                    .attachments
                    .iter()
                    .filter(mine)
                    .find(|a| a.3 == Some(TransitGatewayAttachmentState::Available));
                match (live, self.attachments.iter().rfind(mine)) {
                    (Some(_), _) => Vec::new(),
                    (None, Some((id, _, _, state))) => vec![format!(
                        "attachment {id} of {vpc} to {tgw} is `{}`, expected `available`",
                        state.as_ref().map_or("unknown", |s| s.as_str())
                    )],
                    (None, None) => vec![format!("the attachment of {vpc} to {tgw} is missing")],
                }
            }
            Build::Route {
                destination, via, ..
            } => {
                let expected = self.route_target(item, vpc, via);
                let expected_text = expected
                    .clone()
                    .unwrap_or_else(|| "the peering (missing)".to_owned());
                let Some(tables) = self.tables.get(vpc) else {
                    return vec![format!("{vpc} has no route table (is the VPC gone?)")];
                };
                tables
                    .iter()
                    .filter_map(|(table, routes)| {
                        match routes.iter().find(|(d, _, _)| d == destination) {
                            None => Some(format!(
                                "route {destination} → {expected_text} missing from {table}"
                            )),
                            Some((_, _, true)) => Some(format!(
                                "route {destination} in {table} is a blackhole: its target is gone"
                            )),
                            Some((_, target, false)) if *target != expected => Some(format!(
                                "route {destination} in {table} goes to {}, expected {expected_text}",
                                target.as_deref().unwrap_or("nothing")
                            )),
                            Some(_) => None,
                        }
                    })
                    .collect()
            }
            Build::FirewallRule { .. } => {
                let Some((group, present)) = self.groups.get(vpc) else {
                    return vec![format!(
                        "{vpc} has no default security group (is the VPC gone?)"
                    )];
                };
                match permissions(item) {
                    Err(e) => vec![e.to_string()],
                    Ok(wanted) => wanted
                        .iter()
                        .filter(|p| !present.contains(p))
                        .map(|p| format!("security group {group} does not allow {}", p.words()))
                        .collect(),
                }
            }
            _ => Vec::new(),
        }
    }
}
