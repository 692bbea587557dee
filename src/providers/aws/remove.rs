//! Removing an item: only what Switchboard made (recorded, or found and
//! marked as Switchboard's), never what it merely found.

use super::*;

impl Aws {
    /// Removes one item, if it is Switchboard's to remove; the step names
    /// what was deleted.
    pub(super) async fn remove(
        &self,
        conn: Uuid,
        removal: &Removal,
    ) -> Result<Option<Step>, ProviderError> {
        let item = &removal.item;
        let region = region(item)?;
        let ec2 = &self.ec2(&self.account, region)?;
        let deleted = match &item.build {
            Build::Network { .. } => self.remove_network(conn, removal).await?,
            Build::Peering { .. } => remove_peering(ec2, removal).await?,
            Build::TransitGatewayAttachment { .. } => remove_attachment(ec2, removal).await?,
            Build::Route { .. } => self.remove_route(ec2, removal).await?,
            Build::SiteToSiteVpn { .. } => self.remove_vpn(ec2, region, removal).await?,
            Build::FirewallRule { .. } => remove_rule(ec2, conn, removal).await?,
            _ => None,
        };
        Ok(deleted.map(|id| Step::new("deleted", item, Some(id))))
    }

    async fn remove_route(
        &self,
        ec2: &Client,
        removal: &Removal,
    ) -> Result<Option<String>, ProviderError> {
        let item = &removal.item;

        let vpc = vpc(item)?;
        let (destination, _) = route_of(item)?;
        let target = self.route_target(ec2, item).await?;
        let mut tables = Vec::new();
        for (table, routes) in route_tables(ec2, vpc).await? {
            let ours = routes
                .iter()
                .any(|(d, t)| d == destination && t.as_deref().is_some_and(|t| target.is(t)));
            // A route has no tags: one this connection found is its
            // own (the services keep what another connection needs).
            if !ours || !(removal.made(&table) || removal.found(&table)) {
                continue;
            }
            ec2.delete_route()
                .route_table_id(&table)
                .destination_cidr_block(destination)
                .send()
                .await
                .map_err(|e| refused(&format!("delete the route {destination} from {table}"), e))?;
            tables.push(table);
        }
        if tables.is_empty() {
            return Ok(None);
        }
        Ok(Some(tables.join(", ")))
    }

    async fn remove_vpn(
        &self,
        ec2: &Client,
        region: &str,
        removal: &Removal,
    ) -> Result<Option<String>, ProviderError> {
        let item = &removal.item;

        let tgw = gateway(item)?;
        let Some(vpn) = live_vpn(ec2, tgw, &item.name).await? else {
            return Ok(None);
        };
        let id = vpn.vpn_connection_id().unwrap_or_default().to_owned();
        // Found by its Switchboard tag in the first place.
        if !(removal.made(&id) || removal.found(&id)) {
            return Ok(None);
        }
        if let Some(attachment) = vpn_attachment(ec2, &id).await? {
            let table = self.gateway_table(ec2, region, tgw).await?;
            let present = static_routes(ec2, &table).await?;
            for prefix in peer_prefixes(item).iter().map(ToString::to_string) {
                let prefix = prefix.as_str();
                let ours = present
                    .iter()
                    .any(|(d, to)| d == prefix && to.as_deref().is_none_or(|to| to == attachment));
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
        let gateway = vpn.customer_gateway_id().unwrap_or_default();
        if !gateway.is_empty()
            && (removal.made(gateway) || tagged_by_switchboard(ec2, gateway).await?)
        {
            ec2.delete_customer_gateway()
                .customer_gateway_id(gateway)
                .send()
                .await
                .map_err(|e| refused(&format!("delete the customer gateway {gateway}"), e))?;
        }
        Ok(Some(id))
    }
}

/// Recorded as made; or found by this connection and tagged by Switchboard
/// (made by a run that died before recording it).
async fn ours(ec2: &Client, removal: &Removal, id: &str) -> Result<bool, ProviderError> {
    Ok(removal.made(id) || (removal.found(id) && tagged_by_switchboard(ec2, id).await?))
}

async fn remove_peering(ec2: &Client, removal: &Removal) -> Result<Option<String>, ProviderError> {
    let item = &removal.item;

    let (vpc, peer) = (vpc(item)?, peer_vpc(item)?);
    let Some((id, _)) = live_peering(ec2, vpc, peer).await? else {
        return Ok(None);
    };
    if !ours(ec2, removal, &id).await? {
        return Ok(None);
    }
    ec2.delete_vpc_peering_connection()
        .vpc_peering_connection_id(&id)
        .send()
        .await
        .map_err(|e| refused(&format!("delete the peering {id}"), e))?;
    Ok(Some(id))
}

async fn remove_attachment(
    ec2: &Client,
    removal: &Removal,
) -> Result<Option<String>, ProviderError> {
    let item = &removal.item;

    let (vpc, tgw) = (vpc(item)?, gateway(item)?);
    let Some(id) = live_attachment(ec2, tgw, vpc).await? else {
        return Ok(None);
    };
    if !ours(ec2, removal, &id).await? {
        return Ok(None);
    }
    ec2.delete_transit_gateway_vpc_attachment()
        .transit_gateway_attachment_id(&id)
        .send()
        .await
        .map_err(|e| refused(&format!("detach {id}"), e))?;
    Ok(Some(id))
}

async fn remove_rule(
    ec2: &Client,
    conn: Uuid,
    removal: &Removal,
) -> Result<Option<String>, ProviderError> {
    let item = &removal.item;

    let vpc = vpc(item)?;
    let (group, present) = security_group(ec2, vpc).await?;
    let wanted = permissions(item)?;
    // Ours: recorded as made, or found with the description that
    // names this connection.
    let mine = description(conn);
    let opened: Vec<&Permission> = present
        .iter()
        .filter(|p| wanted.contains(p))
        .filter(|p| removal.made(&group) || (removal.found(&group) && p.description == mine))
        .collect();
    if opened.is_empty() {
        return Ok(None);
    }
    let mut ask = ec2.revoke_security_group_ingress().group_id(&group);
    for p in opened {
        ask = ask.ip_permissions(p.to_aws(&p.description));
    }
    ask.send()
        .await
        .map_err(|e| refused(&format!("close {group} to {}", item.name), e))?;
    Ok(Some(group))
}
