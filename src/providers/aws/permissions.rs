//! Security-group permissions: what a firewall item asks for, what a group
//! holds, and which of them this connection opened.

use super::*;

/// One ingress permission, as AWS stores it: a protocol, a port range, a range.
#[derive(Clone, Debug)]
pub(super) struct Permission {
    pub(super) protocol: String,
    pub(super) from: Option<i32>,
    pub(super) to: Option<i32>,
    pub(super) cidr: String,
    pub(super) description: String,
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
    pub(super) fn words(&self) -> String {
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

    pub(super) fn to_aws(&self, description: &str) -> IpPermission {
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

/// Does the resource carry the tag Switchboard puts on everything it makes?
pub(super) async fn tagged_by_switchboard(ec2: &Client, id: &str) -> Result<bool, ProviderError> {
    let found = ec2
        .describe_tags()
        .filters(filter("resource-id", [id]))
        .filters(filter("key", [ITEM_TAG]))
        .send()
        .await
        .map_err(|e| refused(&format!("read the tags of {id}"), e))?;
    Ok(found
        .tags()
        .iter()
        .any(|t| t.resource_id() == Some(id) && t.key() == Some(ITEM_TAG)))
}

pub(super) fn description(conn: Uuid) -> String {
    format!("switchboard connection {conn}")
}

/// The ports a firewall item's text opens (none: every port).
pub(super) fn opened_ports(
    text: &str,
) -> Result<Vec<crate::domain::connection::PortRange>, String> {
    match text {
        "" | "all ports" => Ok(Vec::new()),
        text => parse_ports(text),
    }
}

/// The ingress permissions a firewall-rule item asks for.
pub(super) fn permissions(item: &Item) -> Result<Vec<Permission>, ProviderError> {
    let Build::FirewallRule {
        allow_from,
        protocol,
        ports,
        ..
    } = &item.build
    else {
        return Err(lacks(item, "ports to open"));
    };
    let protocol = protocol.as_str();
    let ports = opened_ports(ports).map_err(ProviderError::Permanent)?;
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
    for cidr in allow_from.split(',').map(str::trim) {
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
pub(super) async fn security_group(
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

pub(super) fn ingress(group: &aws_sdk_ec2::types::SecurityGroup) -> Vec<Permission> {
    read_permissions(group.ip_permissions())
}

/// What the group lets out (the range is where traffic may go).
pub(super) fn egress(group: &aws_sdk_ec2::types::SecurityGroup) -> Vec<Permission> {
    read_permissions(group.ip_permissions_egress())
}

fn read_permissions(permissions: &[IpPermission]) -> Vec<Permission> {
    let mut present = Vec::new();
    for p in permissions {
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
