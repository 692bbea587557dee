use super::*;

fn rules(json: serde_json::Value) -> RuleSet {
    serde_json::from_value(json).unwrap()
}

fn end(team: &str, env: &str) -> Option<End> {
    Some(End {
        team: team.into(),
        labels: [("environment".to_owned(), env.to_owned())].into(),
    })
}

fn link(from: Option<End>, to: Option<End>, ports: &str) -> Proposal {
    Proposal {
        kind: Kind::NetworkToNetwork,
        from,
        source_cidr: None,
        to,
        ports: ports.into(),
        expires_in_days: None,
        open_for_team: 0,
        open_into_network: 0,
    }
}

fn examples() -> RuleSet {
    rules(serde_json::json!({"rules": [
        {"name": "dev-never-prod", "description": "development stays out of production",
         "from": {"environment": "dev"}, "to": {"environment": "prod"}, "then": "forbid"},
        {"name": "no-admin-ports-from-outside", "ports": "22, 3389", "from_outside_team": true, "then": "forbid"},
        {"name": "no-internet-source", "source_covers": "0.0.0.0/0", "then": "forbid"},
        {"name": "short-openings-into-prod", "kinds": ["firewall-opening"], "to": {"environment": "prod"},
         "then": {"max_expiry_days": 30}},
        {"name": "security-sees-prod-exposures", "kinds": ["service-exposure"], "to": {"environment": "prod"},
         "then": {"approval_from": "security"}},
        {"name": "ten-per-team", "then": {"at_most": {"count": 10, "per": "team"}}}
    ]}))
}

fn denied_by(set: &RuleSet, p: &Proposal) -> Vec<String> {
    set.judge(p)
        .into_iter()
        .filter(|v| v.outcome == Outcome::Deny)
        .map(|v| v.rule)
        .collect()
}

#[test]
fn labels_of_both_ends_decide_a_forbidden_reach() {
    let set = examples();
    let dev_to_prod = link(end("web", "dev"), end("payments", "prod"), "443");
    assert_eq!(denied_by(&set, &dev_to_prod), ["dev-never-prod"]);
    let verdict = set.judge(&dev_to_prod).remove(0);
    assert_eq!(
        verdict.reason,
        "forbidden by the guardrail dev-never-prod (development stays out of production)"
    );
    assert_eq!(verdict.field, "destination_network_id");
    assert!(
        denied_by(
            &set,
            &link(end("web", "prod"), end("payments", "prod"), "443")
        )
        .is_empty()
    );
    assert!(
        denied_by(
            &set,
            &link(end("web", "dev"), end("payments", "dev"), "443")
        )
        .is_empty()
    );
    // An end without the label is not "dev".
    assert!(denied_by(&set, &link(None, end("payments", "prod"), "443")).is_empty());
}

#[test]
fn admin_ports_only_from_the_owning_team() {
    let set = examples();
    let outside = link(end("web", "prod"), end("payments", "prod"), "20-25");
    assert_eq!(denied_by(&set, &outside), ["no-admin-ports-from-outside"]);
    assert_eq!(set.judge(&outside)[0].field, "ports");
    let all_ports = link(end("web", "prod"), end("payments", "prod"), "");
    assert_eq!(denied_by(&set, &all_ports), ["no-admin-ports-from-outside"]);
    let inside = link(end("payments", "prod"), end("payments", "prod"), "22");
    assert!(denied_by(&set, &inside).is_empty());
    let web = link(end("web", "prod"), end("payments", "prod"), "443, 8443");
    assert!(denied_by(&set, &web).is_empty());
}

#[test]
fn anywhere_as_a_source_expiry_approvals_and_limits() {
    let set = examples();
    let mut opening = Proposal {
        kind: Kind::FirewallOpening,
        from: None,
        source_cidr: Some("0.0.0.0/0".parse().unwrap()),
        to: end("payments", "dev"),
        ports: "443".into(),
        expires_in_days: None,
        open_for_team: 0,
        open_into_network: 0,
    };
    assert_eq!(denied_by(&set, &opening), ["no-internet-source"]);
    opening.source_cidr = Some("203.0.113.0/24".parse().unwrap());
    assert!(denied_by(&set, &opening).is_empty());

    opening.to = end("payments", "prod");
    assert_eq!(denied_by(&set, &opening), ["short-openings-into-prod"]);
    assert_eq!(set.judge(&opening)[0].field, "expires_in_hours");
    opening.expires_in_days = Some(30);
    assert!(denied_by(&set, &opening).is_empty());

    let exposure = Proposal {
        kind: Kind::ServiceExposure,
        ..link(None, end("payments", "prod"), "")
    };
    let approval: Vec<Outcome> = set
        .judge(&exposure)
        .into_iter()
        .map(|v| v.outcome)
        .collect();
    assert!(
        approval.contains(&Outcome::Approval("security".into())),
        "{approval:?}"
    );

    let mut busy = link(end("web", "prod"), end("payments", "prod"), "443");
    busy.open_for_team = 9;
    assert!(denied_by(&set, &busy).is_empty());
    busy.open_for_team = 10;
    assert_eq!(denied_by(&set, &busy), ["ten-per-team"]);
}

#[test]
fn a_rule_set_whose_tests_fail_says_which_and_why() {
    let mut set = examples();
    set.tests = serde_json::from_value(serde_json::json!([
        {"name": "dev cannot reach prod", "expect": "deny", "by": "dev-never-prod",
         "request": {"kind": "network-to-network", "from": {"team": "web", "labels": {"environment": "dev"}},
                     "to": {"team": "payments", "labels": {"environment": "prod"}}, "ports": "443"}},
        {"name": "prod reaches prod", "expect": "allow",
         "request": {"kind": "network-to-network", "from": {"team": "web", "labels": {"environment": "prod"}},
                     "to": {"team": "payments", "labels": {"environment": "prod"}}, "ports": "443"}}
    ]))
    .unwrap();
    assert_eq!(set.problems(), Vec::<String>::new());

    set.tests[1].request.ports = "22".into();
    assert_eq!(
        set.problems(),
        [
            "test \"prod reaches prod\" expects allow but gets deny (from no-admin-ports-from-outside)"
        ]
    );
    set.tests[1].request.ports = "443".into();
    set.tests[0].by = Some("ten-per-team".into());
    assert_eq!(
        set.problems(),
        [
            "test \"dev cannot reach prod\" expects deny by ten-per-team but gets deny (from dev-never-prod)"
        ]
    );
}

#[test]
fn a_malformed_rule_set_is_refused_before_any_test() {
    let set = rules(serde_json::json!({"rules": [
        {"name": "a", "ports": "22-1", "then": "forbid"},
        {"name": "a", "then": {"max_expiry_days": 0}},
        {"name": " ", "then": {"approval_from": ""}}
    ]}));
    let problems = set.problems();
    assert!(
        problems.iter().any(|p| p.starts_with("rule a: ports:")),
        "{problems:?}"
    );
    assert!(
        problems.contains(&"two rules are called a".to_owned()),
        "{problems:?}"
    );
    assert!(problems.contains(&"rule a: max_expiry_days must be at least 1".to_owned()));
    assert!(problems.contains(&"every rule needs a name of 1 to 100 characters".to_owned()));
    let unknown = serde_json::from_value::<RuleSet>(
        serde_json::json!({"rules": [{"name": "x", "then": "allow"}]}),
    );
    assert!(unknown.is_err());
}
