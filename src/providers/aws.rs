//! The `aws` provider: VPC peerings (same region, across regions and accounts),
//! transit-gateway attachments, routes in the VPCs' route tables and
//! security-group rules, through the official SDK.
//!
//! Settings: `endpoint_url` (an EC2-compatible endpoint instead of AWS's),
//! `account_id` (the 12-digit id, needed when another account peers with this
//! one), `transit_gateway.<region>` (read by the planner) and
//! `transit_gateway_route_table.<region>` (associate attachments with this
//! route table instead of the gateway's default one).
//!
//! A site-to-site VPN to an on-prem network attaches to the account's transit
//! gateway: a customer gateway at the on-prem network's endpoint (the linux
//! accounts' `endpoint.<namespace>`), a VPN connection with static routes, and
//! the on-prem ranges routed to it in the gateway's route table. AWS makes the
//! two tunnels and their pre-shared keys; they are handed to the on-prem end
//! in memory, read from AWS on each run, and never stored by Switchboard.
//! Credentials: `credentials_ref` `env:PREFIX` reads `PREFIX_ACCESS_KEY_ID`,
//! `PREFIX_SECRET_ACCESS_KEY` and optionally `PREFIX_SESSION_TOKEN`;
//! `file:/path` reads an AWS credentials file (`aws_access_key_id = …`).
//!
//! Everything is looked up by what it is before it is made (the peering of two
//! VPCs, the attachment of a VPC to a gateway, a route's destination and target,
//! a rule's protocol, ports and range), so a rerun finds what an earlier one made,
//! and two connections that need the same thing share it. What is made is tagged
//! (or described) with the connection, for people reading the console. Removal
//! takes away only what Switchboard made (`Removal::made`), never what it found.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    Filter, GatewayType, IpPermission, IpRange, ResourceType, RouteState, Tag, TagSpecification,
    TelemetryStatus, TransitGatewayAttachmentState,
    VpcPeeringConnectionStateReasonCode as PeeringState, VpnConnection,
    VpnConnectionOptionsSpecification, VpnState,
};
use ipnet::IpNet;
use uuid::Uuid;

use super::{Item, Provider, ProviderError, Removal, Seen, Step, Wanted, kinds};
use crate::domain::connection::parse_ports;
use crate::planner::Mechanism;
use crate::store::provider_accounts::ProviderAccount;

const CONNECTION_TAG: &str = "switchboard:connection";
const ITEM_TAG: &str = "switchboard:item";

/// How to reach one AWS account.
#[derive(Clone)]
struct Site {
    credentials: Credentials,
    endpoint: Option<String>,
    account_id: Option<String>,
    route_tables: HashMap<String, String>,
}

pub struct Aws {
    account: String,
    /// Every aws account, for the other side of a peering; an account that
    /// cannot be reached says why when it is needed.
    sites: HashMap<String, Result<Site, String>>,
    http: SharedHttpClient,
    clients: Mutex<HashMap<(String, String), Client>>,
    /// Where each on-prem namespace is reached, for customer gateways.
    endpoints: HashMap<String, String>,
}

impl Aws {
    pub fn new(account: &ProviderAccount, all: &[ProviderAccount]) -> Result<Self, String> {
        let sites: HashMap<_, _> = all
            .iter()
            .filter(|a| a.kind == "aws")
            .map(|a| (a.name.clone(), site(a)))
            .collect();
        if let Some(Err(why)) = sites.get(&account.name) {
            return Err(why.clone());
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        Ok(Aws {
            account: account.name.clone(),
            sites,
            http,
            clients: Mutex::new(HashMap::new()),
            // A linux account with a bad endpoint says so itself.
            endpoints: super::endpoints(all).unwrap_or_default(),
        })
    }

    fn site(&self, account: &str) -> Result<&Site, ProviderError> {
        match self.sites.get(account) {
            Some(Ok(site)) => Ok(site),
            Some(Err(why)) => Err(ProviderError::Permanent(why.clone())),
            None => Err(ProviderError::Permanent(format!(
                "{account} is not an aws provider account"
            ))),
        }
    }

    /// The EC2 client of an account in a region, made once.
    fn ec2(&self, account: &str, region: &str) -> Result<Client, ProviderError> {
        let key = (account.to_owned(), region.to_owned());
        if let Some(c) = self.clients.lock().expect("not poisoned").get(&key) {
            return Ok(c.clone());
        }
        let site = self.site(account)?;
        let mut config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(site.credentials.clone())
            .http_client(self.http.clone());
        if let Some(url) = &site.endpoint {
            config = config.endpoint_url(url);
        }
        let client = Client::from_conf(config.build());
        self.clients
            .lock()
            .expect("not poisoned")
            .insert(key, client.clone());
        Ok(client)
    }

    async fn peering(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (need(item, "network_id")?, need(item, "region")?);
        let peer_vpc = need(item, "peer_network_id")?;
        let peer_region = item.param("peer_region").unwrap_or(region);
        let peer_account = item.param("peer_account").unwrap_or(&self.account);
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

    async fn attachment(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (need(item, "network_id")?, need(item, "region")?);
        let tgw = need(item, "transit_gateway")?;
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
    async fn gateway_table(
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
    async fn vpn(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (region, tgw) = (need(item, "region")?, need(item, "transit_gateway")?);
        let on_prem = item.param("peer_network_id").ok_or_else(|| {
            ProviderError::Permanent(format!(
                "{} needs the namespace of {}: register the on-prem network with its namespace as external_id",
                item.name,
                item.param("peer_network").unwrap_or("the on-prem network")
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
        for prefix in need(item, "peer_prefixes")?.split(',').map(str::trim) {
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
        for (n, (outside, key)) in tunnels.into_iter().enumerate() {
            step.handoff
                .0
                .insert(format!("tunnel.{}.address", n + 1), outside);
            step.handoff.0.insert(format!("tunnel.{}.psk", n + 1), key);
        }
        Ok(step)
    }

    /// The region's VPNs that items name (one filtered read), and the static
    /// routes of their gateways' tables (one read per gateway).
    async fn read_vpns(
        &self,
        ec2: &Client,
        region: &str,
        wanted: &[Wanted],
        state: &mut RegionState,
    ) -> Result<(), ProviderError> {
        let items: Vec<&Item> = wanted
            .iter()
            .flat_map(|w| &w.items)
            .filter(|i| i.kind == kinds::SITE_TO_SITE_VPN && i.param("region") == Some(region))
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
        let gateways: BTreeSet<&str> = items
            .iter()
            .filter_map(|i| i.param("transit_gateway"))
            .collect();
        for tgw in gateways {
            let table = self.gateway_table(ec2, region, tgw).await?;
            let routes = static_routes(ec2, &table).await?;
            state.gateway_routes.insert(tgw.to_owned(), (table, routes));
        }
        Ok(())
    }

    /// Where a route of this item goes: the transit gateway, or the peering
    /// between the two VPCs (found by its ends, which both sides can see).
    async fn route_target(&self, ec2: &Client, item: &Item) -> Result<Target, ProviderError> {
        let vpc = need(item, "network_id")?;
        if through_gateway(item) {
            return Ok(Target::TransitGateway(need(item, "via")?.to_owned()));
        }
        let peer = need(item, "peer_network_id")?;
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

    async fn route(&self, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (need(item, "network_id")?, need(item, "region")?);
        let destination = need(item, "destination")?;
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

    async fn rule(&self, conn: Uuid, item: &Item) -> Result<Step, ProviderError> {
        let (vpc, region) = (need(item, "network_id")?, need(item, "region")?);
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

    async fn remove(&self, removal: &Removal) -> Result<Option<Step>, ProviderError> {
        let item = &removal.item;
        let made = |id: &str| removal.made.iter().any(|m| m.split(", ").any(|m| m == id));
        let region = need(item, "region")?;
        let ec2 = self.ec2(&self.account, region)?;
        let removed = |id: String| Ok(Some(Step::new("deleted", item, Some(id))));
        match item.kind.as_str() {
            kinds::PEERING => {
                let (vpc, peer) = (need(item, "network_id")?, need(item, "peer_network_id")?);
                let Some((id, _)) = live_peering(&ec2, vpc, peer)
                    .await?
                    .filter(|(id, _)| made(id))
                else {
                    return Ok(None);
                };
                ec2.delete_vpc_peering_connection()
                    .vpc_peering_connection_id(&id)
                    .send()
                    .await
                    .map_err(|e| refused(&format!("delete the peering {id}"), e))?;
                removed(id)
            }
            kinds::TRANSIT_GATEWAY_ATTACHMENT => {
                let (vpc, tgw) = (need(item, "network_id")?, need(item, "transit_gateway")?);
                let Some(id) = live_attachment(&ec2, tgw, vpc).await?.filter(|id| made(id)) else {
                    return Ok(None);
                };
                ec2.delete_transit_gateway_vpc_attachment()
                    .transit_gateway_attachment_id(&id)
                    .send()
                    .await
                    .map_err(|e| refused(&format!("detach {id}"), e))?;
                removed(id)
            }
            kinds::ROUTE => {
                let vpc = need(item, "network_id")?;
                let destination = need(item, "destination")?;
                let target = self.route_target(&ec2, item).await?;
                let mut tables = Vec::new();
                for (table, routes) in route_tables(&ec2, vpc).await? {
                    let ours = routes.iter().any(|(d, t)| {
                        d == destination && t.as_deref().is_some_and(|t| target.is(t))
                    });
                    if !ours || !made(&table) {
                        continue;
                    }
                    ec2.delete_route()
                        .route_table_id(&table)
                        .destination_cidr_block(destination)
                        .send()
                        .await
                        .map_err(|e| {
                            refused(&format!("delete the route {destination} from {table}"), e)
                        })?;
                    tables.push(table);
                }
                if tables.is_empty() {
                    return Ok(None);
                }
                removed(tables.join(", "))
            }
            kinds::SITE_TO_SITE_VPN => {
                let tgw = need(item, "transit_gateway")?;
                let Some(vpn) = live_vpn(&ec2, tgw, &item.name).await? else {
                    return Ok(None);
                };
                let id = vpn.vpn_connection_id().unwrap_or_default().to_owned();
                if !made(&id) {
                    return Ok(None);
                }
                if let Some(attachment) = vpn_attachment(&ec2, &id).await? {
                    let table = self.gateway_table(&ec2, region, tgw).await?;
                    let present = static_routes(&ec2, &table).await?;
                    for prefix in need(item, "peer_prefixes")?.split(',').map(str::trim) {
                        let ours = present.iter().any(|(d, to)| {
                            d == prefix && to.as_deref().is_none_or(|to| to == attachment)
                        });
                        if ours {
                            ec2.delete_transit_gateway_route()
                                .transit_gateway_route_table_id(&table)
                                .destination_cidr_block(prefix)
                                .send()
                                .await
                                .map_err(|e| {
                                    refused(&format!("delete the route {prefix} from {table}"), e)
                                })?;
                        }
                    }
                }
                ec2.delete_vpn_connection()
                    .vpn_connection_id(&id)
                    .send()
                    .await
                    .map_err(|e| refused(&format!("delete the VPN {id}"), e))?;
                if let Some(gateway) = vpn.customer_gateway_id().filter(|g| made(g)) {
                    ec2.delete_customer_gateway()
                        .customer_gateway_id(gateway)
                        .send()
                        .await
                        .map_err(|e| {
                            refused(&format!("delete the customer gateway {gateway}"), e)
                        })?;
                }
                removed(id)
            }
            kinds::FIREWALL_RULE => {
                let vpc = need(item, "network_id")?;
                let (group, present) = security_group(&ec2, vpc).await?;
                let wanted = permissions(item)?;
                let ours: Vec<&Permission> =
                    present.iter().filter(|p| wanted.contains(p)).collect();
                if ours.is_empty() || !made(&group) {
                    return Ok(None);
                }
                let mut ask = ec2.revoke_security_group_ingress().group_id(&group);
                for p in ours {
                    ask = ask.ip_permissions(p.to_aws(&p.description));
                }
                ask.send()
                    .await
                    .map_err(|e| refused(&format!("close {group} to {}", item.name), e))?;
                removed(group)
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl Provider for Aws {
    fn kind(&self) -> &'static str {
        "aws"
    }

    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError> {
        match item.kind.as_str() {
            kinds::PEERING => self.peering(connection_id, item).await,
            kinds::TRANSIT_GATEWAY_ATTACHMENT => self.attachment(connection_id, item).await,
            kinds::SITE_TO_SITE_VPN => self.vpn(connection_id, item).await,
            kinds::ROUTE => self.route(item).await,
            kinds::FIREWALL_RULE => self.rule(connection_id, item).await,
            other => Err(ProviderError::Permanent(format!(
                "this version of Switchboard cannot build a {other} in AWS yet"
            ))),
        }
    }

    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError> {
        // Every VPC the items name, by region: a few filtered reads per region.
        let mut vpcs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for item in wanted.iter().flat_map(|w| &w.items) {
            if let (Some(region), Some(vpc)) = (item.param("region"), item.param("network_id")) {
                vpcs.entry(region).or_default().insert(vpc);
            }
        }
        let mut regions = HashMap::new();
        for (region, vpcs) in vpcs {
            let ec2 = self.ec2(&self.account, region)?;
            let vpcs: Vec<&str> = vpcs.into_iter().collect();
            let mut state = read_region(&ec2, &vpcs).await?;
            self.read_vpns(&ec2, region, wanted, &mut state).await?;
            regions.insert(region, state);
        }
        Ok(super::seen_each(wanted, |_, item| {
            item.param("region")
                .and_then(|region| regions.get(region))
                .map(|state| state.differences(item))
                .unwrap_or_default()
        }))
    }

    async fn destroy(
        &self,
        _connection_id: Uuid,
        removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError> {
        let mut steps = Vec::new();
        for removal in removals.iter().rev() {
            if let Some(step) = self.remove(removal).await? {
                steps.push(step);
            }
        }
        Ok(steps)
    }
}

/// A transit gateway's static route: destination and attachment (when AWS says).
type GatewayRoute = (String, Option<String>);

/// A route as observed: destination, target, and whether it is a blackhole.
type SeenRoute = (String, Option<String>, bool);

/// What exists in one region around the VPCs being observed.
#[derive(Default)]
struct RegionState {
    /// (id, requester VPC, accepter VPC, state)
    peerings: Vec<(String, String, String, Option<PeeringState>)>,
    /// VPC → its route tables and their routes
    tables: HashMap<String, Vec<(String, Vec<SeenRoute>)>>,
    /// VPC → its default security group and the ingress it allows
    groups: HashMap<String, (String, Vec<Permission>)>,
    /// (id, transit gateway, VPC, state)
    attachments: Vec<(
        String,
        String,
        String,
        Option<TransitGatewayAttachmentState>,
    )>,
    /// VPNs Switchboard made, as AWS describes them
    vpns: Vec<VpnConnection>,
    /// transit gateway → its route table and that table's static routes
    gateway_routes: HashMap<String, (String, Vec<GatewayRoute>)>,
}

/// AWS caps the values of one filter at 200.
const FILTER_VALUES: usize = 200;

async fn read_region(ec2: &Client, vpcs: &[&str]) -> Result<RegionState, ProviderError> {
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
                state.groups.insert(
                    g.vpc_id().unwrap_or_default().to_owned(),
                    (g.group_id().unwrap_or_default().to_owned(), ingress(g)),
                );
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
fn seen_route(r: &aws_sdk_ec2::types::Route) -> Option<SeenRoute> {
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

fn peering_gone(state: Option<&PeeringState>) -> bool {
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
    fn peering(
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
    fn vpn_differences(&self, item: &Item) -> Vec<String> {
        let tgw = item.param("transit_gateway").unwrap_or_default();
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
            for prefix in item
                .param("peer_prefixes")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                if !routes.iter().any(|(d, _)| d == prefix) {
                    out.push(format!("route {prefix} → VPN {id} is missing from {table}"));
                }
            }
        }
        out
    }

    /// How an item differs from what exists, in plain words.
    fn differences(&self, item: &Item) -> Vec<String> {
        if item.kind == kinds::SITE_TO_SITE_VPN {
            return self.vpn_differences(item);
        }
        let Some(vpc) = item.param("network_id") else {
            return Vec::new();
        };
        match item.kind.as_str() {
            kinds::PEERING => {
                let peer = item.param("peer_network_id").unwrap_or_default();
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
            kinds::TRANSIT_GATEWAY_ATTACHMENT => {
                let tgw = item.param("transit_gateway").unwrap_or_default();
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
            kinds::ROUTE => {
                let destination = item.param("destination").unwrap_or_default();
                let expected = if through_gateway(item) {
                    item.param("via").map(str::to_owned)
                } else {
                    let peer = item.param("peer_network_id").unwrap_or_default();
                    self.peering(vpc, peer)
                        .filter(|p| !peering_gone(p.3.as_ref()))
                        .map(|p| p.0.clone())
                };
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
            kinds::FIREWALL_RULE => {
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

/// What a route points at.
enum Target {
    TransitGateway(String),
    /// The peering to route through (`live`), and every peering ever made
    /// between the two VPCs (a route to a deleted one is still ours to remove).
    Peering {
        live: Option<String>,
        any: Vec<String>,
    },
}

impl Target {
    fn live(&self) -> Option<&str> {
        match self {
            Target::TransitGateway(t) => Some(t),
            Target::Peering { live, .. } => live.as_deref(),
        }
    }

    fn is(&self, id: &str) -> bool {
        match self {
            Target::TransitGateway(t) => t == id,
            Target::Peering { any, .. } => any.iter().any(|p| p == id),
        }
    }
}

/// One ingress permission, as AWS stores it: a protocol, a port range, a range.
#[derive(Clone, Debug)]
struct Permission {
    protocol: String,
    from: Option<i32>,
    to: Option<i32>,
    cidr: String,
    description: String,
}

impl PartialEq for Permission {
    /// The same opening, whoever made it.
    fn eq(&self, other: &Self) -> bool {
        self.protocol == other.protocol
            && self.from.unwrap_or(-1) == other.from.unwrap_or(-1)
            && self.to.unwrap_or(-1) == other.to.unwrap_or(-1)
            && self.cidr == other.cidr
    }
}

impl Permission {
    /// "tcp 443 from 10.2.0.0/16"
    fn words(&self) -> String {
        let ports = match (self.from, self.to) {
            (Some(f), Some(t)) if f == t && f >= 0 => format!(" {f}"),
            (Some(f), Some(t)) if f >= 0 => format!(" {f}-{t}"),
            _ => String::new(),
        };
        let protocol = if self.protocol == "-1" {
            "all traffic"
        } else {
            &self.protocol
        };
        format!("{protocol}{ports} from {}", self.cidr)
    }

    fn to_aws(&self, description: &str) -> IpPermission {
        let mut p = IpPermission::builder()
            .ip_protocol(&self.protocol)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip(&self.cidr)
                    .description(description)
                    .build(),
            );
        if let (Some(from), Some(to)) = (self.from, self.to) {
            p = p.from_port(from).to_port(to);
        }
        p.build()
    }
}

fn description(conn: Uuid) -> String {
    format!("switchboard connection {conn}")
}

/// The ingress permissions a firewall-rule item asks for.
fn permissions(item: &Item) -> Result<Vec<Permission>, ProviderError> {
    let protocol = item.param("protocol").unwrap_or("any");
    let ports = match item.param("ports") {
        None | Some("all ports") => Vec::new(),
        Some(text) => parse_ports(text).map_err(ProviderError::Permanent)?,
    };
    let mut ranges: Vec<(String, Option<i32>, Option<i32>)> = Vec::new();
    match protocol {
        "any" => ranges.push(("-1".into(), None, None)),
        "icmp" => ranges.push(("icmp".into(), Some(-1), Some(-1))),
        "tcp" | "udp" if ports.is_empty() => ranges.push((protocol.into(), Some(0), Some(65535))),
        "tcp" | "udp" => ranges.extend(ports.iter().map(|p| {
            (
                protocol.to_owned(),
                Some(i32::from(p.from)),
                Some(i32::from(p.to)),
            )
        })),
        other => {
            return Err(ProviderError::Permanent(format!(
                "a security group cannot open the protocol {other:?}"
            )));
        }
    }
    let mut out = Vec::new();
    for cidr in need(item, "allow_from")?.split(',').map(str::trim) {
        let net: IpNet = cidr.parse().map_err(|_| {
            ProviderError::Permanent(format!(
                "a security group opens to address ranges, and {cidr:?} is not one"
            ))
        })?;
        if matches!(net, IpNet::V6(_)) {
            return Err(ProviderError::Permanent(format!(
                "this version of Switchboard opens security groups to IPv4 ranges only, not {net}"
            )));
        }
        for (protocol, from, to) in &ranges {
            out.push(Permission {
                protocol: protocol.clone(),
                from: *from,
                to: *to,
                cidr: net.to_string(),
                description: String::new(),
            });
        }
    }
    Ok(out)
}

/// The VPC's default security group, and the ingress it allows now.
async fn security_group(
    ec2: &Client,
    vpc: &str,
) -> Result<(String, Vec<Permission>), ProviderError> {
    let found = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", [vpc]))
        .filters(filter("group-name", ["default"]))
        .send()
        .await
        .map_err(|e| refused(&format!("read the security groups of {vpc}"), e))?;
    let Some(group) = found.security_groups().first() else {
        return Err(ProviderError::Permanent(format!(
            "{vpc} has no default security group (does the VPC exist?)"
        )));
    };
    Ok((
        group.group_id().unwrap_or_default().to_owned(),
        ingress(group),
    ))
}

fn ingress(group: &aws_sdk_ec2::types::SecurityGroup) -> Vec<Permission> {
    let mut present = Vec::new();
    for p in group.ip_permissions() {
        for r in p.ip_ranges() {
            present.push(Permission {
                protocol: p.ip_protocol().unwrap_or("-1").to_owned(),
                from: p.from_port(),
                to: p.to_port(),
                cidr: r.cidr_ip().unwrap_or_default().to_owned(),
                description: r.description().unwrap_or_default().to_owned(),
            });
        }
    }
    present
}

/// The VPC's route tables, each with its routes (destination, target).
async fn route_tables(
    ec2: &Client,
    vpc: &str,
) -> Result<Vec<(String, Vec<(String, Option<String>)>)>, ProviderError> {
    let found = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", [vpc]))
        .send()
        .await
        .map_err(|e| refused(&format!("read the route tables of {vpc}"), e))?;
    Ok(found
        .route_tables()
        .iter()
        .filter_map(|t| {
            let routes = t
                .routes()
                .iter()
                .filter_map(seen_route)
                .map(|(destination, target, _)| (destination, target))
                .collect();
            Some((t.route_table_id()?.to_owned(), routes))
        })
        .collect())
}

/// The peering of two VPCs (either may have asked), unless it is gone: AWS
/// allows one between a pair.
async fn live_peering(
    ec2: &Client,
    vpc: &str,
    peer: &str,
) -> Result<Option<(String, Option<PeeringState>)>, ProviderError> {
    Ok(peerings_between(ec2, vpc, peer)
        .await?
        .into_iter()
        .find(|(_, state)| !peering_gone(state.as_ref())))
}

/// Every peering ever made between two VPCs, in either direction: (id, state).
/// The ends are checked here too, not only asked of the filter: an endpoint
/// that ignores the filter (moto does) would otherwise hand back other VPCs'
/// peerings, and routes would point at them.
async fn peerings_between(
    ec2: &Client,
    vpc: &str,
    peer: &str,
) -> Result<Vec<(String, Option<PeeringState>)>, ProviderError> {
    let ends = [vpc, peer];
    let found = ec2
        .describe_vpc_peering_connections()
        .filters(filter("requester-vpc-info.vpc-id", ends))
        .filters(filter("accepter-vpc-info.vpc-id", ends))
        .send()
        .await
        .map_err(|e| refused(&format!("look for the peering of {vpc} and {peer}"), e))?;
    Ok(found
        .vpc_peering_connections()
        .iter()
        .filter_map(|p| {
            let requester = p.requester_vpc_info().and_then(|v| v.vpc_id());
            let accepter = p.accepter_vpc_info().and_then(|v| v.vpc_id());
            let between = matches!((requester, accepter), (Some(r), Some(a))
                if (r == vpc && a == peer) || (r == peer && a == vpc));
            let id = p.vpc_peering_connection_id()?;
            between.then(|| (id.to_owned(), p.status().and_then(|s| s.code()).cloned()))
        })
        .collect())
}

/// The attachment of a VPC to a transit gateway, unless it is gone: AWS allows
/// one per pair.
async fn live_attachment(
    ec2: &Client,
    tgw: &str,
    vpc: &str,
) -> Result<Option<String>, ProviderError> {
    let found = ec2
        .describe_transit_gateway_vpc_attachments()
        .filters(filter("transit-gateway-id", [tgw]))
        .filters(filter("vpc-id", [vpc]))
        .send()
        .await
        .map_err(|e| refused(&format!("look for the attachment of {vpc} to {tgw}"), e))?;
    Ok(found
        .transit_gateway_vpc_attachments()
        .iter()
        .find(|a| {
            a.transit_gateway_id() == Some(tgw)
                && a.vpc_id() == Some(vpc)
                && !matches!(
                    a.state(),
                    Some(
                        TransitGatewayAttachmentState::Deleted
                            | TransitGatewayAttachmentState::Deleting
                            | TransitGatewayAttachmentState::Failed
                            | TransitGatewayAttachmentState::Rejected
                    )
                )
        })
        .and_then(|a| a.transit_gateway_attachment_id().map(str::to_owned)))
}

/// Whether a route item goes to the transit gateway (its `via`).
fn through_gateway(item: &Item) -> bool {
    [Mechanism::TransitGateway, Mechanism::SiteToSiteVpn]
        .iter()
        .any(|m| item.param("mechanism") == Some(m.label()))
}

/// The VPN Switchboard made for an item on a gateway, unless it is gone.
async fn live_vpn(
    ec2: &Client,
    tgw: &str,
    name: &str,
) -> Result<Option<VpnConnection>, ProviderError> {
    let found = ec2
        .describe_vpn_connections()
        .filters(filter(&format!("tag:{ITEM_TAG}"), [name]))
        .filters(filter("transit-gateway-id", [tgw]))
        .send()
        .await
        .map_err(|e| refused(&format!("look for the VPN {name} on {tgw}"), e))?;
    Ok(found
        .vpn_connections()
        .iter()
        .find(|v| {
            v.transit_gateway_id() == Some(tgw)
                && !matches!(v.state(), Some(VpnState::Deleted | VpnState::Deleting))
        })
        .cloned())
}

/// The transit gateway's attachment of a VPN.
async fn vpn_attachment(ec2: &Client, vpn: &str) -> Result<Option<String>, ProviderError> {
    let found = ec2
        .describe_transit_gateway_attachments()
        .filters(filter("resource-id", [vpn]))
        .send()
        .await
        .map_err(|e| refused(&format!("look for the attachment of {vpn}"), e))?;
    Ok(found
        .transit_gateway_attachments()
        .iter()
        .find(|a| {
            a.resource_id() == Some(vpn)
                && !matches!(
                    a.state(),
                    Some(
                        TransitGatewayAttachmentState::Deleted
                            | TransitGatewayAttachmentState::Deleting
                    )
                )
        })
        .and_then(|a| a.transit_gateway_attachment_id().map(str::to_owned)))
}

/// The static routes of a transit gateway route table: destination and the
/// attachment it goes to (when AWS says).
async fn static_routes(ec2: &Client, table: &str) -> Result<Vec<GatewayRoute>, ProviderError> {
    let found = ec2
        .search_transit_gateway_routes()
        .transit_gateway_route_table_id(table)
        .filters(filter("type", ["static"]))
        .send()
        .await
        .map_err(|e| refused(&format!("read the routes of {table}"), e))?;
    Ok(found
        .routes()
        .iter()
        .filter_map(|r| {
            let to = r
                .transit_gateway_attachments()
                .first()
                .and_then(|a| a.transit_gateway_attachment_id())
                .map(str::to_owned);
            Some((r.destination_cidr_block()?.to_owned(), to))
        })
        .collect())
}

/// Each tunnel of a VPN as AWS describes it for the customer's device:
/// AWS's outside address and the pre-shared key, in AWS's order.
fn tunnels_of(vpn: &VpnConnection) -> Vec<(String, String)> {
    let config = vpn.customer_gateway_configuration().unwrap_or_default();
    let inside = |text: &str, tag: &str| -> Option<String> {
        let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = start + text[start..].find(&format!("</{tag}>"))?;
        Some(text[start..end].trim().to_owned())
    };
    config
        .split("<ipsec_tunnel>")
        .skip(1)
        .filter_map(|tunnel| {
            let aws_side = inside(tunnel, "vpn_gateway")?;
            let outside = inside(&inside(&aws_side, "tunnel_outside_address")?, "ip_address")?;
            let key = inside(&inside(tunnel, "ike")?, "pre_shared_key")?;
            Some((outside, key))
        })
        .collect()
}

fn tags(kind: ResourceType, conn: Uuid, item: &Item) -> TagSpecification {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    TagSpecification::builder()
        .resource_type(kind)
        .tags(tag(CONNECTION_TAG, &conn.to_string()))
        .tags(tag(ITEM_TAG, &item.name))
        .tags(tag("Name", &format!("switchboard {}", item.name)))
        .build()
}

fn filter<I, V>(name: &str, values: I) -> Filter
where
    I: IntoIterator<Item = V>,
    V: Into<String>,
{
    values
        .into_iter()
        .fold(Filter::builder().name(name), |f, v| f.values(v))
        .build()
}

fn need<'a>(item: &'a Item, key: &str) -> Result<&'a str, ProviderError> {
    item.param(key).ok_or_else(|| {
        ProviderError::Permanent(match key {
            "network_id" | "peer_network_id" => format!(
                "{} needs the VPC id of {}: register the network with its vpc-… id",
                item.name,
                item.param(if key == "network_id" {
                    "network"
                } else {
                    "peer_network"
                })
                .unwrap_or("the network")
            ),
            _ => format!("{} has no {key}", item.name),
        })
    })
}

/// An answer that says the thing already exists counts as done.
fn already_ok<T, E>(
    answer: Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>,
    code: &str,
    what: impl FnOnce() -> String,
) -> Result<(), ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(code) => Ok(()),
        Err(e) => Err(refused(&what(), e)),
    }
}

/// AWS's error in plain words: throttling, server errors and unreachable
/// endpoints are worth retrying; anything else AWS refused is permanent.
fn refused<E>(what: &str, e: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(service) => {
            let code = e.code().unwrap_or("an unknown error");
            let message = e.message().unwrap_or("no message");
            let status = service.raw().status().as_u16();
            let transient = status >= 500
                || matches!(
                    code,
                    "RequestLimitExceeded"
                        | "Throttling"
                        | "ThrottlingException"
                        | "InternalError"
                        | "ServiceUnavailable"
                        | "Unavailable"
                        | "IncorrectState"
                );
            let text = format!("AWS refused to {what}: {message} ({code})");
            if transient {
                ProviderError::Transient(text)
            } else {
                ProviderError::Permanent(text)
            }
        }
        SdkError::ConstructionFailure(_) => ProviderError::Permanent(format!(
            "could not ask AWS to {what}: {}",
            DisplayErrorContext(&e)
        )),
        _ => ProviderError::Transient(format!(
            "AWS could not be reached to {what}: {}",
            DisplayErrorContext(&e)
        )),
    }
}

/// How to reach an account, from its settings and its credentials reference.
fn site(account: &ProviderAccount) -> Result<Site, String> {
    let setting = |key: &str| account.setting(key).map(str::to_owned);
    let endpoint = setting("endpoint_url");
    if let Some(url) = &endpoint {
        if url::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            return Err(format!(
                "aws account {}: endpoint_url must be an http(s) URL",
                account.name
            ));
        }
    }
    let route_tables = account
        .settings
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let region = k.strip_prefix("transit_gateway_route_table.")?;
            Some((region.to_owned(), v.as_str()?.to_owned()))
        })
        .collect();
    Ok(Site {
        credentials: credentials(account)?,
        endpoint,
        account_id: setting("account_id"),
        route_tables,
    })
}

fn credentials(account: &ProviderAccount) -> Result<Credentials, String> {
    let name = &account.name;
    let Some(reference) = account.credentials_ref.as_deref() else {
        return Err(format!(
            "aws account {name} has no credentials_ref: set env:PREFIX (reads PREFIX_ACCESS_KEY_ID and PREFIX_SECRET_ACCESS_KEY) or file:/path to an AWS credentials file"
        ));
    };
    let (key, secret, token) = if let Some(prefix) = reference.strip_prefix("env:") {
        let var = |suffix: &str| std::env::var(format!("{prefix}_{suffix}")).ok();
        let missing = |suffix: &str| {
            format!("aws account {name}: the environment variable {prefix}_{suffix} is not set")
        };
        (
            var("ACCESS_KEY_ID").ok_or_else(|| missing("ACCESS_KEY_ID"))?,
            var("SECRET_ACCESS_KEY").ok_or_else(|| missing("SECRET_ACCESS_KEY"))?,
            var("SESSION_TOKEN"),
        )
    } else if let Some(path) = reference.strip_prefix("file:") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("aws account {name}: cannot read {path}: {e}"))?;
        let mut values = HashMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                values.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let mut take = |k: &str| values.remove(k).filter(|v| !v.is_empty());
        (
            take("aws_access_key_id")
                .ok_or_else(|| format!("aws account {name}: {path} has no aws_access_key_id"))?,
            take("aws_secret_access_key").ok_or_else(|| {
                format!("aws account {name}: {path} has no aws_secret_access_key")
            })?,
            take("aws_session_token"),
        )
    } else {
        return Err(format!(
            "aws account {name}: credentials_ref must be env:PREFIX or file:/path"
        ));
    };
    Ok(Credentials::new(key, secret, token, None, "switchboard"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape AWS documents for `CustomerGatewayConfiguration` (trimmed):
    /// each tunnel's AWS-side outside address and its pre-shared key.
    #[test]
    fn each_tunnel_is_read_from_the_customer_gateway_configuration() {
        let tunnel = |outside: &str, key: &str| {
            format!(
                "<ipsec_tunnel><customer_gateway><tunnel_outside_address><ip_address>198.51.100.7</ip_address></tunnel_outside_address></customer_gateway>\
                 <vpn_gateway><tunnel_outside_address><ip_address>{outside}</ip_address></tunnel_outside_address>\
                 <tunnel_inside_address><ip_address>169.254.44.41</ip_address></tunnel_inside_address></vpn_gateway>\
                 <ike><mode>main</mode><pre_shared_key>{key}</pre_shared_key></ike></ipsec_tunnel>"
            )
        };
        let config = format!(
            "<?xml version=\"1.0\"?><vpn_connection id=\"vpn-1\">{}{}</vpn_connection>",
            tunnel("52.2.144.13", "key_one"),
            tunnel("52.2.144.14", "key_two")
        );
        let vpn = VpnConnection::builder()
            .customer_gateway_configuration(config)
            .build();
        assert_eq!(
            tunnels_of(&vpn),
            [
                ("52.2.144.13".to_owned(), "key_one".to_owned()),
                ("52.2.144.14".to_owned(), "key_two".to_owned())
            ]
        );
        assert!(tunnels_of(&VpnConnection::builder().build()).is_empty());
    }
}
