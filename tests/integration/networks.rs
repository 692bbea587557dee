//! Provider accounts and networks through the API.

use serde_json::{Value, json};
use switchboard::domain::team::{Role, TeamSlug};

use crate::helpers::{TestApp, api_call, spawn_app};

/// A token for a new member of `team`.
async fn member_of(app: &TestApp, email: &str, team: &str) -> String {
    let token = app.token(email, false).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let team = switchboard::store::teams::ensure(&mut conn, &TeamSlug::parse(team).unwrap(), team)
        .await
        .unwrap();
    let user = switchboard::store::users::find_by_email(&mut *conn, email)
        .await
        .unwrap()
        .unwrap();
    switchboard::store::teams::set_membership(&mut *conn, user.id, team.id, Role::Member, "manual")
        .await
        .unwrap();
    token
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn teams_get_networks_with_prefixes_from_the_plan() {
    let app = spawn_app().await;
    let admin = app.token("net-admin@example.test", true).await;
    let payments = member_of(&app, "pay@example.test", "payments").await;
    let ledger = member_of(&app, "led@example.test", "ledger").await;
    use reqwest::Method as M;

    // Provider accounts: credentials by reference only.
    for (body, field) in [
        (json!({"kind": "azure-ish", "name": "x"}), "kind"),
        (
            json!({"kind": "aws", "name": "x", "settings": {"secret_access_key": "abc"}}),
            "settings",
        ),
        (
            json!({"kind": "aws", "name": "x", "credentials_ref": "plain-secret"}),
            "credentials_ref",
        ),
    ] {
        let (status, problem) = api_call(
            &app,
            &admin,
            M::POST,
            "/api/v1/provider-accounts",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, account) = api_call(&app, &admin, M::POST, "/api/v1/provider-accounts",
        Some(json!({"kind": "aws", "name": "aws-prod", "regions": ["eu-west-1"], "settings": {"account": "123456789012"}, "credentials_ref": "env:AWS_PROD"}))).await;
    assert_eq!(status, 201, "{account}");
    assert_eq!(
        api_call(
            &app,
            &payments,
            M::POST,
            "/api/v1/provider-accounts",
            Some(json!({"kind": "aws", "name": "mine"}))
        )
        .await
        .0,
        403
    );

    // The plan: a space and a pool labelled for eu-west-1 / prod.
    let (_, space) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(json!({"name": "corp", "cidr": "10.0.0.0/8"})),
    )
    .await;
    let (status, _) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(
            json!({"name": "eu-prod", "cidr": "10.16.0.0/12", "parent_id": space["id"],
        "labels": {"region": "eu-west-1", "environment": "prod"}, "default_prefix_length": 24}),
        ),
    )
    .await;
    assert_eq!(status, 201);

    // A member creates a network: the prefix comes from the matching pool in one step.
    let (status, api) = api_call(&app, &payments, M::POST, "/api/v1/networks", Some(json!({"name": "api", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1", "environment": "prod", "tags": {"owner": "pay"}}))).await;
    assert_eq!(status, 201, "{api}");
    assert_eq!(api["team"], "payments");
    assert_eq!(api["prefixes"][0]["cidr"], "10.16.0.0/24");

    // Others cannot create networks for a team they are not in.
    let before = count(&app, "networks").await;
    let (status, _) = api_call(
        &app,
        &ledger,
        M::POST,
        "/api/v1/networks",
        Some(json!({"name": "sneaky", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(count(&app, "networks").await, before);

    // Registering an existing prefix checks for overlaps and names them.
    let (status, problem) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(json!({"name": "old-vpc", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1", "cidr": "10.16.0.0/16"})),
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("overlaps 10.16.0.0/24 (network api)"),
        "{problem}"
    );
    let (status, vpc) = api_call(&app, &payments, M::POST, "/api/v1/networks", Some(json!({"name": "old-vpc", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1", "cidr": "10.20.0.0/16", "external_id": "vpc-0abc"}))).await;
    assert_eq!(status, 201, "{vpc}");
    assert_eq!(vpc["prefixes"][0]["cidr"], "10.20.0.0/16");
    assert_eq!(vpc["external_id"], "vpc-0abc");

    // Bad input names the field and changes nothing.
    let before = count(&app, "networks").await;
    for (body, field) in [
        (
            json!({"name": "x", "team": "nope", "provider_account_id": account["id"], "region": "eu-west-1"}),
            "team",
        ),
        (
            json!({"name": "x", "team": "payments", "provider_account_id": account["id"], "region": "mars-1"}),
            "region",
        ),
        (
            json!({"name": "x", "team": "payments", "provider_account_id": account["id"], "region": "eu-west-1", "environment": "dev"}),
            "region",
        ),
        (
            json!({"name": "x", "team": "payments", "provider_account_id": account["id"], "region": "eu-west-1", "cidr": "10.0.0.1/8"}),
            "cidr",
        ),
        (
            json!({"name": "", "team": "payments", "provider_account_id": account["id"], "region": "eu-west-1"}),
            "name",
        ),
    ] {
        let (status, problem) = api_call(
            &app,
            &payments,
            M::POST,
            "/api/v1/networks",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    assert_eq!(count(&app, "networks").await, before);

    // Everyone may look; filters narrow it down.
    let (_, all) = api_call(
        &app,
        &ledger,
        M::GET,
        "/api/v1/networks?team=payments",
        None,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, none) = api_call(
        &app,
        &ledger,
        M::GET,
        "/api/v1/networks?region=us-east-1",
        None,
    )
    .await;
    assert_eq!(none, json!([]));

    // Members edit; the audit log keeps before and after.
    let id = api["id"].as_str().unwrap();
    let (status, _) = api_call(
        &app,
        &ledger,
        M::PATCH,
        &format!("/api/v1/networks/{id}"),
        Some(json!({"external_id": "vpc-evil"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, changed) = api_call(
        &app,
        &payments,
        M::PATCH,
        &format!("/api/v1/networks/{id}"),
        Some(json!({"external_id": "vpc-123", "tags": {"tier": "1"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(changed["external_id"], "vpc-123");
    assert_eq!(changed["name"], "api");
    let details: Value =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'network.changed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(details["before"]["external_id"], Value::Null);
    assert_eq!(details["after"]["external_id"], "vpc-123");

    // Quotas: a team may hold only so many addresses in a pool.
    let pool_id = api["prefixes"][0]["pool_id"].as_str().unwrap().to_owned();
    let quota_path = format!("/api/v1/pools/{pool_id}/quotas/payments");
    assert_eq!(
        api_call(
            &app,
            &payments,
            M::PUT,
            &quota_path,
            Some(json!({"max_addresses": 512}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        api_call(
            &app,
            &admin,
            M::PUT,
            &quota_path,
            Some(json!({"max_addresses": "nope"}))
        )
        .await
        .0,
        422
    );
    assert_eq!(
        api_call(
            &app,
            &admin,
            M::PUT,
            &quota_path,
            Some(json!({"max_addresses": 66100}))
        )
        .await
        .0,
        204
    );
    let (status, problem) = api_call(&app, &payments, M::POST, "/api/v1/networks", Some(json!({"name": "big", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1", "environment": "prod", "prefix_length": 23}))).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "prefix_length");
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("may hold 66100 addresses in the pool eu-prod and holds 65792"),
        "{problem}"
    );
    let (status, small) = api_call(&app, &payments, M::POST, "/api/v1/networks", Some(json!({"name": "small", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1", "environment": "prod", "prefix_length": 24}))).await;
    assert_eq!(status, 201, "within the quota");
    let small_id = small["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api_call(
            &app,
            &payments,
            M::DELETE,
            &format!("/api/v1/networks/{small_id}"),
            None
        )
        .await
        .0,
        204
    );

    // Deleting gives the prefix back.
    let allocations = count(&app, "allocations").await;
    assert_eq!(
        api_call(
            &app,
            &payments,
            M::DELETE,
            &format!("/api/v1/networks/{id}"),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(count(&app, "allocations").await, allocations - 1);
    let (status, again) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(json!({"name": "api2", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1", "environment": "prod"})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        again["prefixes"][0]["cidr"], "10.16.0.0/24",
        "the freed block is handed out again"
    );
}

#[tokio::test]
async fn admins_add_provider_accounts_from_the_page_without_secrets() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    let page = app.get("/admin/provider-accounts").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("No provider account yet")
    );

    let refused = app
        .post_form(
            "/admin/provider-accounts",
            &[
                ("kind", "aws"),
                ("name", "aws-prod"),
                ("regions", "eu-west-1"),
                (
                    "settings",
                    "endpoint=http://127.0.0.1:5000\nsecret_key=abc123",
                ),
            ],
        )
        .await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("settings: &#34;secret_key&#34; looks like a credential"),
        "{html}"
    );
    assert!(html.contains("aws-prod"), "the form keeps what was typed");
    assert_eq!(count(&app, "provider_accounts").await, 0);

    let added = app
        .post_form(
            "/admin/provider-accounts",
            &[
                ("kind", "aws"),
                ("name", "aws-prod"),
                ("regions", "eu-west-1, us-east-1"),
                ("settings", "endpoint=http://127.0.0.1:5000"),
                ("credentials_ref", "env:AWS_PROD_KEYS"),
            ],
        )
        .await;
    assert_eq!(added.status(), 303);
    let html = app
        .get("/admin/provider-accounts")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Provider account aws-prod (aws) added."),
        "{html}"
    );
    assert!(html.contains("eu-west-1, us-east-1"));
    assert!(html.contains("endpoint=http://127.0.0.1:5000"));
    assert!(html.contains("env:AWS_PROD_KEYS"));
    let stored: Value = sqlx::query_scalar("SELECT settings FROM provider_accounts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, json!({"endpoint": "http://127.0.0.1:5000"}));
}
