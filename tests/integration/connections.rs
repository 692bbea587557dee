//! Connection requests through the API: plan, consent of both sides, never
//! self-approval, reject, cancel, expiry, emails, and who may see what.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard::domain::team::Role;

use crate::helpers::{
    Options, TestApp, api_call, eventually, maildev_messages, spawn_app, spawn_app_with,
    unique_recipient,
};

/// Two teams with a network each in one sandbox account, and their people.
pub(crate) struct World {
    pub app: TestApp,
    pub requester: String,
    pub payments_lead: String,
    pub payments_lead_email: String,
    pub search_lead: String,
    pub search_lead_email: String,
    pub outsider: String,
    pub payments_net: String,
    pub search_net: String,
}

/// Registers a network from its full description (region, external id…).
pub(crate) async fn network_from(app: &TestApp, token: &str, body: Value) -> String {
    let (status, net) = api_call(app, token, Method::POST, "/api/v1/networks", Some(body)).await;
    assert_eq!(status, 201, "{net}");
    net["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn world(app: TestApp) -> World {
    world_on(
        app,
        json!({"kind": "sandbox", "name": "demo", "regions": ["local"]}),
        |account| {
            [
                ("payments", "10.1.0.0/16", "local", None),
                ("search", "10.2.0.0/16", "local", None),
            ]
            .map(|(team, cidr, region, id): (&str, &str, &str, Option<&str>)| {
                json!({"name": format!("{team}-prod"), "team": team, "provider_account_id": account["id"],
                       "region": region, "cidr": cidr, "external_id": id})
            })
        },
    )
    .await
}

/// The two teams and their people, with a network each in `account`
/// (`networks` gives the payments and the search network's descriptions).
pub(crate) async fn world_on(
    app: TestApp,
    account: Value,
    networks: impl FnOnce(&Value) -> [Value; 2],
) -> World {
    let admin = app.token("root@example.test", true).await;
    let (status, space) = api_call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/pools",
        Some(json!({"name": "corp", "cidr": "10.0.0.0/8", "parent_id": null})),
    )
    .await;
    assert_eq!(status, 201, "{space}");
    let (status, account) = api_call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/provider-accounts",
        Some(account),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let payments_lead_email = unique_recipient();
    let search_lead_email = unique_recipient();
    let requester = app.member_token("rita@example.test", "payments").await;
    let payments_lead = app
        .team_token(&payments_lead_email, "payments", Role::Lead, false)
        .await;
    let search_lead = app
        .team_token(&search_lead_email, "search", Role::Lead, false)
        .await;
    let outsider = app.member_token("olga@example.test", "billing").await;
    let [payments, search] = networks(&account);
    let payments_net = network_from(&app, &admin, payments).await;
    let search_net = network_from(&app, &admin, search).await;
    World {
        app,
        requester,
        payments_lead,
        payments_lead_email,
        search_lead,
        search_lead_email,
        outsider,
        payments_net,
        search_net,
    }
}

impl World {
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        api_call(&self.app, token, method, path, body).await
    }

    pub async fn request(&self) -> Value {
        let (status, c) = self
            .call(
                &self.requester,
                Method::POST,
                "/api/v1/connections",
                Some(json!({"kind": "network-to-network", "reason": "payments calls search",
                            "source_network_id": self.payments_net, "destination_network_id": self.search_net,
                            "protocol": "tcp", "ports": "443"})),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        c
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn both_leads_approve_and_provisioning_is_queued_once() {
    let w = world(
        spawn_app_with(Options {
            smtp: true,
            ..Options::default()
        })
        .await,
    )
    .await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["status"], "pending_approval");
    assert_eq!(c["mechanism"], "vpc-peering");
    assert_eq!(c["plan"]["routes"].as_array().unwrap().len(), 2);
    let hash = c["plan_hash"].as_str().unwrap();
    assert!(hash.starts_with("v2:") && hash.len() == 3 + 64, "{hash}");
    assert_eq!(c["sides"].as_array().unwrap().len(), 2);

    // Both leads are asked, with a link to the request.
    for lead in [&w.payments_lead_email, &w.search_lead_email] {
        let mail = eventually(Duration::from_secs(15), "the approval email", || async {
            maildev_messages(lead).await.into_iter().next()
        })
        .await;
        assert!(
            mail["subject"]
                .as_str()
                .unwrap()
                .starts_with("Approval needed"),
            "{mail}"
        );
        let text = mail["text"].as_str().unwrap();
        assert!(
            text.contains(&format!("{}/connections/{id}", w.app.address)),
            "{text}"
        );
        assert!(text.contains("payments calls search"));
    }

    // Both leads approve at the same instant: approved once, one job.
    let path = format!("/api/v1/connections/{id}/approve");
    let hash = c["plan_hash"].clone();
    let (a, b) = tokio::join!(
        w.call(
            &w.payments_lead,
            Method::POST,
            &path,
            Some(json!({"plan_hash": hash}))
        ),
        w.call(
            &w.search_lead,
            Method::POST,
            &path,
            Some(json!({"comment": "fine"}))
        ),
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    let (_, now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    // Approved, and already on its way: the workers pick the job up at once.
    assert!(
        ["approved", "provisioning", "active"].contains(&now["status"].as_str().unwrap()),
        "{now}"
    );
    assert!(
        now["sides"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["decision"] == "approved" && s["plan_hash"] == hash)
    );
    assert_eq!(w.app.job_count("switchboard.provision").await, 1);

    // Approving again changes nothing.
    let (status, problem) = w.call(&w.payments_lead, Method::POST, &path, None).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(w.app.job_count("switchboard.provision").await, 1);

    // Built exactly once.
    let id_for_wait = id.to_owned();
    eventually(Duration::from_secs(30), "active", || async {
        let (_, c) = w
            .call(
                &w.requester,
                Method::GET,
                &format!("/api/v1/connections/{id_for_wait}"),
                None,
            )
            .await;
        (c["status"] == "active").then_some(())
    })
    .await;
    let (_, events) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}/events"),
            None,
        )
        .await;
    // Then the workers build it (see tests/integration/provisioning.rs).
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .take(3)
        .collect();
    assert_eq!(
        actions,
        [
            "connection.requested",
            "connection.approved",
            "connection.approved"
        ]
    );
    let all: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        all.iter()
            .filter(|a| *a == "connection.provisioning")
            .count(),
        1,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|a| *a == "connection.active").count(),
        1,
        "{all:?}"
    );
    let (status, plan) = w
        .call(
            &w.search_lead,
            Method::GET,
            &format!("/api/v1/connections/{id}/plan"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(plan["plan_hash"], hash);
    assert!(
        plan["plan"]["explanation"]
            .as_str()
            .unwrap()
            .contains("VPC peering")
    );
}

#[tokio::test]
async fn a_requester_never_approves_their_own_request() {
    let w = world(spawn_app().await).await;
    // A lead of both teams, and an admin: still not for their own request.
    let boss = w
        .app
        .team_token("boss@example.test", "payments", Role::Lead, true)
        .await;
    w.app
        .team_token("boss@example.test", "search", Role::Lead, true)
        .await;
    let (status, c) = w
        .call(
            &boss,
            Method::POST,
            "/api/v1/connections",
            Some(json!({"kind": "network-to-network", "reason": "mine",
                        "source_network_id": w.payments_net, "destination_network_id": w.search_net})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    let (status, problem) = w
        .call(
            &boss,
            Method::POST,
            &format!("/api/v1/connections/{id}/approve"),
            None,
        )
        .await;
    // A permission refusal (403), not a conflict, with the reason.
    assert_eq!(status, 403);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("you requested this connection"),
        "{problem}"
    );
    let (_, now) = w
        .call(
            &boss,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(now["status"], "pending_approval");
    assert!(
        now["sides"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["decision"].is_null())
    );
    // A plain member cannot approve either, and is told who may.
    let (status, problem) = w
        .call(
            &w.requester,
            Method::POST,
            &format!("/api/v1/connections/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("only a lead of payments or search may approve it"),
        "{problem}"
    );
}

#[tokio::test]
async fn reject_needs_a_comment_and_cancel_is_the_requesters() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    let reject = format!("/api/v1/connections/{id}/reject");
    let (status, problem) = w
        .call(
            &w.search_lead,
            Method::POST,
            &reject,
            Some(json!({"comment": " "})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "comment");
    let (status, done) = w
        .call(
            &w.search_lead,
            Method::POST,
            &reject,
            Some(json!({"comment": "use the API gateway"})),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "rejected");
    let (status, problem) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &format!("/api/v1/connections/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(
        status, 409,
        "a rejected request cannot be approved: {problem}"
    );

    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    let cancel = format!("/api/v1/connections/{id}/cancel");
    let (status, _) = w.call(&w.payments_lead, Method::POST, &cancel, None).await;
    assert_eq!(status, 403, "only the requester cancels");
    let (status, done) = w.call(&w.requester, Method::POST, &cancel, None).await;
    assert_eq!(status, 200);
    assert_eq!(done["status"], "cancelled");
    let (status, _) = w.call(&w.requester, Method::POST, &cancel, None).await;
    assert_eq!(status, 409);
    assert_eq!(w.app.job_count("switchboard.provision").await, 0);
}

#[tokio::test]
async fn an_unrelated_team_can_neither_see_nor_act() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/v1/connections/{id}")),
        (Method::GET, format!("/api/v1/connections/{id}/plan")),
        (Method::GET, format!("/api/v1/connections/{id}/events")),
        (Method::POST, format!("/api/v1/connections/{id}/approve")),
        (Method::POST, format!("/api/v1/connections/{id}/cancel")),
    ] {
        let (status, _) = w.call(&w.outsider, method.clone(), &path, None).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (_, mine) = w
        .call(&w.outsider, Method::GET, "/api/v1/connections", None)
        .await;
    assert_eq!(mine, json!([]));
    let (_, theirs) = w
        .call(&w.search_lead, Method::GET, "/api/v1/connections", None)
        .await;
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    // Nor ask for a connection between two other teams' networks.
    let (status, _) = w
        .call(
            &w.outsider,
            Method::POST,
            "/api/v1/connections",
            Some(json!({"kind": "network-to-network", "reason": "curious",
                        "source_network_id": w.payments_net, "destination_network_id": w.search_net})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn bad_requests_name_the_field_and_change_nothing() {
    let w = world(spawn_app().await).await;
    let admin = w.app.token("root@example.test", true).await;
    let (_, accounts) = w
        .call(&admin, Method::GET, "/api/v1/provider-accounts", None)
        .await;
    // Another address space (a partner's routing domain) may reuse the same addresses.
    let (_, partners) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/pools",
            Some(json!({"name": "partners", "cidr": "10.0.0.0/8", "parent_id": null})),
        )
        .await;
    let (status, net) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/networks",
            Some(json!({"name": "billing-prod", "team": "billing", "provider_account_id": accounts[0]["id"],
                        "region": "local", "cidr": "10.1.128.0/20", "pool_id": partners["id"]})),
        )
        .await;
    assert_eq!(status, 201, "{net}");
    let overlapping = net["id"].as_str().unwrap().to_owned();
    let base = json!({"kind": "network-to-network", "reason": "r",
                      "source_network_id": w.payments_net, "destination_network_id": w.search_net});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (body, field, words) in [
        (with(json!({"kind": "tunnel"})), "kind", "must be one of"),
        (with(json!({"reason": ""})), "reason", "is required"),
        (with(json!({"ports": "443, http"})), "ports", "not a port"),
        (with(json!({"protocol": "sctp"})), "protocol", "not one of"),
        (
            with(json!({"destination_network_id": null})),
            "destination_network_id",
            "is required",
        ),
        (
            with(json!({"destination_network_id": "6f1c0a8e-0000-4000-8000-000000000000"})),
            "destination_network_id",
            "no network",
        ),
        (
            with(json!({"destination_network_id": overlapping})),
            "destination_network_id",
            "10.1.0.0/16 (payments-prod) overlaps 10.1.128.0/20 (billing-prod)",
        ),
        (
            with(json!({"expires_in_hours": 0})),
            "expires_in_hours",
            "from 1",
        ),
        (
            json!({"kind": "dns-record", "reason": "r", "team": "payments", "name": "db.corp.example", "record_type": "A", "value": "not-an-ip"}),
            "value",
            "IPv4",
        ),
        (
            json!({"kind": "service-exposure", "reason": "r", "destination_network_id": w.payments_net, "target_address": "10.1.2.3", "target_port": 8443, "hostname": "api.example.com"}),
            "destination_network_id",
            "no edge proxy",
        ),
    ] {
        let (status, problem) = w
            .call(
                &admin,
                Method::POST,
                "/api/v1/connections",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 422, "{body}: {problem}");
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["reason"].as_str().unwrap().contains(words)),
            "{body}: {problem}"
        );
    }
    let (status, _) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/connections",
            Some(json!({"kind": "network-to-network", "colour": "red"})),
        )
        .await;
    assert_eq!(status, 400, "an unknown field");
    assert_eq!(w.count("connections").await, 0);
    assert_eq!(w.count("connection_sides").await, 0);
}

#[tokio::test]
async fn a_changed_plan_goes_back_to_approval_with_the_difference() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    let approve = format!("/api/v1/connections/{id}/approve");
    let (status, _) = w.call(&w.payments_lead, Method::POST, &approve, None).await;
    assert_eq!(status, 200);
    // The search network's prefix changes before the second approval.
    sqlx::query("UPDATE allocations SET cidr = '10.3.0.0/16' WHERE network_id = $1")
        .bind(uuid::Uuid::parse_str(&w.search_net).unwrap())
        .execute(&w.app.pool)
        .await
        .unwrap();
    let (status, problem) = w.call(&w.search_lead, Method::POST, &approve, None).await;
    assert_eq!(status, 409);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("+ route 10.3.0.0/16"), "{detail}");
    assert!(detail.contains("- route 10.2.0.0/16"), "{detail}");
    let (_, now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(now["status"], "pending_approval");
    assert_ne!(now["plan_hash"], c["plan_hash"]);
    assert!(
        now["sides"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["decision"].is_null()),
        "earlier approvals lapse"
    );
    // An approval of the old plan is refused; of the new one, accepted.
    let (status, _) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &approve,
            Some(json!({"plan_hash": c["plan_hash"]})),
        )
        .await;
    assert_eq!(status, 409);
    for lead in [&w.payments_lead, &w.search_lead] {
        let (status, _) = w
            .call(
                lead,
                Method::POST,
                &approve,
                Some(json!({"plan_hash": now["plan_hash"]})),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(w.app.job_count("switchboard.provision").await, 1);
}

#[tokio::test]
async fn requests_expire_and_the_requester_is_reminded_first() {
    let w = world(spawn_app().await).await;
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(json!({"kind": "network-to-network", "reason": "for a day",
                        "source_network_id": w.payments_net, "destination_network_id": w.search_net,
                        "expires_in_hours": 2})),
        )
        .await;
    assert_eq!(status, 201);
    let id = uuid::Uuid::parse_str(c["id"].as_str().unwrap()).unwrap();
    let outbox = || async {
        sqlx::query_scalar::<_, String>("SELECT subject FROM outbox_emails WHERE to_address = 'rita@example.test' ORDER BY created_at")
            .fetch_all(&w.app.pool)
            .await
            .unwrap()
    };
    let reminded = switchboard::services::connections::remind_expiring(&w.app.ctx)
        .await
        .unwrap();
    assert_eq!(reminded, 1, "expires within the 24 h window");
    assert_eq!(
        switchboard::services::connections::remind_expiring(&w.app.ctx)
            .await
            .unwrap(),
        0,
        "once"
    );
    sqlx::query("UPDATE connections SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(
        switchboard::services::connections::expire_due(&w.app.ctx)
            .await
            .unwrap(),
        1
    );
    let (_, now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(now["status"], "expired");
    let subjects = eventually(
        Duration::from_secs(15),
        "both emails in the outbox",
        || async {
            let s = outbox().await;
            (s.len() == 2).then_some(s)
        },
    )
    .await;
    // Workers deliver in parallel, so the outbox order is not the sending order.
    assert!(
        subjects.iter().any(|s| s.starts_with("Expires soon")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.starts_with("Expired:")),
        "{subjects:?}"
    );
}

/// What is stored decodes into its types or fails loudly: the database refuses
/// a kind or status no release knows, and a plan that cannot be read is an
/// error with a request id, never a made-up mechanism.
#[tokio::test]
async fn stored_kinds_statuses_and_plans_never_fall_back_to_a_default() {
    let w = world(crate::helpers::spawn_app().await).await;
    let id = uuid::Uuid::parse_str(w.request().await["id"].as_str().unwrap()).unwrap();
    for statement in [
        "UPDATE connections SET status = 'bogus' WHERE id = $1",
        "UPDATE connections SET kind = 'teleport' WHERE id = $1",
    ] {
        let refused = sqlx::query(statement).bind(id).execute(&w.app.pool).await;
        assert!(refused.is_err(), "{statement} was accepted");
    }
    sqlx::query("UPDATE connections SET plan = '{\"kind\": \"network-to-network\"}' WHERE id = $1")
        .bind(id)
        .execute(&w.app.pool)
        .await
        .unwrap();
    let (status, body) = w
        .call(&w.requester, Method::GET, "/api/v1/connections", None)
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(!body.to_string().contains("vpc-peering"), "{body}");
}
