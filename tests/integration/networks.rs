//! Provider accounts and networks through the API.

use serde_json::{Value, json};
use switchboard::domain::team::{Role, TeamSlug};

use crate::helpers::{TestApp, api_call, eventually, spawn_app};

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
    let (status, account) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "sandbox", "name": "cloud", "regions": ["eu-west-1"]})),
    )
    .await;
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

    // Members edit; the audit log keeps before and after. (A network
    // Switchboard built stands for what it built: its resource cannot change.)
    let built = api["id"].as_str().unwrap();
    let (status, problem) = api_call(
        &app,
        &payments,
        M::PATCH,
        &format!("/api/v1/networks/{built}"),
        Some(json!({"external_id": "vpc-123"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "external_id");
    let id = vpc["id"].as_str().unwrap();
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
    assert_eq!(changed["name"], "old-vpc");
    let details: Value =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'network.changed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(details["before"]["external_id"], "vpc-0abc");
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
    removed(&app, &payments, &small_id).await;

    // Deleting gives the prefix back.
    let allocations = count(&app, "allocations").await;
    removed(&app, &payments, built).await;
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
        html.contains(
            "<a href=\"#pa-settings\">Settings</a>: &#34;secret_key&#34; looks like a credential"
        ),
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

/// Tags a VPC in moto with the team that owns it.
async fn tag_team(ec2: &aws_sdk_ec2::Client, vpc: &str, team: &str) {
    ec2.create_tags()
        .resources(vpc)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("switchboard:team")
                .value(team)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The alias attack: a member of payments registers ledger's VPC as a network
/// of payments, then asks for a firewall opening into it, which only payments'
/// own lead would approve. Ownership is proved through the provider (moto) or
/// confirmed by an admin, and one VPC is one network.
#[tokio::test]
async fn a_vpc_is_registered_only_by_the_team_that_owns_it() {
    use reqwest::Method as M;
    let app = spawn_app().await;
    let admin = app.token("own-admin@example.test", true).await;
    let payments = member_of(&app, "own-pay@example.test", "payments").await;
    let ledger = member_of(&app, "own-led@example.test", "ledger").await;
    let ec2 = crate::moto::ec2("us-east-1");
    let ledger_vpc = crate::moto::vpc(&ec2, "10.70.0.0/16").await;
    let payments_vpc = crate::moto::vpc(&ec2, "10.71.0.0/16").await;
    let untagged_vpc = crate::moto::vpc(&ec2, "10.72.0.0/16").await;
    tag_team(&ec2, &ledger_vpc, "ledger").await;
    tag_team(&ec2, &payments_vpc, "payments").await;

    let (status, space) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(json!({"name": "corp", "cidr": "10.0.0.0/8"})),
    )
    .await;
    assert_eq!(status, 201, "{space}");
    let (status, account) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/provider-accounts",
        Some(crate::moto::account("cloud", json!({}))),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let network = |team: &str, name: &str, cidr: &str, vpc: &str| {
        json!({"name": name, "team": team, "provider_account_id": account["id"],
               "region": "us-east-1", "cidr": cidr, "external_id": vpc})
    };

    // Ledger registers its own VPC: its tag proves it.
    let (status, ledger_net) = api_call(
        &app,
        &ledger,
        M::POST,
        "/api/v1/networks",
        Some(network("ledger", "books", "10.70.0.0/16", &ledger_vpc)),
    )
    .await;
    assert_eq!(status, 201, "{ledger_net}");
    assert_eq!(ledger_net["ownership"]["state"], "proved", "{ledger_net}");
    assert!(
        ledger_net["ownership"]["evidence"]
            .as_str()
            .unwrap()
            .contains("switchboard:team=ledger")
    );

    // Payments cannot claim it: not as a second network (one VPC, one network),
    // and not by pointing one of its networks at it.
    let before = count(&app, "networks").await;
    let (status, problem) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(network(
            "payments",
            "alias",
            "10.70.0.0/16",
            &ledger_vpc.to_uppercase(),
        )),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("already registered as the network books of ledger"),
        "{problem}"
    );
    assert_eq!(count(&app, "networks").await, before, "nothing saved");
    let (status, own) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(network("payments", "api", "10.71.0.0/16", &payments_vpc)),
    )
    .await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["ownership"]["state"], "proved");
    let own_id = own["id"].as_str().unwrap();

    // A VPC whose tag names another team is refused outright, nothing saved.
    let third = crate::moto::vpc(&ec2, "10.73.0.0/16").await;
    tag_team(&ec2, &third, "ledger").await;
    let before = count(&app, "networks").await;
    let (status, problem) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(network("payments", "stolen", "10.73.0.0/16", &third)),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "external_id");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("names the team ledger, not payments"),
        "{problem}"
    );
    assert_eq!(count(&app, "networks").await, before);
    let (status, problem) = api_call(
        &app,
        &payments,
        M::PATCH,
        &format!("/api/v1/networks/{own_id}"),
        Some(json!({"external_id": third})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (_, unchanged) = api_call(
        &app,
        &payments,
        M::GET,
        &format!("/api/v1/networks/{own_id}"),
        None,
    )
    .await;
    assert_eq!(unchanged["external_id"], payments_vpc.as_str());
    assert_eq!(unchanged["ownership"]["state"], "proved");

    // An untagged VPC waits for an admin, and meanwhile is no end of anything.
    let (status, waiting) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(network("payments", "legacy", "10.72.0.0/16", &untagged_vpc)),
    )
    .await;
    assert_eq!(status, 201, "{waiting}");
    assert_eq!(waiting["ownership"]["state"], "pending", "{waiting}");
    let waiting_id = waiting["id"].as_str().unwrap();
    let opening = json!({"kind": "firewall-opening", "reason": "reach it", "source_cidr": "192.0.2.0/24",
                         "destination_network_id": waiting_id, "protocol": "tcp", "ports": "22"});
    let before = count(&app, "connections").await;
    let (status, problem) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/connections",
        Some(opening.clone()),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "destination_network_id");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not yet known to own"),
        "{problem}"
    );
    assert_eq!(count(&app, "connections").await, before);
    // Only admins decide; they see it in the queue.
    let (status, _) = api_call(
        &app,
        &payments,
        M::POST,
        &format!("/api/v1/networks/{waiting_id}/ownership/confirm"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, queue) = api_call(&app, &admin, M::GET, "/api/v1/registrations", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        queue
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["legacy"]
    );
    // Tagging it and checking again proves it without an admin.
    tag_team(&ec2, &untagged_vpc, "payments").await;
    let (status, checked) = api_call(
        &app,
        &payments,
        M::POST,
        &format!("/api/v1/networks/{waiting_id}/ownership/check"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["ownership"]["state"], "proved", "{checked}");
    let (status, c) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/connections",
        Some(opening),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let sides: Vec<&str> = c["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["team"].as_str().unwrap())
        .collect();
    assert_eq!(sides, ["payments"]);

    // A firewall opening into ledger's real VPC needs ledger's lead.
    let (status, c) = api_call(&app, &payments, M::POST, "/api/v1/connections",
        Some(json!({"kind": "firewall-opening", "reason": "read the books", "source_network_id": own_id,
                    "destination_network_id": ledger_net["id"], "protocol": "tcp", "ports": "5432"}))).await;
    assert_eq!(status, 201, "{c}");
    let mut sides: Vec<&str> = c["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["team"].as_str().unwrap())
        .collect();
    sides.sort();
    assert_eq!(sides, ["ledger", "payments"]);

    // An admin's refusal takes the resource off the network, with the reason.
    let vpc4 = crate::moto::vpc(&ec2, "10.74.0.0/16").await;
    let (_, fourth) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(network("payments", "maybe", "10.74.0.0/16", &vpc4)),
    )
    .await;
    let fourth_id = fourth["id"].as_str().unwrap();
    let (status, problem) = api_call(
        &app,
        &admin,
        M::POST,
        &format!("/api/v1/networks/{fourth_id}/ownership/refuse"),
        Some(json!({"reason": ""})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (status, refused) = api_call(
        &app,
        &admin,
        M::POST,
        &format!("/api/v1/networks/{fourth_id}/ownership/refuse"),
        Some(json!({"reason": "that VPC is search's"})),
    )
    .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["external_id"], serde_json::Value::Null);
    assert_eq!(refused["ownership"]["state"], "none");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE object_id = $1 ORDER BY id")
            .bind(fourth_id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["network.created", "network.ownership_refused"]);
}

/// On-prem places (and the sandbox) prove ownership through the account's
/// `owner.<resource>` setting, written one way whatever the spelling.
#[tokio::test]
async fn an_accounts_owner_setting_proves_who_owns_a_place() {
    use reqwest::Method as M;
    let app = spawn_app().await;
    let admin = app.token("place-admin@example.test", true).await;
    let payments = member_of(&app, "place-pay@example.test", "payments").await;
    api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(json!({"name": "corp", "cidr": "10.0.0.0/8"})),
    )
    .await;
    let (status, account) = api_call(&app, &admin, M::POST, "/api/v1/provider-accounts",
        Some(json!({"kind": "linux", "name": "dc", "regions": ["dc1"],
                    "settings": {"owner.gw1.example.net/pay": "payments", "owner.gw1.example.net/books": "ledger"}}))).await;
    assert_eq!(status, 201, "{account}");
    let net = |name: &str, cidr: &str, place: &str| {
        json!({"name": name, "team": "payments", "provider_account_id": account["id"],
               "region": "dc1", "cidr": cidr, "external_id": place})
    };
    let (status, proved) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(net(
            "pay",
            "10.80.0.0/24",
            "ssh://root@GW1.example.net:22/pay",
        )),
    )
    .await;
    assert_eq!(status, 201, "{proved}");
    assert_eq!(proved["ownership"]["state"], "proved", "{proved}");
    let (status, problem) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(net(
            "books",
            "10.81.0.0/24",
            "ssh://admin@gw1.example.net/books",
        )),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("owner.gw1.example.net/books names the team ledger"),
        "{problem}"
    );
    let (status, problem) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(net(
            "again",
            "10.82.0.0/24",
            "ssh://ops@gw1.example.net/pay",
        )),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (status, problem) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(net("bad", "10.83.0.0/24", "a; rm -rf /")),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "external_id");
    let (status, waiting) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(net("other", "10.84.0.0/24", "dc9")),
    )
    .await;
    assert_eq!(status, 201, "{waiting}");
    assert_eq!(waiting["ownership"]["state"], "pending");
    assert!(
        waiting["ownership"]["evidence"]
            .as_str()
            .unwrap()
            .contains("no owner.dc9 setting"),
        "{waiting}"
    );
}

/// Provider modules (their HTTP clients, the proxy's route writer) are built once
/// per process and built again only when the accounts change.
#[tokio::test]
async fn provider_modules_are_built_once_and_again_when_accounts_change() {
    use reqwest::Method as M;
    let app = spawn_app().await;
    let admin = app.token("modules@example.test", true).await;
    let (first, _) = app.ctx.providers().await.unwrap();
    let (again, _) = app.ctx.providers().await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "the same modules serve every job"
    );
    let (status, _) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "sandbox", "name": "another", "regions": ["local"]})),
    )
    .await;
    assert_eq!(status, 201);
    let (after, accounts) = app.ctx.providers().await.unwrap();
    assert!(
        !std::sync::Arc::ptr_eq(&first, &after),
        "a new account builds them again"
    );
    assert!(accounts.iter().any(|a| a.name == "another"));
    assert!(after.get("another").is_ok());
}

/// A network's prefix goes back to the plan with the network: releasing it
/// alone is refused, naming the network, and changes nothing; an admin may
/// release it anyway on purpose, and the audit says so.
#[tokio::test]
async fn a_prefix_a_network_uses_is_released_only_with_it_or_by_an_admin_on_purpose() {
    use reqwest::Method as M;
    let app = spawn_app().await;
    let admin = app.token("rel-admin@example.test", true).await;
    let payments = member_of(&app, "rel-pay@example.test", "payments").await;
    let (_, account) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "sandbox", "name": "cloud-rel", "regions": ["eu-west-1"]})),
    )
    .await;
    let (status, _) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(json!({"name": "corp", "cidr": "10.16.0.0/12", "default_prefix_length": 24, "labels": {"region": "eu-west-1"}})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, net) = api_call(
        &app,
        &payments,
        M::POST,
        "/api/v1/networks",
        Some(json!({"name": "payments-prod", "team": "payments",
        "provider_account_id": account["id"], "region": "eu-west-1"})),
    )
    .await;
    assert_eq!(status, 201, "{net}");
    let prefix = net["prefixes"][0]["id"].as_str().unwrap().to_owned();
    let cidr = net["prefixes"][0]["cidr"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/allocations/{prefix}");

    // Neither its team nor an admin releases it by accident.
    for token in [&payments, &admin] {
        let (status, problem) = api_call(&app, token, M::DELETE, &path, None).await;
        assert_eq!(status, 409, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("{cidr} is a prefix of the network payments-prod")),
            "{problem}"
        );
    }
    // A member cannot force it.
    let (status, _) = api_call(
        &app,
        &payments,
        M::DELETE,
        &format!("{path}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (_, still) = api_call(
        &app,
        &payments,
        M::GET,
        &format!("/api/v1/networks/{}", net["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(still["prefixes"][0]["cidr"], cidr.as_str(), "{still}");

    // An admin's override releases it and is audited as one.
    let (status, _) = api_call(&app, &admin, M::DELETE, &format!("{path}?force=true"), None).await;
    assert_eq!(status, 204);
    let (_, after) = api_call(
        &app,
        &payments,
        M::GET,
        &format!("/api/v1/networks/{}", net["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(after["prefixes"], json!([]), "{after}");
    let (_, audit) = api_call(
        &app,
        &admin,
        M::GET,
        &format!(
            "/api/v1/audit?object_type=allocation&object_id={prefix}&action=allocation.released"
        ),
        None,
    )
    .await;
    let entry: &Value = &audit[0];
    assert_eq!(entry["action"], "allocation.released", "{audit}");
    assert_eq!(entry["details"]["forced"], true, "{audit}");
    assert_eq!(
        entry["details"]["before"]["network"], "payments-prod",
        "{audit}"
    );
}

/// Deletes a network the sandbox built: 202 while the workers remove what was
/// built, then it is gone.
async fn removed(app: &TestApp, token: &str, id: &str) {
    use reqwest::Method as M;
    let path = format!("/api/v1/networks/{id}");
    let (status, body) = api_call(app, token, M::DELETE, &path, None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "removing");
    eventually(
        std::time::Duration::from_secs(30),
        "the network gone",
        || async { (api_call(app, token, M::GET, &path, None).await.0 == 404).then_some(()) },
    )
    .await;
}
