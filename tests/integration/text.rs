//! Text at the edge: NUL and other control characters are refused with a 422
//! naming the field wherever text arrives (JSON, forms, query, path), text
//! that is not UTF-8 is a 400, nothing is changed, and one client's bad value
//! never fails another client's request.

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::world;
use crate::helpers::{api_call, spawn_app};

async fn count(app: &crate::helpers::TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Tables whose rows the requests below would add or change.
const TABLES: &[&str] = &[
    "networks",
    "connections",
    "api_tokens",
    "pools",
    "allocations",
    "provider_accounts",
    "connection_sides",
    "audit_events",
];

async fn counts(app: &crate::helpers::TestApp) -> Vec<i64> {
    let mut all = Vec::new();
    for t in TABLES {
        all.push(count(app, t).await);
    }
    all
}

#[tokio::test]
async fn control_characters_are_refused_naming_the_field_and_change_nothing() {
    let w = world(spawn_app().await).await;
    let app = &w.app;
    let admin = app.token("text-admin@example.test", true).await;
    let (_, pools) = api_call(app, &admin, Method::GET, "/api/v1/pools", None).await;
    let corp = pools[0]["id"].as_str().unwrap().to_owned();
    let c = w.request().await;
    let connection = c["id"].as_str().unwrap().to_owned();
    let (_, accounts) = api_call(app, &admin, Method::GET, "/api/v1/provider-accounts", None).await;
    let account = accounts[0]["id"].as_str().unwrap().to_owned();

    // (method, path, body, the field the refusal names)
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/networks".into(),
            Some(
                json!({"name": "n\u{0}", "team": "payments", "provider_account_id": account, "region": "local", "cidr": "10.9.0.0/24"}),
            ),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/networks".into(),
            Some(
                json!({"name": "n", "team": "pay\u{0}ments", "provider_account_id": account, "region": "local", "cidr": "10.9.0.0/24"}),
            ),
            "team",
        ),
        (
            Method::POST,
            "/api/v1/networks".into(),
            Some(
                json!({"name": "n", "team": "payments", "provider_account_id": account, "region": "local", "cidr": "10.9.0.0/24", "tags": {"env": "p\u{0}"}}),
            ),
            "tags.env",
        ),
        (
            Method::POST,
            "/api/v1/connections".into(),
            Some(
                json!({"kind": "network-to-network", "reason": "why\u{0}", "source_network_id": w.payments_net, "destination_network_id": w.search_net}),
            ),
            "reason",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({"name": "ci\u{7}"})),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/pools".into(),
            Some(json!({"name": "p\u{0}", "cidr": "172.16.0.0/12"})),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/provider-accounts".into(),
            Some(json!({"kind": "sandbox", "name": "a\u{0}"})),
            "name",
        ),
        (
            Method::POST,
            format!("/api/v1/pools/{corp}/allocations"),
            Some(json!({"prefix_length": 28, "description": "d\u{0}"})),
            "description",
        ),
        (
            Method::POST,
            format!("/api/v1/connections/{connection}/approve"),
            Some(json!({"comment": "ok\u{0}"})),
            "comment",
        ),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({"name": "two\nlines"})),
            "name",
        ),
        (
            Method::GET,
            "/api/v1/networks?team=a%00b".into(),
            None,
            "team",
        ),
        (Method::GET, "/api/v1/teams/a%00b".into(), None, "path"),
    ];
    let before = counts(app).await;
    for (method, path, body, field) in cases {
        let (status, problem) = api_call(app, &admin, method.clone(), &path, body.clone()).await;
        assert_eq!(status, 422, "{method} {path} {body:?}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{method} {path}: {problem}"
        );
    }
    assert_eq!(counts(app).await, before, "nothing changed");

    // The same through the pages' forms, as a browser would send them.
    app.sign_in_dev("text-person@example.test", "payments", "lead", false)
        .await;
    let before = counts(app).await;
    for (path, fields, field) in [
        ("/me/tokens", vec![("name", "ci\u{0}")], "name"),
        (
            "/networks",
            vec![("name", "n\u{0}"), ("team", "payments")],
            "name",
        ),
    ] {
        let res = app.post_form(path, &fields).await;
        assert_eq!(res.status(), 422, "{path}");
        let page = res.text().await.unwrap();
        assert!(
            page.contains(field) && page.contains("NUL"),
            "{path}: {page}"
        );
    }
    // Text that is not UTF-8 is not turned into U+FFFD: it is refused.
    let csrf = app.csrf.lock().unwrap().clone();
    let res = app
        .client
        .post(app.url("/me/tokens"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name=%FF%FEci&csrf_token={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(counts(app).await, before, "nothing changed");

    // Several lines where a field holds several lines.
    let (status, body) = api_call(
        app,
        &w.requester,
        Method::POST,
        "/api/v1/connections",
        Some(
            json!({"kind": "network-to-network", "reason": "first line\nsecond line\twith a tab",
                    "source_network_id": w.payments_net, "destination_network_id": w.search_net}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// 24 allocations from one pool at once, plus one carrying a NUL from another
/// person: the 24 are made, the one is refused, alone.
#[tokio::test]
async fn one_bad_allocation_among_many_fails_alone() {
    let app = spawn_app().await;
    let admin = app.token("alloc-admin@example.test", true).await;
    let other = app.token("alloc-other@example.test", false).await;
    let (status, pool) = api_call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/pools",
        Some(json!({"name": "busy", "cidr": "10.50.0.0/16"})),
    )
    .await;
    assert_eq!(status, 201);
    let path = format!("/api/v1/pools/{}/allocations", pool["id"].as_str().unwrap());
    for round in 0..3 {
        let mut calls = Vec::new();
        for i in 0..25 {
            let (token, description) = if i == 12 {
                (&other, "bad\u{0}one".to_owned())
            } else {
                (&admin, format!("round {round} block {i}"))
            };
            calls.push(api_call(
                &app,
                token,
                Method::POST,
                &path,
                Some(json!({"prefix_length": 28, "description": description})),
            ));
        }
        let statuses: Vec<u16> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let mut expected = vec![201; 25];
        expected[12] = 422;
        assert_eq!(statuses, expected, "round {round}");
    }
}

/// What the database itself refuses in one request of a batch (a value that
/// never passed the edge, sent straight to the service) fails that request
/// only: the others of the batch are made.
#[tokio::test]
async fn a_request_the_database_refuses_does_not_fail_its_batch() {
    use switchboard::services::address_plan::{self, AllocationRequest};
    let app = spawn_app().await;
    let caller = app.admin_caller().await;
    let pool = address_plan::create_pool(
        &app.ctx,
        &caller,
        address_plan::PoolRequest {
            name: "batch".into(),
            cidr: "10.60.0.0/16".into(),
            parent_id: None,
            labels: json!({}),
            default_prefix_length: Some(28),
        },
        None,
    )
    .await
    .unwrap();
    let mut calls = Vec::new();
    for i in 0..40 {
        let (ctx, caller) = (app.ctx.clone(), caller.clone());
        calls.push(tokio::spawn(async move {
            let description = if i == 20 {
                "no\u{0}pe".to_owned()
            } else {
                format!("block {i}")
            };
            address_plan::allocate(
                &ctx,
                &caller,
                pool.id,
                AllocationRequest {
                    prefix_length: Some(28),
                    idempotency_key: None,
                    reservation_ttl: None,
                    description,
                },
            )
            .await
            .is_ok()
        }));
    }
    let made: Vec<bool> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut expected = vec![true; 40];
    expected[20] = false;
    assert_eq!(made, expected);
    assert_eq!(count(&app, "allocations").await, 39);
}
