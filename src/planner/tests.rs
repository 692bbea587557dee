//! The planner's rules, one behaviour per test, without I/O.

use super::*;

const CLOUD: &[Mechanism] = &[
    Mechanism::TransitGateway,
    Mechanism::VpcPeering,
    Mechanism::InterRegionPeering,
    Mechanism::SiteToSiteVpn,
    Mechanism::SecurityGroupRule,
];
const ONPREM: &[Mechanism] = &[Mechanism::Wireguard, Mechanism::NftablesRule];

fn end(network: &str, kind: &str, account: &str, region: &str, cidr: &str) -> End {
    End {
        network: network.into(),
        team: "t".into(),
        provider_kind: kind.into(),
        account: account.into(),
        region: region.into(),
        prefixes: vec![cidr.parse().unwrap()],
        external_id: None,
        transit_gateway: None,
        endpoint: None,
        capabilities: if kind == "linux" { ONPREM } else { CLOUD }.to_vec(),
    }
}

fn link(a: End, b: End) -> Result<Plan, Refusal> {
    plan(&Ask::NetworkToNetwork {
        a,
        b,
        protocol: Protocol::Tcp,
        ports: vec![PortRange { from: 443, to: 443 }],
    })
}

fn with_tgw(mut e: End, tgw: &str) -> End {
    e.transit_gateway = Some(tgw.into());
    e
}

#[test]
fn a_vpn_to_on_prem_attaches_to_the_transit_gateway_and_routes_each_side_its_way() {
    let cloud = with_tgw(
        end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
        "tgw-1",
    );
    let dc = end("dc", "linux", "dc1", "paris", "192.168.0.0/24");
    let p = link(dc.clone(), cloud.clone()).unwrap();
    let built: Vec<(&str, &str)> = p
        .resources
        .iter()
        .map(|r| (r.account.as_str(), r.kind.as_str()))
        .collect();
    assert_eq!(
        built,
        [
            ("prod", "transit gateway attachment"),
            ("prod", "site-to-site VPN"),
            ("dc1", "IPsec tunnel"),
        ],
        "the cloud's VPN exists before the on-prem end that dials it"
    );
    assert_eq!(p.resources[1].params["peer_prefixes"], "192.168.0.0/24");
    assert_eq!(p.resources[2].params["peer_prefixes"], "10.1.0.0/16");
    let via = |network: &str| {
        p.routes
            .iter()
            .find(|r| r.network == network)
            .map(|r| r.via.clone())
            .unwrap()
    };
    assert_eq!(via("pay"), "tgw-1");
    assert_eq!(via("dc"), "IPsec dc--pay");

    let without = link(end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"), dc).unwrap_err();
    assert_eq!(without.field, "destination_network_id");
    assert!(
        without
            .reason
            .contains("the VPN attaches to the account's transit gateway, and prod has none configured for eu-west-1"),
        "{}",
        without.reason
    );
}

/// End pairs → the mechanism chosen and words the explanation must contain.
#[test]
fn the_mechanism_for_each_pair_of_ends() {
    let cases: Vec<(End, End, Mechanism, &str)> = vec![
        (
            end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
            end("search", "aws", "prod", "eu-west-1", "10.2.0.0/16"),
            Mechanism::VpcPeering,
            "in the account",
        ),
        (
            with_tgw(
                end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                "tgw-1",
            ),
            with_tgw(
                end("search", "aws", "prod", "eu-west-1", "10.2.0.0/16"),
                "tgw-1",
            ),
            Mechanism::TransitGateway,
            "tgw-1",
        ),
        (
            end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
            end("search", "aws", "prod", "us-east-1", "10.2.0.0/16"),
            Mechanism::InterRegionPeering,
            "different regions",
        ),
        (
            end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
            end("search", "aws", "staging", "eu-west-1", "10.2.0.0/16"),
            Mechanism::InterRegionPeering,
            "different accounts",
        ),
        (
            with_tgw(
                end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                "tgw-1",
            ),
            with_tgw(
                end("search", "aws", "prod", "us-east-1", "10.2.0.0/16"),
                "tgw-2",
            ),
            Mechanism::InterRegionPeering,
            "different regions",
        ),
        (
            with_tgw(
                end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
                "tgw-1",
            ),
            end("dc", "linux", "dc1", "paris", "192.168.0.0/24"),
            Mechanism::SiteToSiteVpn,
            "transit gateway tgw-1",
        ),
        (
            end("dc1", "linux", "dc1", "paris", "192.168.0.0/24"),
            end("dc2", "linux", "dc2", "lyon", "192.168.1.0/24"),
            Mechanism::Wireguard,
            "WireGuard",
        ),
        (
            end("a", "sandbox", "demo", "local", "10.1.0.0/16"),
            end("b", "sandbox", "demo", "local", "10.2.0.0/16"),
            Mechanism::VpcPeering,
            "in the account",
        ),
    ];
    for (a, b, want, words) in cases {
        let label = format!("{} ↔ {}", a.network, b.network);
        let p = link(a, b).unwrap_or_else(|r| panic!("{label}: {r:?}"));
        assert_eq!(p.mechanism, want, "{label}");
        assert!(p.explanation.contains(words), "{label}: {}", p.explanation);
        assert!(
            p.rejected.iter().all(|r| r.mechanism != want),
            "{label}: the chosen mechanism is not also rejected"
        );
        assert_eq!(
            p.rejected.len(),
            4,
            "{label}: every alternative is explained"
        );
        assert_eq!(p.routes.len(), 2, "{label}: a route each way");
        assert_eq!(p.rules[0].ports, "443");
    }
}

#[test]
fn overlapping_ranges_are_refused_with_the_prefixes_named() {
    let r = link(
        end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16"),
        end("search", "aws", "prod", "eu-west-1", "10.1.128.0/20"),
    )
    .unwrap_err();
    assert_eq!(r.field, "destination_network_id");
    assert!(
        r.reason
            .contains("10.1.0.0/16 (pay) overlaps 10.1.128.0/20 (search)"),
        "{}",
        r.reason
    );
}

#[test]
fn a_network_cannot_be_linked_to_itself_or_to_nothing() {
    let a = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
    assert!(link(a.clone(), a.clone()).is_err());
    // Two teams may both call a network "prod": different networks.
    let theirs = End {
        team: "search".into(),
        prefixes: vec!["10.2.0.0/16".parse().unwrap()],
        ..a.clone()
    };
    assert!(link(a.clone(), theirs).is_ok());
    let mut odd = end("x", "proxy", "edge", "eu-west-1", "10.9.0.0/16");
    odd.capabilities = vec![Mechanism::ProxyRoute];
    let r = link(a, odd).unwrap_err();
    assert!(r.reason.contains("no mechanism can link"), "{}", r.reason);
}

#[test]
fn rewording_the_prose_leaves_the_hash_alone() {
    let a = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
    let b = end("search", "aws", "prod", "eu-west-1", "10.2.0.0/16");
    let plan = link(a, b).unwrap();
    let mut reworded = plan.clone();
    reworded.summary = "Said differently".into();
    reworded.explanation = "A new explanation in a new release.".into();
    for alternative in &mut reworded.rejected {
        alternative.why_not = "Not this one.".into();
    }
    assert_eq!(plan.hash(), reworded.hash());
    assert!(plan.difference(&reworded).is_empty());

    let mut other_port = plan.clone();
    if let Some(rule) = other_port.rules.first_mut() {
        rule.ports = "22".into();
    } else {
        other_port.routes[0].destination = "10.9.0.0/16".into();
    }
    assert_ne!(plan.hash(), other_port.hash());
    assert!(!plan.difference(&other_port).is_empty());
}

#[test]
fn the_hash_follows_the_plan() {
    let a = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
    let b = end("search", "aws", "prod", "eu-west-1", "10.2.0.0/16");
    let p1 = link(a.clone(), b.clone()).unwrap();
    assert_eq!(p1.hash(), link(a.clone(), b.clone()).unwrap().hash());
    assert!(p1.hash().starts_with("v2:"), "{}", p1.hash());
    assert_eq!(p1.hash().len(), 3 + 64);
    let wider = End {
        prefixes: vec!["10.2.0.0/15".parse().unwrap()],
        ..b
    };
    let p2 = link(a, wider).unwrap();
    assert_ne!(p1.hash(), p2.hash());
    let diff = p1.difference(&p2);
    assert!(
        diff.contains(&"- route 10.2.0.0/16 via peering pay--search in pay".to_string()),
        "{diff:?}"
    );
    assert!(
        diff.contains(&"+ route 10.2.0.0/15 via peering pay--search in pay".to_string()),
        "{diff:?}"
    );
}

#[test]
fn service_exposure_uses_the_proxy_and_dns_when_a_zone_matches() {
    let target = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
    let proxy = (
        Service {
            account: "edge".into(),
            detail: "203.0.113.10".into(),
            source: None,
        },
        vec![],
    );
    let zone = Service {
        account: "dns".into(),
        detail: "example.com".into(),
        source: None,
    };
    let ask = |hostname: &str, address: &str, dns: Vec<Service>| Ask::ServiceExposure {
        target: target.clone(),
        address: address.parse().unwrap(),
        port: 8443,
        hostname: hostname.into(),
        path: "/".into(),
        proxies: vec![proxy.clone()],
        dns,
    };
    let p = plan(&ask("api.example.com", "10.1.2.3", vec![zone.clone()])).unwrap();
    assert_eq!(p.mechanism, Mechanism::ProxyRoute);
    assert_eq!(p.resources.len(), 2);
    assert_eq!(p.resources[1].kind, "DNS record");
    // The proxy gets what it routes, the DNS record the proxy's address.
    let route = &p.resources[0].params;
    assert_eq!(route["hostname"], "api.example.com");
    assert_eq!(route["path"], "/");
    assert_eq!(route["upstream"], "10.1.2.3:8443");
    assert_eq!(p.resources[1].params["value"], "203.0.113.10");
    // The network opens the service's port to the proxy's address.
    assert_eq!(p.rules[0].allow_from, "203.0.113.10/32");
    assert_eq!(p.rules[0].ports, "8443");
    let p = plan(&ask("api.other.org", "10.1.2.3", vec![zone])).unwrap();
    assert_eq!(p.resources.len(), 1);
    assert!(p.rejected[0].why_not.contains("by hand"));
    let r = plan(&ask("api.example.com", "10.9.9.9", vec![])).unwrap_err();
    assert_eq!(r.field, "target_address");
    let mut no_proxy = ask("api.example.com", "10.1.2.3", vec![]);
    if let Ask::ServiceExposure { proxies, .. } = &mut no_proxy {
        proxies.clear();
    }
    let r = plan(&no_proxy).unwrap_err();
    assert!(r.reason.contains("no edge proxy"), "{}", r.reason);
}

#[test]
fn firewall_openings_need_ports_and_use_the_destinations_firewall() {
    let dst = end("pay", "aws", "prod", "eu-west-1", "10.1.0.0/16");
    let from = Source::Cidr("192.0.2.0/24".parse().unwrap());
    let p = plan(&Ask::FirewallOpening {
        source: from.clone(),
        destination: dst.clone(),
        protocol: Protocol::Tcp,
        ports: vec![PortRange {
            from: 5432,
            to: 5432,
        }],
    })
    .unwrap();
    assert_eq!(p.mechanism, Mechanism::SecurityGroupRule);
    assert_eq!(p.rules[0].allow_from, "192.0.2.0/24");
    let onprem = end("dc", "linux", "dc1", "paris", "192.168.0.0/24");
    let p = plan(&Ask::FirewallOpening {
        source: from.clone(),
        destination: onprem,
        protocol: Protocol::Udp,
        ports: vec![PortRange { from: 53, to: 53 }],
    })
    .unwrap();
    assert_eq!(p.mechanism, Mechanism::NftablesRule);
    let r = plan(&Ask::FirewallOpening {
        source: from,
        destination: dst,
        protocol: Protocol::Tcp,
        ports: vec![],
    })
    .unwrap_err();
    assert_eq!(r.field, "ports");
}

#[test]
fn dns_records_go_to_the_account_serving_the_zone() {
    let zones = vec![
        Service {
            account: "corp-dns".into(),
            detail: "corp.example".into(),
            source: None,
        },
        Service {
            account: "public-dns".into(),
            detail: "example.com".into(),
            source: None,
        },
    ];
    let p = plan(&Ask::DnsRecord {
        name: "db.corp.example".into(),
        record_type: "A".into(),
        value: "10.1.2.3".into(),
        ttl: 300,
        dns: zones.clone(),
    })
    .unwrap();
    assert_eq!(p.resources[0].account, "corp-dns");
    let r = plan(&Ask::DnsRecord {
        name: "db.elsewhere.net".into(),
        record_type: "A".into(),
        value: "10.1.2.3".into(),
        ttl: 300,
        dns: zones,
    })
    .unwrap_err();
    assert_eq!(r.field, "name");
    assert!(r.reason.contains("corp.example, example.com"));
}
