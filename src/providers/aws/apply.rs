//! Building each kind of item: found by what it is first, made (and tagged
//! with the connection) only when missing.

use super::*;

impl Aws {
    pub(super) async fn peering(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (vpc(item)?, region(item)?);
        let peer_vpc = peer_vpc(item)?;
        let peer = item.build.peer().ok_or_else(|| lacks(item, "peer"))?;
        let peer_region = Some(peer.region.as_str())
            .filter(|r| !r.is_empty())
            .unwrap_or(region);
        let peer_account = Some(peer.account.as_str())
            .filter(|a| !a.is_empty())
            .unwrap_or(&self.account);
        let ec2 = self.ec2(&self.account, region)?;
        let (id, state, action) = match live_peering(&ec2, vpc, peer_vpc).await? {
            Some((id, state)) => (id, state, "found"),
            None => {
                let mut ask = ec2
                    .create_vpc_peering_connection()
                    .vpc_id(vpc)
                    .peer_vpc_id(peer_vpc)
                    .tag_specifications(tags(ResourceType::VpcPeeringConnection, conn, item));
                if peer_region != region {
                    ask = ask.peer_region(peer_region);
                }
                if peer_account != self.account {
                    let owner = self.site(peer_account)?.account_id.clone().ok_or_else(|| {
                        ProviderError::Permanent(format!(
                            "the aws account {peer_account} has no account_id setting, which a peering from another account needs"
                        ))
                    })?;
                    ask = ask.peer_owner_id(owner);
                }
                let made = ask.send().await.map_err(|e| {
                    refused(&format!("create a peering from {vpc} to {peer_vpc}"), e)
                })?;
                let pcx = made.vpc_peering_connection().ok_or_else(|| {
                    ProviderError::Transient("AWS answered without the new peering".into())
                })?;
                let state = pcx.status().and_then(|s| s.code()).cloned();
                let id = pcx
                    .vpc_peering_connection_id()
                    .unwrap_or_default()
                    .to_owned();
                (id, state, "created")
            }
        };
        match state {
            Some(PeeringState::Active) | Some(PeeringState::Provisioning) => {}
            // The other side accepts, with its own credentials, in its own region.
            _ => {
                self.ec2(peer_account, peer_region)?
                    .accept_vpc_peering_connection()
                    .vpc_peering_connection_id(&id)
                    .send()
                    .await
                    .map_err(|e| refused(&format!("accept the peering {id}"), e))?;
            }
        }
        Ok(Step::new(action, item, Some(id)))
    }

    pub(super) async fn attachment(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (vpc(item)?, region(item)?);
        let tgw = gateway(item)?;
        let ec2 = self.ec2(&self.account, region)?;
        let (id, action) = match live_attachment(&ec2, tgw, vpc).await? {
            Some(id) => (id, "found"),
            None => {
                let subnets = ec2
                    .describe_subnets()
                    .filters(filter("vpc-id", [vpc]))
                    .send()
                    .await
                    .map_err(|e| refused(&format!("list the subnets of {vpc}"), e))?;
                // One subnet per availability zone, as AWS requires.
                let mut zones = HashMap::new();
                for s in subnets.subnets() {
                    if let (Some(zone), Some(id)) = (s.availability_zone(), s.subnet_id()) {
                        zones
                            .entry(zone.to_owned())
                            .or_insert_with(|| id.to_owned());
                    }
                }
                if zones.is_empty() {
                    return Err(ProviderError::Permanent(format!(
                        "{vpc} has no subnet, and a transit gateway attaches to subnets: add one to the VPC"
                    )));
                }
                let mut ask = ec2
                    .create_transit_gateway_vpc_attachment()
                    .transit_gateway_id(tgw)
                    .vpc_id(vpc)
                    .tag_specifications(tags(ResourceType::TransitGatewayAttachment, conn, item));
                for subnet in zones.into_values() {
                    ask = ask.subnet_ids(subnet);
                }
                let made = ask
                    .send()
                    .await
                    .map_err(|e| refused(&format!("attach {vpc} to {tgw}"), e))?;
                let id = made
                    .transit_gateway_vpc_attachment()
                    .and_then(|a| a.transit_gateway_attachment_id())
                    .ok_or_else(|| {
                        ProviderError::Transient("AWS answered without the new attachment".into())
                    })?;
                (id.to_owned(), "created")
            }
        };
        // With a route table named for the region, the attachment is associated
        // with it and propagates its VPC's ranges; otherwise the gateway's
        // default association and propagation do it.
        if let Some(table) = self.site(&self.account)?.route_tables.get(region) {
            let associated = ec2
                .associate_transit_gateway_route_table()
                .transit_gateway_route_table_id(table)
                .transit_gateway_attachment_id(&id)
                .send()
                .await;
            already_ok(associated, "Resource.AlreadyAssociated", || {
                format!("associate {id} with {table}")
            })?;
            let propagated = ec2
                .enable_transit_gateway_route_table_propagation()
                .transit_gateway_route_table_id(table)
                .transit_gateway_attachment_id(&id)
                .send()
                .await;
            already_ok(
                propagated,
                "TransitGatewayRouteTablePropagation.Duplicate",
                || format!("propagate the routes of {id} to {table}"),
            )?;
        }
        Ok(Step::new(action, item, Some(id)))
    }

    /// The transit gateway route table that routes to on-prem ranges: the one
    /// named for the region, else the gateway's default association table.
    pub(super) async fn gateway_table(
        &self,
        ec2: &Client,
        region: &str,
        tgw: &str,
    ) -> Result<String, ProviderError> {
        if let Some(table) = self.site(&self.account)?.route_tables.get(region) {
            return Ok(table.clone());
        }
        let found = ec2
            .describe_transit_gateways()
            .transit_gateway_ids(tgw)
            .send()
            .await
            .map_err(|e| refused(&format!("read the transit gateway {tgw}"), e))?;
        found
            .transit_gateways()
            .iter()
            .find_map(|g| g.options()?.association_default_route_table_id())
            .map(str::to_owned)
            .ok_or_else(|| {
                ProviderError::Permanent(format!(
                    "{tgw} has no default route table: set transit_gateway_route_table.{region} on the account"
                ))
            })
    }

    /// A VPN from the transit gateway to an on-prem network's endpoint; hands
    /// its tunnels (AWS's outside address and pre-shared key of each) to the
    /// on-prem end.
    pub(super) async fn vpn(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (region, tgw) = (region(item)?, gateway(item)?);
        let peer = item
            .build
            .peer()
            .ok_or_else(|| lacks(item, "on-prem end"))?;
        let on_prem = peer.id.as_deref().ok_or_else(|| {
            ProviderError::Permanent(format!(
                "{} needs the namespace of {}: register the on-prem network with its namespace as external_id",
                item.name, peer.name
            ))
        })?;
        let address = self.endpoints.get(on_prem).ok_or_else(|| {
            ProviderError::Permanent(format!(
                "no linux account has an endpoint.{on_prem} setting: the address where {on_prem}'s VPN tunnels end"
            ))
        })?;
        let ec2 = self.ec2(&self.account, region)?;
        let (vpn, action) = match live_vpn(&ec2, tgw, &item.name).await? {
            Some(vpn) => (vpn, "found"),
            None => {
                let gateway = ec2
                    .create_customer_gateway()
                    .r#type(GatewayType::Ipsec1)
                    .ip_address(address)
                    .bgp_asn(65000)
                    .tag_specifications(tags(ResourceType::CustomerGateway, conn, item))
                    .send()
                    .await
                    .map_err(|e| refused(&format!("make a customer gateway at {address}"), e))?;
                let gateway = gateway
                    .customer_gateway()
                    .and_then(|g| g.customer_gateway_id())
                    .ok_or_else(|| {
                        ProviderError::Transient("AWS answered without the customer gateway".into())
                    })?;
                let made = ec2
                    .create_vpn_connection()
                    .r#type("ipsec.1")
                    .customer_gateway_id(gateway)
                    .transit_gateway_id(tgw)
                    .options(
                        VpnConnectionOptionsSpecification::builder()
                            .static_routes_only(true)
                            .build(),
                    )
                    .tag_specifications(tags(ResourceType::VpnConnection, conn, item))
                    .send()
                    .await
                    .map_err(|e| refused(&format!("make a VPN from {tgw} to {address}"), e))?;
                let vpn = made.vpn_connection().cloned().ok_or_else(|| {
                    ProviderError::Transient("AWS answered without the VPN".into())
                })?;
                (vpn, "created")
            }
        };
        let id = vpn.vpn_connection_id().unwrap_or_default().to_owned();
        if vpn.state() != Some(&VpnState::Available) {
            return Err(ProviderError::Transient(format!(
                "the VPN {id} is `{}` in AWS, not yet available (this takes a few minutes)",
                vpn.state().map_or("unknown", |s| s.as_str())
            )));
        }
        // The on-prem ranges go to the VPN's attachment in the gateway's table.
        let attachment = vpn_attachment(&ec2, &id).await?.ok_or_else(|| {
            ProviderError::Transient(format!("{tgw} has no attachment for the VPN {id} yet"))
        })?;
        let table = self.gateway_table(&ec2, region, tgw).await?;
        let present = static_routes(&ec2, &table).await?;
        for prefix in peer_prefixes(item).iter().map(ToString::to_string) {
            let prefix = prefix.as_str();
            match present.iter().find(|(d, _)| d == prefix) {
                Some((_, to)) if to.is_none() || to.as_deref() == Some(attachment.as_str()) => {
                    continue;
                }
                Some((_, Some(other))) => {
                    return Err(ProviderError::Permanent(format!(
                        "{table} already routes {prefix} to {other}: remove that route, or ask for a network that does not overlap"
                    )));
                }
                _ => {}
            }
            let made = ec2
                .create_transit_gateway_route()
                .transit_gateway_route_table_id(&table)
                .destination_cidr_block(prefix)
                .transit_gateway_attachment_id(&attachment)
                .send()
                .await;
            already_ok(made, "RouteAlreadyExists", || {
                format!("route {prefix} to {attachment} in {table}")
            })?;
        }
        let tunnels = tunnels_of(&vpn);
        if tunnels.is_empty() {
            return Err(ProviderError::Transient(format!(
                "AWS gave no tunnel configuration for the VPN {id} yet"
            )));
        }
        let mut step = Step::new(
            action,
            item,
            Some(format!(
                "{id}, {}",
                vpn.customer_gateway_id().unwrap_or_default()
            )),
        );
        step.handoff.tunnels = tunnels
            .into_iter()
            .map(|(address, psk)| Tunnel { address, psk })
            .collect();
        Ok(step)
    }

    /// Where a route of this item goes: the transit gateway, or the peering
    /// between the two VPCs (found by its ends, which both sides can see).
    pub(super) async fn route_target(
        &self,
        ec2: &Client,
        item: &Item,
    ) -> Result<Target, ProviderError> {
        let vpc = vpc(item)?;
        if through_gateway(item) {
            return Ok(Target::TransitGateway(route_of(item)?.1.to_owned()));
        }
        let peer = peer_vpc(item)?;
        let mut ids = Vec::new();
        let mut live = None;
        for (id, state) in peerings_between(ec2, vpc, peer).await? {
            if matches!(
                state,
                Some(PeeringState::Active | PeeringState::Provisioning)
            ) {
                live = Some(id.clone());
            }
            ids.push(id);
        }
        Ok(Target::Peering { live, any: ids })
    }

    pub(super) async fn route(&self, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (vpc(item)?, region(item)?);
        let (destination, _) = route_of(item)?;
        let ec2 = self.ec2(&self.account, region)?;
        let target = self.route_target(&ec2, item).await?;
        let Some(via) = target.live() else {
            return Err(ProviderError::Transient(format!(
                "the peering of {vpc} is not active yet"
            )));
        };
        let tables = route_tables(&ec2, vpc).await?;
        if tables.is_empty() {
            return Err(ProviderError::Permanent(format!(
                "{vpc} has no route table"
            )));
        }
        let mut created = false;
        for (table, routes) in &tables {
            match routes.iter().find(|(d, _)| d == destination) {
                Some((_, Some(t))) if t == via => continue,
                // Through an earlier peering of the two VPCs, since deleted: repoint it.
                Some((_, Some(t))) if target.is(t) => {
                    ec2.replace_route()
                        .route_table_id(table)
                        .destination_cidr_block(destination)
                        .vpc_peering_connection_id(via)
                        .send()
                        .await
                        .map_err(|e| {
                            refused(
                                &format!("point the route {destination} in {table} at {via}"),
                                e,
                            )
                        })?;
                    created = true;
                    continue;
                }
                Some((_, other)) => {
                    return Err(ProviderError::Permanent(format!(
                        "{table} already routes {destination} to {}: remove that route, or ask for a network that does not overlap",
                        other.as_deref().unwrap_or("something else")
                    )));
                }
                None => {}
            }
            let mut ask = ec2
                .create_route()
                .route_table_id(table)
                .destination_cidr_block(destination);
            ask = match &target {
                Target::TransitGateway(tgw) => ask.transit_gateway_id(tgw),
                Target::Peering { .. } => ask.vpc_peering_connection_id(via),
            };
            let made = ask.send().await;
            // A route made by a run that died before recording it.
            already_ok(made, "RouteAlreadyExists", || {
                format!("add the route {destination} → {via} to {table}")
            })?;
            created = true;
        }
        Ok(Step::new(
            if created { "created" } else { "found" },
            item,
            Some(
                tables
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ))
    }

    pub(super) async fn rule(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (vpc(item)?, region(item)?);
        let ec2 = self.ec2(&self.account, region)?;
        let (group, present) = security_group(&ec2, vpc).await?;
        let wanted = permissions(item)?;
        let missing: Vec<&Permission> = wanted.iter().filter(|p| !present.contains(p)).collect();
        if !missing.is_empty() {
            let mut ask = ec2.authorize_security_group_ingress().group_id(&group);
            for p in &missing {
                ask = ask.ip_permissions(p.to_aws(&description(conn)));
            }
            let made = ask.send().await;
            already_ok(made, "InvalidPermission.Duplicate", || {
                format!("open {group} to {}", item.name)
            })?;
        }
        Ok(Step::new(
            if missing.is_empty() {
                "found"
            } else {
                "created"
            },
            item,
            Some(group),
        ))
    }
}

/// What a route points at.
pub(super) enum Target {
    TransitGateway(String),
    /// The peering to route through (`live`), and every peering ever made
    /// between the two VPCs (a route to a deleted one is still ours to remove).
    Peering {
        live: Option<String>,
        any: Vec<String>,
    },
}

impl Target {
    pub(super) fn live(&self) -> Option<&str> {
        match self {
            Target::TransitGateway(t) => Some(t),
            Target::Peering { live, .. } => live.as_deref(),
        }
    }

    pub(super) fn is(&self, id: &str) -> bool {
        match self {
            Target::TransitGateway(t) => t == id,
            Target::Peering { any, .. } => any.iter().any(|p| p == id),
        }
    }
}
