//! The address plan through the HTTP API: pools, race-safe allocation.

use std::collections::HashSet;

use ipnet::IpNet;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, api_call, spawn_app, spawn_app_with};

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    api_call(app, token, reqwest::Method::POST, path, Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    api_call(app, token, reqwest::Method::GET, path, None).await
}

/// An address space with one pool in it; returns the pool's id.
async fn pool(app: &TestApp, admin: &str, space: &str, cidr: &str, default_len: i64) -> String {
    let (status, top) = post(
        app,
        admin,
        "/api/v1/pools",
        json!({"name": space, "cidr": "10.0.0.0/8", "parent_id": null}),
    )
    .await;
    assert_eq!(status, 201, "{top}");
    let (status, pool) = post(
        app,
        admin,
        "/api/v1/pools",
        json!({"name": "eu-west", "cidr": cidr, "parent_id": top["id"], "labels": {"region": "eu-west"}, "default_prefix_length": default_len}),
    )
    .await;
    assert_eq!(status, 201, "{pool}");
    assert_eq!(pool["parent_id"], top["id"]);
    assert_eq!(pool["labels"]["region"], "eu-west");
    pool["id"].as_str().unwrap().to_owned()
}

async fn allocation_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM allocations")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn assert_disjoint(cidrs: &[IpNet]) {
    let unique: HashSet<_> = cidrs.iter().collect();
    assert_eq!(unique.len(), cidrs.len(), "every allocation is distinct");
    for (i, a) in cidrs.iter().enumerate() {
        for b in &cidrs[i + 1..] {
            assert!(
                !(a.contains(&b.network()) || b.contains(&a.network())),
                "{a} overlaps {b}"
            );
        }
    }
}

#[tokio::test]
async fn pools_form_a_tree_that_never_overlaps() {
    let app = spawn_app().await;
    let admin = app.token("plan@example.test", true).await;
    let member = app.token("someone@example.test", false).await;
    let pool_id = pool(&app, &admin, "corp", "10.16.0.0/12", 24).await;
    let (_, pools) = get(&app, &admin, "/api/v1/pools").await;
    let space = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["parent_id"].is_null())
        .unwrap()
        .clone();

    for (body, field, reason) in [
        (
            json!({"name": "x", "cidr": "10.1.2.3/16", "parent_id": space["id"]}),
            "cidr",
            "has host bits set; did you mean 10.1.0.0/16?",
        ),
        (
            json!({"name": "x", "cidr": "11.0.0.0/16", "parent_id": space["id"]}),
            "cidr",
            "must lie inside the parent pool 10.0.0.0/8",
        ),
        (
            json!({"name": "x", "cidr": "nonsense", "parent_id": space["id"]}),
            "cidr",
            "is not a CIDR block",
        ),
        (
            json!({"name": "", "cidr": "10.1.0.0/16", "parent_id": space["id"]}),
            "name",
            "must be 1 to 100 characters",
        ),
        (
            json!({"name": "x", "cidr": "10.1.0.0/16", "parent_id": uuid::Uuid::new_v4()}),
            "parent_id",
            "no pool has this id",
        ),
        (
            json!({"name": "x", "cidr": "10.1.0.0/16", "parent_id": space["id"], "default_prefix_length": 8}),
            "default_prefix_length",
            "larger than the pool",
        ),
        (
            json!({"name": "x", "cidr": "10.1.0.0/16", "parent_id": space["id"], "labels": {"a": 1}}),
            "labels",
            "must be an object of text values",
        ),
    ] {
        let (status, problem) = post(&app, &admin, "/api/v1/pools", body.clone()).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(
            problem["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{problem}"
        );
    }
    // Overlapping a sibling is a conflict that names the sibling.
    let (status, problem) = post(
        &app,
        &admin,
        "/api/v1/pools",
        json!({"name": "clash", "cidr": "10.20.0.0/16", "parent_id": space["id"]}),
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("overlaps the pool eu-west (10.16.0.0/12)"),
        "{problem}"
    );
    // Unknown fields are refused rather than ignored.
    let (status, _) = post(
        &app,
        &admin,
        "/api/v1/pools",
        json!({"name": "y", "cidr": "10.1.0.0/16", "parent": space["id"]}),
    )
    .await;
    assert_eq!(status, 400);
    // Only admins shape the plan; everyone signed in may read it.
    let (status, _) = post(
        &app,
        &member,
        "/api/v1/pools",
        json!({"name": "mine", "cidr": "10.2.0.0/16", "parent_id": space["id"]}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, detail) = get(&app, &member, &format!("/api/v1/pools/{pool_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["free"], json!(["10.16.0.0/12"]));
    let pools: i64 = sqlx::query_scalar("SELECT count(*) FROM pools")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pools, 2, "refused requests changed nothing");
}

#[tokio::test]
async fn sixty_four_concurrent_allocations_get_distinct_prefixes() {
    let app = spawn_app().await;
    let admin = app.token("plan@example.test", true).await;
    let member = app.token("alloc@example.test", false).await;
    let pool_id = pool(&app, &admin, "corp", "10.16.0.0/16", 24).await;
    let path = format!("/api/v1/pools/{pool_id}/allocations");
    let requests = (0..64).map(|_| post(&app, &member, &path, json!({"prefix_length": 24})));
    let results = futures::future::join_all(requests).await;
    let mut cidrs = Vec::new();
    for (status, body) in results {
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["pool_id"], pool_id.as_str());
        cidrs.push(body["cidr"].as_str().unwrap().parse::<IpNet>().unwrap());
    }
    assert_disjoint(&cidrs);
    // Lowest first: exactly 10.16.0.0/24 … 10.16.63.0/24.
    let expected: HashSet<IpNet> = (0..64)
        .map(|i| format!("10.16.{i}.0/24").parse().unwrap())
        .collect();
    assert_eq!(cidrs.into_iter().collect::<HashSet<_>>(), expected);
    let (_, available) = get(
        &app,
        &member,
        &format!("/api/v1/pools/{pool_id}/available?prefix_length=24"),
    )
    .await;
    assert_eq!(available["count"], "192");
    assert_eq!(available["next"], "10.16.64.0/24");
}

#[tokio::test]
async fn two_processes_allocating_at_once_never_overlap() {
    let app = spawn_app().await;
    let other = spawn_app_with(Options {
        share_database_of: Some((app.db.name.clone(), app.db.url.clone())),
        ..Options::default()
    })
    .await;
    let admin = app.token("plan@example.test", true).await;
    let pool_id = pool(&app, &admin, "corp", "10.16.0.0/16", 26).await;
    // Requests of mixed sizes, half through each process.
    let path = format!("/api/v1/pools/{pool_id}/allocations");
    let mut requests = Vec::new();
    for i in 0..64 {
        let target = if i % 2 == 0 { &app } else { &other };
        requests.push(post(
            target,
            &admin,
            &path,
            json!({"prefix_length": 26 + (i % 3)}),
        ));
    }
    let mut cidrs = Vec::new();
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, 201, "{body}");
        cidrs.push(body["cidr"].as_str().unwrap().parse::<IpNet>().unwrap());
    }
    assert_disjoint(&cidrs);
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM allocations a JOIN allocations b ON a.id < b.id AND a.cidr && b.cidr",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(overlapping, 0);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_allocation() {
    let app = spawn_app().await;
    let admin = app.token("plan@example.test", true).await;
    let pool_id = pool(&app, &admin, "corp", "10.16.0.0/16", 24).await;
    let path = format!("/api/v1/pools/{pool_id}/allocations");
    let body = json!({"prefix_length": 24, "idempotency_key": "deploy-42"});
    let (first, a) = post(&app, &admin, &path, body.clone()).await;
    let replays =
        futures::future::join_all((0..8).map(|_| post(&app, &admin, &path, body.clone()))).await;
    assert_eq!(first, 201);
    for (status, b) in replays {
        assert_eq!(status, 200);
        assert_eq!(b["id"], a["id"]);
        assert_eq!(b["cidr"], a["cidr"]);
    }
    assert_eq!(allocation_count(&app).await, 1);
}

#[tokio::test]
async fn a_full_pool_says_what_is_left_and_bad_requests_change_nothing() {
    let app = spawn_app().await;
    let admin = app.token("plan@example.test", true).await;
    let pool_id = pool(&app, &admin, "corp", "10.16.0.0/30", 32).await;
    let path = format!("/api/v1/pools/{pool_id}/allocations");
    for _ in 0..4 {
        assert_eq!(post(&app, &admin, &path, json!({})).await.0, 201);
    }
    let (status, problem) = post(&app, &admin, &path, json!({"prefix_length": 32})).await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("has no free /32 left"),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("eu-west (10.16.0.0/30)"),
        "{problem}"
    );

    for (body, field) in [
        (json!({"prefix_length": 8}), "prefix_length"),
        (json!({"prefix_length": 33}), "prefix_length"),
        (json!({"reservation_ttl": 0}), "reservation_ttl"),
        (
            json!({"idempotency_key": "k".repeat(300)}),
            "idempotency_key",
        ),
    ] {
        let (status, problem) = post(&app, &admin, &path, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let (status, _) = post(
        &app,
        &admin,
        "/api/v1/pools/6f1c0a8e-0000-4000-8000-000000000000/allocations",
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        &app,
        &admin,
        "/api/v1/pools/not-a-uuid/allocations",
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(&app, &admin, &path, json!({"prefix_length": "24"})).await;
    assert_eq!(status, 400, "a string where a number belongs");
    assert_eq!(allocation_count(&app).await, 4);
}

#[tokio::test]
async fn reservations_lapse_and_released_prefixes_are_handed_out_again() {
    let app = spawn_app().await;
    let admin = app.token("plan@example.test", true).await;
    let member = app.token("m@example.test", false).await;
    let pool_id = pool(&app, &admin, "corp", "10.16.0.0/16", 24).await;
    let path = format!("/api/v1/pools/{pool_id}/allocations");
    let (status, held) = post(&app, &member, &path, json!({"reservation_ttl": 60})).await;
    assert_eq!(status, 201);
    assert!(held["reserved_until"].is_string());
    assert_eq!(held["cidr"], "10.16.0.0/24");
    let (_, next) = post(&app, &member, &path, json!({})).await;
    assert_eq!(
        next["cidr"], "10.16.1.0/24",
        "a live reservation holds its block"
    );

    sqlx::query("UPDATE allocations SET reserved_until = now() - interval '1 second' WHERE reserved_until IS NOT NULL")
        .execute(&app.pool).await.unwrap();
    let (_, again) = post(&app, &member, &path, json!({})).await;
    assert_eq!(
        again["cidr"], "10.16.0.0/24",
        "a lapsed reservation is free again"
    );

    // Only whoever allocated (or an admin) may release.
    let someone_else = app.token("x@example.test", false).await;
    let id = next["id"].as_str().unwrap();
    let (status, _) = api_call(
        &app,
        &someone_else,
        reqwest::Method::DELETE,
        &format!("/api/v1/allocations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api_call(
        &app,
        &member,
        reqwest::Method::DELETE,
        &format!("/api/v1/allocations/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, reused) = post(&app, &member, &path, json!({})).await;
    assert_eq!(reused["cidr"], "10.16.1.0/24");
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE object_type = 'allocation' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            "allocation.reserved",
            "allocation.created",
            "allocation.created",
            "allocation.released",
            "allocation.created"
        ]
    );
}

#[tokio::test]
async fn ipv6_pools_allocate_release_and_refuse_bad_input() {
    let app = spawn_app().await;
    let admin = app.token("plan6@example.test", true).await;
    let (status, space) = post(
        &app,
        &admin,
        "/api/v1/pools",
        json!({"name": "corp6", "cidr": "fd12:3456:789a::/48", "parent_id": null}),
    )
    .await;
    assert_eq!(status, 201, "{space}");
    let (status, problem) = post(
        &app,
        &admin,
        "/api/v1/pools",
        json!({"name": "bad", "cidr": "fd12:3456:789a:100::1/56", "parent_id": space["id"]}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "cidr");
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("did you mean fd12:3456:789a:100::/56"),
        "{problem}"
    );
    let (status, pool) = post(
        &app,
        &admin,
        "/api/v1/pools",
        json!({"name": "eu-west", "cidr": "fd12:3456:789a:100::/56", "parent_id": space["id"],
               "labels": {"region": "eu-west"}, "default_prefix_length": 64}),
    )
    .await;
    assert_eq!(status, 201, "{pool}");
    let path = format!("/api/v1/pools/{}/allocations", pool["id"].as_str().unwrap());

    let mut got = Vec::new();
    for _ in 0..3 {
        let (status, a) = post(&app, &admin, &path, json!({})).await;
        assert_eq!(status, 201, "{a}");
        got.push(a);
    }
    let cidrs: Vec<&str> = got.iter().map(|a| a["cidr"].as_str().unwrap()).collect();
    assert_eq!(
        cidrs,
        [
            "fd12:3456:789a:100::/64",
            "fd12:3456:789a:101::/64",
            "fd12:3456:789a:102::/64"
        ]
    );
    let (_, wide) = post(&app, &admin, &path, json!({"prefix_length": 60})).await;
    assert_eq!(
        wide["cidr"], "fd12:3456:789a:110::/60",
        "the lowest aligned /60 after the /64s"
    );

    let (status, _) = api_call(
        &app,
        &admin,
        reqwest::Method::DELETE,
        &format!("/api/v1/allocations/{}", got[1]["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, reused) = post(&app, &admin, &path, json!({})).await;
    assert_eq!(
        reused["cidr"], "fd12:3456:789a:101::/64",
        "a released block is the lowest free again"
    );

    let (status, available) = get(
        &app,
        &admin,
        &format!(
            "/api/v1/pools/{}/available?prefix_length=64",
            pool["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 200, "{available}");
    assert_eq!(available["count"], (256 - 3 - 16).to_string());
    assert_eq!(available["next"], "fd12:3456:789a:103::/64");
    let (status, problem) = post(&app, &admin, &path, json!({"prefix_length": 129})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "prefix_length");
    assert_eq!(allocation_count(&app).await, 4);
}

/// A space split into pools is not full: the plan counts what is allocated
/// (a /26 deep in a /8 still shows), and names each pool's labels.
#[tokio::test]
async fn the_plan_counts_allocations_not_child_pools() {
    let app = spawn_app().await;
    let admin = app.token("plan-admin@example.test", true).await;
    let (status, space) = post(
        &app,
        &admin,
        "/api/v1/pools",
        json!({"name": "corp", "cidr": "10.0.0.0/8"}),
    )
    .await;
    assert_eq!(status, 201, "{space}");
    let (status, child) = post(
        &app,
        &admin,
        "/api/v1/pools",
        json!({"name": "eu", "cidr": "10.16.0.0/12",
        "parent_id": space["id"], "labels": {"region": "eu-west-1"}, "default_prefix_length": 26}),
    )
    .await;
    assert_eq!(status, 201, "{child}");
    let space_path = format!("/api/v1/pools/{}", space["id"].as_str().unwrap());

    let (_, detail) = get(&app, &admin, &space_path).await;
    assert_eq!(detail["allocated"], "0", "{detail}");
    assert_eq!(
        detail["used"],
        (1u64 << 20).to_string(),
        "the child pool is still not free to allocate from the space: {detail}"
    );

    let (status, a) = post(
        &app,
        &admin,
        &format!(
            "/api/v1/pools/{}/allocations",
            child["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    let (_, detail) = get(&app, &admin, &space_path).await;
    assert_eq!(detail["allocated"], "64", "{detail}");

    app.sign_in_admin().await;
    let page = app.get("/address-plan").await.text().await.unwrap();
    assert!(
        page.contains("64 of 16777216"),
        "the space counts the /26: {page}"
    );
    assert!(
        page.contains("64 of 1048576"),
        "the pool counts the /26: {page}"
    );
    assert!(
        page.contains("region=eu-west-1"),
        "labels are shown: {page}"
    );
    assert!(
        page.contains("width=\"1\""),
        "a sliver of a bar, not nothing: {page}"
    );
}
