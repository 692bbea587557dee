//! Planning a network Switchboard builds: the range the address plan gave it,
//! cut into one subnet per availability zone of its region. The plan is what
//! a lead approves (its hash) and exactly what the workers build.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::build::{Build, Network, Subnet, UnderlayAddress};
use super::{Refusal, Resource, refuse};
use crate::domain::network::subnets;

/// What a new network asks of its provider account.
pub struct NetworkAsk<'a> {
    pub account: &'a str,
    /// The account's kind: only some build networks.
    pub provider_kind: &'a str,
    pub region: &'a str,
    pub name: &'a str,
    pub team: &'a str,
    pub cidr: IpNet,
    /// The region's availability zones, in the order subnets go into them.
    pub zones: &'a [String],
    /// A namespace's place on its account's underlay, when the account has one.
    pub underlay: Option<UnderlayAddress>,
}

/// The range sizes a VPC (and each of its subnets) may have in AWS.
const VPC_LENGTHS: std::ops::RangeInclusive<u8> = 16..=28;

/// The planned network: one resource, and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPlan {
    pub resource: Resource,
    pub summary: String,
}

impl NetworkPlan {
    /// What approval binds: the resource (not the prose), versioned like a
    /// connection's plan hash.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(serde_json::to_vec(&self.resource).unwrap_or_default());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("n1:{hex}")
    }

    /// What the provider builds, read back from the stored resource.
    pub fn build(&self) -> Result<Build, String> {
        Build::from_stored(&self.resource.kind, &self.resource.params)
    }

    /// Its subnets, one per zone (none for a namespace).
    pub fn subnets(&self) -> Vec<Subnet> {
        match self.build() {
            Ok(Build::Network { subnets, .. }) => subnets,
            _ => Vec::new(),
        }
    }
}

/// Whether accounts of `kind` build the networks asked of them.
pub fn builds_networks(kind: &str) -> bool {
    matches!(kind, "aws" | "sandbox" | "linux")
}

/// The zones of a region when the account names none: AWS's first three.
pub fn default_zones(region: &str) -> Vec<String> {
    ["a", "b", "c"]
        .iter()
        .map(|z| format!("{region}{z}"))
        .collect()
}

/// Plans the network, or says which field makes it impossible.
pub fn plan_network(ask: &NetworkAsk<'_>) -> Result<NetworkPlan, Refusal> {
    if !builds_networks(ask.provider_kind) {
        return Err(refuse(
            "provider_account_id",
            format!(
                "{} accounts do not build networks in this version: register an existing one with its external_id",
                ask.provider_kind
            ),
        ));
    }
    let IpNet::V4(_) = ask.cidr else {
        return Err(refuse(
            "prefix_length",
            "this version builds IPv4 networks only",
        ));
    };
    let length = ask.cidr.prefix_len();
    if ask.provider_kind == "linux" {
        return Ok(namespace_plan(ask));
    }
    if !VPC_LENGTHS.contains(&length) {
        return Err(refuse(
            "prefix_length",
            format!(
                "a network built in {} is a /{} to a /{}, not a /{length}",
                ask.account,
                VPC_LENGTHS.start(),
                VPC_LENGTHS.end()
            ),
        ));
    }
    let cut = subnets(ask.cidr, ask.zones.len(), *VPC_LENGTHS.end())
        .map_err(|why| refuse("prefix_length", why))?;
    let subnets: Vec<Subnet> = ask
        .zones
        .iter()
        .zip(cut)
        .map(|(zone, cidr)| Subnet {
            zone: zone.clone(),
            cidr,
        })
        .collect();
    let each = subnets
        .first()
        .map(|s| format!("/{}", s.cidr.prefix_len()))
        .unwrap_or_default();
    let summary = format!(
        "A network {} for {} in {} ({}): {} with one {each} subnet in each of {}.",
        ask.name,
        ask.team,
        ask.account,
        ask.region,
        ask.cidr,
        ask.zones.join(", ")
    );
    let build = Build::Network {
        network: Network {
            account: ask.account.to_owned(),
            name: ask.name.to_owned(),
            region: ask.region.to_owned(),
            id: None,
            endpoint: None,
        },
        team: ask.team.to_owned(),
        cidr: ask.cidr,
        subnets,
        underlay: None,
    };
    let detail = format!("{} in {}", ask.cidr, ask.region);
    Ok(NetworkPlan {
        resource: Resource::new(ask.account, ask.name.to_owned(), detail, build),
        summary,
    })
}

/// A linux network: a namespace holding the range's first address (no zones).
fn namespace_plan(ask: &NetworkAsk<'_>) -> NetworkPlan {
    let first = ask.cidr.hosts().next().unwrap_or(ask.cidr.addr());
    let reached = match &ask.underlay {
        Some(u) => format!(
            ", its tunnels reached at {} on the bridge {}",
            u.address.addr(),
            u.bridge
        ),
        None => String::new(),
    };
    let summary = format!(
        "A network {} for {} in {}: a namespace with {} and its first address {first}{reached}.",
        ask.name, ask.team, ask.account, ask.cidr
    );
    let build = Build::Network {
        network: Network {
            account: ask.account.to_owned(),
            name: ask.name.to_owned(),
            region: ask.region.to_owned(),
            id: None,
            endpoint: None,
        },
        team: ask.team.to_owned(),
        cidr: ask.cidr,
        subnets: Vec::new(),
        underlay: ask.underlay.clone(),
    };
    NetworkPlan {
        resource: Resource::new(
            ask.account,
            ask.name.to_owned(),
            ask.cidr.to_string(),
            build,
        ),
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(cidr: &str, zones: &'a [String]) -> NetworkAsk<'a> {
        NetworkAsk {
            account: "cloud",
            provider_kind: "aws",
            region: "eu-west-1",
            name: "payments-prod",
            team: "payments",
            cidr: cidr.parse().unwrap(),
            zones,
            underlay: None,
        }
    }

    #[test]
    fn a_vpc_gets_one_subnet_per_zone_and_approval_binds_what_is_built() {
        let zones = default_zones("eu-west-1");
        let plan = plan_network(&ask("10.20.0.0/16", &zones)).unwrap();
        let Build::Network { subnets, cidr, .. } = plan.build().unwrap() else {
            panic!("not a network");
        };
        assert_eq!(cidr, "10.20.0.0/16".parse::<IpNet>().unwrap());
        let cut: Vec<String> = subnets
            .iter()
            .map(|s| format!("{}={}", s.zone, s.cidr))
            .collect();
        assert_eq!(
            cut,
            [
                "eu-west-1a=10.20.0.0/18",
                "eu-west-1b=10.20.64.0/18",
                "eu-west-1c=10.20.128.0/18"
            ]
        );
        assert!(
            plan.summary
                .contains("one /18 subnet in each of eu-west-1a")
        );
        let other = plan_network(&ask("10.21.0.0/16", &zones)).unwrap();
        assert_ne!(plan.hash(), other.hash());
        let reworded = NetworkPlan {
            summary: "other words".into(),
            ..plan.clone()
        };
        assert_eq!(plan.hash(), reworded.hash());
    }

    #[test]
    fn a_range_no_vpc_can_have_is_refused_at_the_prefix_length() {
        let zones = default_zones("eu-west-1");
        let big = plan_network(&ask("10.0.0.0/8", &zones)).unwrap_err();
        assert_eq!(big.field, "prefix_length");
        assert!(
            big.reason.contains("/16 to a /28, not a /8"),
            "{}",
            big.reason
        );
        let small = plan_network(&ask("10.0.0.0/27", &zones)).unwrap_err();
        assert!(small.reason.contains("ask for a /26"), "{}", small.reason);
        let proxy = plan_network(&NetworkAsk {
            provider_kind: "proxy",
            ..ask("10.0.0.0/24", &zones)
        })
        .unwrap_err();
        assert_eq!(proxy.field, "provider_account_id");
        let linux = plan_network(&NetworkAsk {
            provider_kind: "linux",
            ..ask("10.0.0.0/8", &zones)
        })
        .unwrap();
        assert!(
            linux
                .summary
                .contains("a namespace with 10.0.0.0/8 and its first address 10.0.0.1"),
            "{}",
            linux.summary
        );
    }

    #[test]
    fn a_namespace_on_an_underlay_says_where_its_tunnels_are_reached() {
        let underlay = UnderlayAddress {
            bridge: "sbul0".into(),
            address: "192.168.90.2/24".parse().unwrap(),
        };
        let plan = plan_network(&NetworkAsk {
            provider_kind: "linux",
            underlay: Some(underlay.clone()),
            ..ask("10.61.0.0/24", &[])
        })
        .unwrap();
        assert!(
            plan.summary
                .ends_with("its tunnels reached at 192.168.90.2 on the bridge sbul0."),
            "{}",
            plan.summary
        );
        let Build::Network {
            underlay: built, ..
        } = plan.build().unwrap()
        else {
            panic!("not a network");
        };
        assert_eq!(built, Some(underlay));
        let without = plan_network(&NetworkAsk {
            provider_kind: "linux",
            ..ask("10.61.0.0/24", &[])
        })
        .unwrap();
        assert_ne!(plan.hash(), without.hash(), "approval covers the underlay");
    }
}
