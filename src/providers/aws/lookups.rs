//! Finding what exists by what it is: route tables, peerings, attachments,
//! VPNs and their routes.

use super::*;

/// The VPC's route tables, each with its routes (destination, target).
pub(super) async fn route_tables(
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
pub(super) async fn live_peering(
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
pub(super) async fn peerings_between(
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
pub(super) async fn live_attachment(
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
pub(super) fn through_gateway(item: &Item) -> bool {
    [Mechanism::TransitGateway, Mechanism::SiteToSiteVpn]
        .iter()
        .any(|m| item.build.mechanism() == Some(*m))
}

/// The VPN Switchboard made for an item on a gateway, unless it is gone.
pub(super) async fn live_vpn(
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
pub(super) async fn vpn_attachment(
    ec2: &Client,
    vpn: &str,
) -> Result<Option<String>, ProviderError> {
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
pub(super) async fn static_routes(
    ec2: &Client,
    table: &str,
) -> Result<Vec<GatewayRoute>, ProviderError> {
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
pub(super) fn tunnels_of(vpn: &VpnConnection) -> Vec<(String, String)> {
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
