//! Networks Switchboard builds: a VPC with the network's range and one subnet
//! per availability zone, each tagged with the network (`switchboard:network`)
//! and its team (`switchboard:team`). The VPC is found by that tag before one
//! is made, so a build killed after AWS made it finds it on the next run, and
//! never makes a second; removal takes away only what carries the tag.

use aws_sdk_ec2::types::{Subnet as AwsSubnet, Vpc, VpcCidrBlockStateCode};

use super::*;

/// The tag naming the network a VPC or subnet was built for.
pub(super) const NETWORK_TAG: &str = "switchboard:network";

fn network_tags(kind: ResourceType, network_id: Uuid, team: &str, name: &str) -> TagSpecification {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    TagSpecification::builder()
        .resource_type(kind)
        .tags(tag(NETWORK_TAG, &network_id.to_string()))
        .tags(tag(TEAM_TAG, team))
        .tags(tag("Name", name))
        .build()
}

impl Aws {
    /// The VPC built for `network_id`, if there is one.
    async fn tagged_vpc(
        &self,
        ec2: &Client,
        network_id: Uuid,
    ) -> Result<Option<Vpc>, ProviderError> {
        let found = ec2
            .describe_vpcs()
            .filters(filter(
                &format!("tag:{NETWORK_TAG}"),
                [network_id.to_string()],
            ))
            .send()
            .await
            .map_err(|e| refused("look for the network's VPC", e))?;
        Ok(found.vpcs().first().cloned())
    }

    /// Builds (or finds, or completes) the VPC of a network and its subnets;
    /// the step's id is the VPC's.
    pub(super) async fn network(
        &self,
        network_id: Uuid,
        item: &Item,
    ) -> Result<Step, ProviderError> {
        let Build::Network {
            network,
            team,
            cidr,
            subnets,
            ..
        } = &item.build
        else {
            return Err(lacks(item, "network"));
        };
        let ec2 = self.ec2(&self.account, region(item)?)?;
        let name = format!("{team}/{}", network.name);
        let (vpc, mut action) = match self.tagged_vpc(&ec2, network_id).await? {
            Some(vpc) => (vpc.vpc_id().unwrap_or_default().to_owned(), "found"),
            None => {
                let made = ec2
                    .create_vpc()
                    .cidr_block(cidr.to_string())
                    .tag_specifications(network_tags(ResourceType::Vpc, network_id, team, &name))
                    .send()
                    .await
                    .map_err(|e| refused(&format!("create a VPC for {cidr}"), e))?;
                let id = made.vpc().and_then(|v| v.vpc_id()).ok_or_else(|| {
                    ProviderError::Transient("AWS answered without the new VPC".into())
                })?;
                (id.to_owned(), "created")
            }
        };
        let existing = vpc_subnets(&ec2, &[vpc.as_str()]).await?;
        for subnet in subnets {
            let wanted = subnet.cidr.to_string();
            if existing
                .iter()
                .any(|s| s.cidr_block() == Some(wanted.as_str()))
            {
                continue;
            }
            ec2.create_subnet()
                .vpc_id(&vpc)
                .cidr_block(&wanted)
                .availability_zone(&subnet.zone)
                .tag_specifications(network_tags(
                    ResourceType::Subnet,
                    network_id,
                    team,
                    &format!("{name} {}", subnet.zone),
                ))
                .send()
                .await
                .map_err(|e| {
                    refused(&format!("create the subnet {wanted} in {}", subnet.zone), e)
                })?;
            if action == "found" {
                action = "repaired";
            }
        }
        Ok(Step::new(action, item, Some(vpc)))
    }

    /// Removes the network's subnets and its VPC, when Switchboard made them
    /// (recorded, or carrying the network's tag); the step names the VPC.
    pub(super) async fn remove_network(
        &self,
        network_id: Uuid,
        removal: &Removal,
    ) -> Result<Option<String>, ProviderError> {
        let ec2 = self.ec2(&self.account, region(&removal.item)?)?;
        let vpc = match self.tagged_vpc(&ec2, network_id).await? {
            Some(vpc) => vpc.vpc_id().unwrap_or_default().to_owned(),
            None => match removal.made.first() {
                Some(id) if exists(&ec2, id).await? => id.clone(),
                _ => return Ok(None),
            },
        };
        for subnet in vpc_subnets(&ec2, &[vpc.as_str()]).await? {
            let id = subnet.subnet_id().unwrap_or_default();
            let ours = subnet.tags().iter().any(|t| {
                t.key() == Some(NETWORK_TAG) && t.value() == Some(&network_id.to_string())
            });
            if !ours {
                return Err(ProviderError::Permanent(format!(
                    "the VPC {vpc} holds the subnet {id}, which Switchboard did not make: remove it first"
                )));
            }
            already_ok(
                ec2.delete_subnet().subnet_id(id).send().await,
                "InvalidSubnetID.NotFound",
                || format!("delete the subnet {id}"),
            )?;
        }
        already_ok(
            ec2.delete_vpc().vpc_id(&vpc).send().await,
            "InvalidVpcID.NotFound",
            || format!("delete the VPC {vpc}"),
        )?;
        Ok(Some(vpc))
    }
}

async fn exists(ec2: &Client, vpc: &str) -> Result<bool, ProviderError> {
    let found = ec2
        .describe_vpcs()
        .filters(filter("vpc-id", [vpc]))
        .send()
        .await
        .map_err(|e| refused(&format!("look for {vpc}"), e))?;
    Ok(!found.vpcs().is_empty())
}

/// The subnets of these VPCs, every page.
pub(super) async fn vpc_subnets(
    ec2: &Client,
    vpcs: &[&str],
) -> Result<Vec<AwsSubnet>, ProviderError> {
    let mut all = Vec::new();
    for chunk in vpcs.chunks(FILTER_VALUES) {
        let mut pages = ec2
            .describe_subnets()
            .filters(filter("vpc-id", chunk.iter().copied()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| refused("read the subnets", e))?;
            all.extend(page.subnets().iter().cloned());
        }
    }
    Ok(all)
}

/// The built networks' VPCs of a region: their associated ranges and subnets.
pub(super) async fn read_networks(
    ec2: &Client,
    vpcs: &[&str],
    state: &mut RegionState,
) -> Result<(), ProviderError> {
    for chunk in vpcs.chunks(FILTER_VALUES) {
        let mut pages = ec2
            .describe_vpcs()
            .filters(filter("vpc-id", chunk.iter().copied()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| refused("read the VPCs", e))?;
            for v in page.vpcs() {
                let ranges = v
                    .cidr_block_association_set()
                    .iter()
                    .filter(|a| {
                        a.cidr_block_state().and_then(|s| s.state())
                            == Some(&VpcCidrBlockStateCode::Associated)
                    })
                    .filter_map(|a| a.cidr_block().map(str::to_owned))
                    .collect();
                state
                    .vpcs
                    .insert(v.vpc_id().unwrap_or_default().to_owned(), ranges);
            }
        }
    }
    for s in vpc_subnets(ec2, vpcs).await? {
        state
            .subnets
            .entry(s.vpc_id().unwrap_or_default().to_owned())
            .or_default()
            .push((
                s.cidr_block().unwrap_or_default().to_owned(),
                s.availability_zone().unwrap_or_default().to_owned(),
            ));
    }
    Ok(())
}

impl RegionState {
    /// How a built network differs: its VPC gone, its range no longer
    /// associated, a subnet missing.
    pub(super) fn network_differences(&self, item: &Item) -> Vec<String> {
        let (Build::Network { cidr, subnets, .. }, Ok(vpc)) = (&item.build, vpc(item)) else {
            return Vec::new();
        };
        let Some(ranges) = self.vpcs.get(vpc) else {
            return vec![format!("the VPC {vpc} no longer exists")];
        };
        let cidr = cidr.to_string();
        if !ranges.contains(&cidr) {
            return vec![format!("the VPC {vpc} no longer has the range {cidr}")];
        }
        let present = self.subnets.get(vpc).map(Vec::as_slice).unwrap_or_default();
        subnets
            .iter()
            .filter(|s| {
                !present
                    .iter()
                    .any(|(c, zone)| *c == s.cidr.to_string() && *zone == s.zone)
            })
            .map(|s| format!("the subnet {} in {} of {vpc} is missing", s.cidr, s.zone))
            .collect()
    }
}
