//! Guardrails against the real database and mail: a rule set whose own tests
//! fail is not saved; a dev→prod request is refused in the preview and the
//! API naming the rule; a rule asking another team's approval adds that side;
//! a rule saved later is checked at approval and reported to the owners of
//! active connections it would now refuse.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::{World, world};
use crate::helpers::{Options, eventually, maildev_messages, spawn_app_with};
use crate::provisioning::{approve_both, until_status};
use switchboard::domain::team::Role;

fn dev_never_prod() -> Value {
    json!({"name": "dev-never-prod", "description": "development stays out of production",
           "from": {"environment": "dev"}, "to": {"environment": "prod"}, "then": "forbid"})
}

fn dev_to_prod_test(expect: &str) -> Value {
    json!({"name": "dev cannot reach prod", "expect": expect, "by": "dev-never-prod",
           "request": {"kind": "network-to-network",
                       "from": {"team": "payments", "labels": {"environment": "dev"}},
                       "to": {"team": "search", "labels": {"environment": "prod"}}, "ports": "443"}})
}

/// Payments' network is labelled dev, search's prod.
async fn labelled(w: &World, admin: &str) {
    for (net, env) in [(&w.payments_net, "dev"), (&w.search_net, "prod")] {
        let (status, body) = w
            .call(
                admin,
                Method::PATCH,
                &format!("/api/v1/networks/{net}"),
                Some(json!({"tags": {"environment": env}})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The usual world, its mail sent to maildev.
async fn mailed_world() -> World {
    let app = spawn_app_with(Options {
        smtp: true,
        ..Options::default()
    })
    .await;
    world(app).await
}

/// The requester asks for `body`.
async fn requested(w: &World, body: Value) -> (u16, Value) {
    w.call(
        &w.requester,
        Method::POST,
        "/api/v1/connections",
        Some(body),
    )
    .await
}

async fn save(w: &World, token: &str, rule_set: Value, based_on: i64) -> (u16, Value) {
    w.call(
        token,
        Method::PUT,
        "/api/v1/guardrails",
        Some(json!({"rule_set": rule_set, "based_on_version": based_on, "comment": "test"})),
    )
    .await
}

fn link() -> Value {
    json!({"kind": "network-to-network", "reason": "payments calls search",
           "protocol": "tcp", "ports": "443"})
}

fn with_networks(w: &World, mut body: Value) -> Value {
    body["source_network_id"] = json!(w.payments_net);
    body["destination_network_id"] = json!(w.search_net);
    body
}

#[tokio::test]
async fn a_dev_to_prod_request_is_refused_by_name_and_rule_sets_must_pass_their_tests() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let admin = w.app.token("root@example.test", true).await;
    labelled(&w, &admin).await;

    // Nothing saved yet: version 0, and the request would be allowed.
    let (status, none) = w
        .call(&w.requester, Method::GET, "/api/v1/guardrails", None)
        .await;
    assert_eq!((status, none["version"].clone()), (200, json!(0)), "{none}");

    // A set whose own test expects the wrong verdict is not saved.
    let failing = json!({"rules": [dev_never_prod()], "tests": [dev_to_prod_test("allow")]});
    let (status, refused) = save(&w, &admin, failing, 0).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "rule_set", "{refused}");
    assert_eq!(
        refused["errors"][0]["reason"],
        "test \"dev cannot reach prod\" expects allow by dev-never-prod but gets deny (from dev-never-prod)"
    );
    let (_, still) = w
        .call(&w.requester, Method::GET, "/api/v1/guardrails", None)
        .await;
    assert_eq!(still["version"], 0, "nothing saved: {still}");

    // Members may read but not save.
    let good = json!({"rules": [dev_never_prod()], "tests": [dev_to_prod_test("deny")]});
    let (status, _) = save(&w, &w.requester, good.clone(), 0).await;
    assert_eq!(status, 403);
    let (status, saved) = save(&w, &admin, good.clone(), 0).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["guardrails"]["version"], 1);
    // Saved on top of a version that is no longer the latest: refused.
    let (status, stale) = save(&w, &admin, good, 0).await;
    assert_eq!(status, 409, "{stale}");

    // The preview and the request both refuse it, naming the rule.
    let body = with_networks(&w, link());
    for path in ["/api/v1/connections/plan", "/api/v1/connections"] {
        let (status, refused) = w
            .call(&w.requester, Method::POST, path, Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{path}: {refused}");
        let field = &refused["errors"][0];
        assert_eq!(field["field"], "destination_network_id", "{refused}");
        assert_eq!(
            field["reason"],
            "forbidden by the guardrail dev-never-prod (development stays out of production)"
        );
    }
    assert_eq!(w.count("connections").await, 0, "nothing was asked for");

    // Between two prod networks it is allowed.
    let (status, _) = w
        .call(
            &admin,
            Method::PATCH,
            &format!("/api/v1/networks/{}", w.payments_net),
            Some(json!({"tags": {"environment": "prod"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, plan) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections/plan",
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["guardrails"], json!([]), "no rule looks at it");

    // The page shows the rule to everyone, the form only to admins.
    w.app
        .sign_in_dev("rita@example.test", "payments", "member", false)
        .await;
    let page = w.app.get("/guardrails").await.text().await.unwrap();
    assert!(page.contains("dev-never-prod") && !page.contains("Change the guardrails"));
    w.app.sign_in_admin().await;
    let page = w.app.get("/guardrails").await.text().await.unwrap();
    assert!(page.contains("Change the guardrails") && page.contains("Save as version 2"));
}

#[tokio::test]
async fn a_rule_saved_later_is_checked_at_approval_and_reported_to_active_owners() {
    let w = mailed_world().await;
    let admin = w.app.token("root@example.test", true).await;
    labelled(&w, &admin).await;
    let body = with_networks(&w, link());

    // One active, one waiting for approval: both allowed when asked for.
    let (status, active) = requested(&w, body.clone()).await;
    assert_eq!(status, 201, "{active}");
    let active_id = active["id"].as_str().unwrap().to_owned();
    approve_both(&w, &active_id).await;
    until_status(&w, &active_id, "active").await;
    let metrics = json!({"kind": "network-to-network", "reason": "metrics",
                         "protocol": "tcp", "ports": "9100"});
    let (status, waiting) = requested(&w, with_networks(&w, metrics)).await;
    assert_eq!(status, 201, "{waiting}");
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();

    let (status, saved) = save(&w, &admin, json!({"rules": [dev_never_prod()]}), 0).await;
    assert_eq!(status, 200, "{saved}");
    let reported: Vec<&str> = saved["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["connection_id"].as_str().unwrap())
        .collect();
    assert!(reported.contains(&active_id.as_str()), "{saved}");
    assert!(reported.contains(&waiting_id.as_str()), "{saved}");

    // Reported, not removed; the owners hear of it.
    let (_, still) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{active_id}"),
            None,
        )
        .await;
    assert_eq!(still["status"], "active");
    let told = eventually(Duration::from_secs(20), "the lead emailed", || async {
        let mail = maildev_messages(&w.payments_lead_email).await;
        mail.into_iter().find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.contains("breaks the guardrails of version 1"))
        })
    })
    .await;
    assert!(
        told["text"].as_str().unwrap().contains("dev-never-prod"),
        "{told}"
    );

    // The waiting one can no longer be approved.
    let (status, refused) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &format!("/api/v1/connections/{waiting_id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("dev-never-prod"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_rule_can_ask_one_more_team_to_approve() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let admin = w.app.token("root@example.test", true).await;
    let security_lead = w
        .app
        .team_token("sam@example.test", "security", Role::Lead, false)
        .await;
    let rules = json!({"rules": [{"name": "security-sees-443", "ports": "443",
                                  "then": {"approval_from": "security"}}]});
    let (status, saved) = save(&w, &admin, rules, 0).await;
    assert_eq!(status, 200, "{saved}");
    let unknown = json!({"rules": [{"name": "nobody", "then": {"approval_from": "no-such-team"}}]});
    let (status, refused) = save(&w, &admin, unknown, 1).await;
    assert_eq!(status, 422, "{refused}");

    let (status, c) = requested(&w, with_networks(&w, link())).await;
    assert_eq!(status, 201, "{c}");
    let teams: Vec<&str> = c["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["team"].as_str().unwrap())
        .collect();
    assert!(teams.contains(&"security"), "{c}");
    assert_eq!(c["plan"]["guardrails"][0]["outcome"], "approval", "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    let (_, after) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(
        after["status"], "pending_approval",
        "security has not approved yet: {after}"
    );
    let (status, body) = w
        .call(
            &security_lead,
            Method::POST,
            &format!("/api/v1/connections/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_status(&w, &id, "active").await;
}

/// Every re-plan is judged by the rules in force: a rule saved while a
/// request waits asks its new approver at once (emailed), and one saved after
/// the last approval but before the build stops the build, saying why.
#[tokio::test]
async fn rules_saved_after_a_request_reach_it_before_it_is_built() {
    let w = mailed_world().await;
    // Nothing is built until a worker process starts below.
    w.app.stop_workers().await;
    let admin = w.app.token("root@example.test", true).await;
    let security_email = crate::helpers::unique_recipient();
    let security_lead = w
        .app
        .team_token(&security_email, "security", Role::Lead, false)
        .await;
    let ask = |ports: &str| {
        with_networks(
            &w,
            json!({"kind": "network-to-network", "reason": format!("port {ports}"),
                   "protocol": "tcp", "ports": ports}),
        )
    };
    let (status, waiting) = requested(&w, ask("443")).await;
    assert_eq!(status, 201, "{waiting}");
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();
    let (status, approved) = requested(&w, ask("8443")).await;
    assert_eq!(status, 201, "{approved}");
    let approved_id = approved["id"].as_str().unwrap().to_owned();
    approve_both(&w, &approved_id).await;
    until_status(&w, &approved_id, "approved").await;

    let rules = json!({"rules": [
        {"name": "security-sees-443", "ports": "443", "then": {"approval_from": "security"}},
        {"name": "no-8443", "ports": "8443", "then": "forbid"}]});
    let (status, saved) = save(&w, &admin, rules, 0).await;
    assert_eq!(status, 200, "{saved}");

    // The waiting request now waits for security too, and its lead is asked.
    let (_, now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{waiting_id}"),
            None,
        )
        .await;
    let teams: Vec<&str> = now["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["team"].as_str().unwrap())
        .collect();
    assert!(teams.contains(&"security"), "{now}");
    assert_eq!(
        now["plan"]["guardrails"][0]["rule"], "security-sees-443",
        "{now}"
    );
    approve_both(&w, &waiting_id).await;
    let (status, body) = w
        .call(
            &security_lead,
            Method::POST,
            &format!("/api/v1/connections/{waiting_id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The approved one is re-planned by the worker: refused, not built.
    let env = [
        ("DATABASE_URL", w.app.db.url.clone()),
        ("SWITCHBOARD_SMTP_URL", crate::helpers::maildev_smtp()),
    ];
    let mut worker = crate::processes::start(&["work"], &env, &std::env::temp_dir());
    let failed = until_status(&w, &approved_id, "failed").await;
    let built = until_status(&w, &waiting_id, "active").await;
    // Mail goes out through the workers' outbox.
    let asked = eventually(Duration::from_secs(20), "security's lead asked", || async {
        maildev_messages(&security_email).await.into_iter().next()
    })
    .await;
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(
        failed["failure"].as_str().is_some_and(
            |f| f.contains("the guardrails in force refuse it") && f.contains("no-8443")
        ),
        "{failed}"
    );
    assert_eq!(built["status"], "active");
    assert!(
        asked["subject"].as_str().unwrap_or("").contains("tcp 443"),
        "{asked}"
    );
}

/// A change is a plan like any other: a port the rules forbid cannot be
/// added to an active connection, and a change waiting when such a rule is
/// saved cannot be approved.
#[tokio::test]
async fn a_change_of_an_active_connection_is_judged_by_the_rules() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let admin = w.app.token("root@example.test", true).await;
    let (status, c) = requested(&w, with_networks(&w, link())).await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status(&w, &id, "active").await;
    let rules = json!({"rules": [{"name": "no-ssh", "ports": "22", "then": "forbid"}]});
    let (status, saved) = save(&w, &admin, rules, 0).await;
    assert_eq!(status, 200, "{saved}");

    let change = |ports: &str| {
        let body = json!({ "ports": ports });
        let path = format!("/api/v1/connections/{id}/changes");
        let (w, token) = (&w, w.payments_lead.clone());
        async move { w.call(&token, Method::POST, &path, Some(body)).await }
    };
    let (status, refused) = change("443, 22").await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "ports", "{refused}");
    assert!(
        refused["errors"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no-ssh")),
        "{refused}"
    );
    let (_, now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}/changes"),
            None,
        )
        .await;
    assert_eq!(now, json!([]), "nothing was asked: {now}");

    // Allowed when asked; refused at approval once a rule forbids it.
    let (status, wider) = change("443, 8443").await;
    assert_eq!(status, 201, "{wider}");
    let rules = json!({"rules": [{"name": "no-ssh", "ports": "22", "then": "forbid"},
                                 {"name": "no-8443", "ports": "8443", "then": "forbid"}]});
    let (status, saved) = save(&w, &admin, rules, 1).await;
    assert_eq!(status, 200, "{saved}");
    let (status, refused) = w
        .call(
            &w.search_lead,
            Method::POST,
            &format!("/api/v1/changes/{}/approve", wider["id"].as_str().unwrap()),
            Some(json!({"plan_hash": wider["plan_hash"]})),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("no-8443"),
        "{refused}"
    );
}

/// A network's labels include those of the pools its range comes from: a
/// network allocated from a pool labelled `environment=prod` is prod to the
/// rules, with no tag of its own.
#[tokio::test]
async fn a_network_is_labelled_by_its_pool_too() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let admin = w.app.token("root@example.test", true).await;
    let (_, pools) = w.call(&admin, Method::GET, "/api/v1/pools", None).await;
    let corp = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "corp")
        .unwrap()["id"]
        .clone();
    let (status, prod) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/pools",
            Some(
                json!({"name": "prod", "cidr": "10.50.0.0/16", "parent_id": corp,
                        "labels": {"environment": "prod"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{prod}");
    let (_, search) = w
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/networks/{}", w.search_net),
            None,
        )
        .await;
    let (status, vault) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/networks",
            Some(json!({"name": "vault", "team": "search", "region": "local",
                        "provider_account_id": search["provider_account_id"],
                        "pool_id": prod["id"], "prefix_length": 24})),
        )
        .await;
    assert_eq!(status, 201, "{vault}");
    let (status, _) = w
        .call(
            &admin,
            Method::PATCH,
            &format!("/api/v1/networks/{}", w.payments_net),
            Some(json!({"tags": {"environment": "dev"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, saved) = save(&w, &admin, json!({"rules": [dev_never_prod()]}), 0).await;
    assert_eq!(status, 200, "{saved}");

    let mut body = link();
    body["source_network_id"] = json!(w.payments_net);
    body["destination_network_id"] = vault["id"].clone();
    let (status, refused) = requested(&w, body).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("dev-never-prod"), "{refused}");
    // Search's own network, in no labelled pool, is not prod.
    let (status, allowed) = requested(&w, with_networks(&w, link())).await;
    assert_eq!(status, 201, "{allowed}");
}
