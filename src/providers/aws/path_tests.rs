use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn entry(number: i32, egress: bool, allow: bool, protocol: &str, cidr: &str) -> AclEntry {
    AclEntry {
        number,
        egress,
        allow,
        protocol: protocol.to_owned(),
        cidr: Some(net(cidr)),
        ports: None,
    }
}

/// The ACL AWS gives every VPC: all allowed (100), the rest denied (*).
fn default_acl() -> Acl {
    Acl {
        id: "acl-1".into(),
        associated: true,
        entries: [false, true]
            .into_iter()
            .flat_map(|egress| {
                [
                    entry(100, egress, true, "-1", "0.0.0.0/0"),
                    entry(32767, egress, false, "-1", "0.0.0.0/0"),
                ]
            })
            .collect(),
    }
}

fn tcp(port: u16) -> Traffic {
    Traffic {
        protocol: "tcp".into(),
        ports: vec![(port, port)],
    }
}

#[test]
fn the_default_acl_lets_everything_through() {
    let acl = default_acl();
    assert!(acl_blocks(&acl, false, net("10.1.0.0/16"), &tcp(443)).is_none());
    let all = Traffic {
        protocol: "any".into(),
        ports: Vec::new(),
    };
    assert!(acl_blocks(&acl, true, net("10.2.0.0/16"), &all).is_none());
}

#[test]
fn a_lower_numbered_deny_of_the_port_blocks_and_is_named() {
    let mut acl = default_acl();
    acl.entries.insert(
        0,
        AclEntry {
            ports: Some((443, 443)),
            ..entry(90, false, false, "6", "10.1.0.0/16")
        },
    );
    assert_eq!(
        acl_blocks(&acl, false, net("10.1.0.0/16"), &tcp(443)).map(|(e, _)| e.number),
        Some(90)
    );
    // Another port, another source, or the other direction pass.
    assert!(acl_blocks(&acl, false, net("10.1.0.0/16"), &tcp(80)).is_none());
    assert!(acl_blocks(&acl, false, net("10.3.0.0/16"), &tcp(443)).is_none());
    assert!(acl_blocks(&acl, true, net("10.1.0.0/16"), &tcp(443)).is_none());
    // A deny of part of the source range blocks that part.
    acl.entries[0].cidr = Some(net("10.1.5.0/24"));
    assert!(acl_blocks(&acl, false, net("10.1.0.0/16"), &tcp(443)).is_some());
}

#[test]
fn a_deny_after_an_allow_of_all_the_traffic_blocks_nothing() {
    let mut acl = default_acl();
    acl.entries.push(AclEntry {
        ports: Some((443, 443)),
        ..entry(200, false, false, "6", "10.1.0.0/16")
    });
    acl.entries.sort_by_key(|e| e.number);
    assert!(acl_blocks(&acl, false, net("10.1.0.0/16"), &tcp(443)).is_none());
}

#[test]
fn traffic_no_rule_allows_whole_meets_the_closing_deny() {
    let acl = Acl {
        id: "acl-2".into(),
        associated: true,
        entries: vec![
            AclEntry {
                ports: Some((80, 80)),
                ..entry(100, false, true, "6", "0.0.0.0/0")
            },
            entry(32767, false, false, "-1", "0.0.0.0/0"),
        ],
    };
    assert_eq!(
        acl_blocks(&acl, false, net("10.1.0.0/16"), &tcp(443)).map(|(e, _)| e.number),
        Some(32767)
    );
    assert!(acl_blocks(&acl, false, net("10.1.0.0/16"), &tcp(80)).is_none());
}

#[test]
fn a_group_lets_out_what_one_of_its_permissions_holds() {
    let permission = |protocol: &str, from, to, cidr: &str| Permission {
        protocol: protocol.into(),
        from,
        to,
        cidr: cidr.into(),
        description: String::new(),
    };
    let everything = [permission("-1", None, None, "0.0.0.0/0")];
    assert!(lets_out(&everything, net("10.2.0.0/16"), &tcp(443)));
    assert!(!lets_out(&[], net("10.2.0.0/16"), &tcp(443)));
    let web = [permission("tcp", Some(80), Some(443), "10.2.0.0/16")];
    assert!(lets_out(&web, net("10.2.0.0/16"), &tcp(443)));
    assert!(!lets_out(&web, net("10.2.0.0/16"), &tcp(8443)));
    assert!(!lets_out(&web, net("10.0.0.0/8"), &tcp(443)));
}

#[test]
fn a_more_specific_route_elsewhere_takes_part_of_the_destination() {
    let route = |d: &str, t: &str, blackhole| (d.to_owned(), Some(t.to_owned()), blackhole);
    let tables = vec![(
        "rtb-1".to_owned(),
        vec![
            route("10.1.0.0/16", "local", false),
            route("10.2.0.0/16", "pcx-1", false),
            route("10.2.5.0/24", "igw-9", false),
            route("10.2.6.0/24", "pcx-1", false),
            route("10.2.7.0/24", "pcx-old", true),
        ],
    )];
    let stolen = stolen_by(&tables, net("10.2.0.0/16"), Some("pcx-1"));
    assert_eq!(
        stolen,
        [
            "route 10.2.5.0/24 in rtb-1 sends part of 10.2.0.0/16 to igw-9, not to pcx-1",
            "route 10.2.7.0/24 in rtb-1 drops part of 10.2.0.0/16: its target is gone"
        ]
    );
    assert!(stolen_by(&tables, net("10.3.0.0/16"), Some("pcx-1")).is_empty());
}

#[test]
fn traffic_is_read_from_a_firewall_item_and_said_in_words() {
    let item = |protocol: &str, ports: &str| Item {
        label: "firewall rule".into(),
        name: "r".into(),
        detail: String::new(),
        build: Build::FirewallRule {
            network: Network::default(),
            mechanism: Mechanism::SecurityGroupRule,
            allow_from: "10.1.0.0/16".into(),
            protocol: protocol.into(),
            ports: ports.into(),
        },
    };
    assert_eq!(
        Traffic::of(&item("tcp", "443,8000-8080")).unwrap().words(),
        "tcp 443,8000-8080"
    );
    assert_eq!(
        Traffic::of(&item("any", "all ports")).unwrap().words(),
        "all traffic"
    );
}

#[test]
fn rules_one_per_port_let_a_connection_of_several_ports_through() {
    let allow = |number, port| AclEntry {
        ports: Some((port, port)),
        ..entry(number, false, true, "6", "10.0.0.0/8")
    };
    let acl = Acl {
        id: "acl-3".into(),
        associated: true,
        entries: vec![
            allow(100, 443),
            allow(110, 8443),
            entry(32767, false, false, "-1", "0.0.0.0/0"),
        ],
    };
    let both = Traffic {
        protocol: "tcp".into(),
        ports: vec![(443, 443), (8443, 8443)],
    };
    assert!(acl_blocks(&acl, false, net("10.1.0.0/16"), &both).is_none());
    let more = Traffic {
        protocol: "tcp".into(),
        ports: vec![(443, 443), (9000, 9000)],
    };
    let (rule, piece) = acl_blocks(&acl, false, net("10.1.0.0/16"), &more).unwrap();
    assert_eq!((rule.number, piece.words()), (32767, "tcp 9000".to_owned()));
    // The same for a security group's egress.
    let permission = |port| Permission {
        protocol: "tcp".into(),
        from: Some(port),
        to: Some(port),
        cidr: "10.0.0.0/8".into(),
        description: String::new(),
    };
    let group = [permission(443), permission(8443)];
    assert!(lets_out(&group, net("10.2.0.0/16"), &both));
    assert!(!lets_out(&group, net("10.2.0.0/16"), &more));
}

#[test]
fn only_the_acls_of_the_vpcs_subnets_count() {
    let deny_all = Acl {
        id: "acl-default".into(),
        associated: false,
        entries: vec![entry(32767, false, false, "-1", "0.0.0.0/0")],
    };
    let mut state = RegionState::default();
    // A VPC without subnets: its default ACL is what would apply.
    state.acls.insert("vpc-1".into(), vec![deny_all.clone()]);
    assert_eq!(
        state.acl_words("vpc-1", false, net("10.1.0.0/16"), &tcp(443)),
        ["network ACL acl-default of vpc-1 denies tcp 443 in from 10.1.0.0/16 (inbound rule *)"]
    );
    // Its subnets took another ACL: the default one filters nothing.
    state
        .acls
        .insert("vpc-1".into(), vec![deny_all, default_acl()]);
    assert!(
        state
            .acl_words("vpc-1", false, net("10.1.0.0/16"), &tcp(443))
            .is_empty()
    );
}
