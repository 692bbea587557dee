//! The directory through the API: teams and their members, users and their
//! sessions (admins), and the requests waiting for a lead.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard::domain::team::Role;

use crate::helpers::{TestApp, api_call, dev_sign_in, spawn_app};

/// The fields a 422 names, in order.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("a problem with field errors: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// A GET with a bearer token: the status, the `Next-Cursor` header and the body.
async fn get_page(app: &TestApp, token: &str, path: &str) -> (u16, Option<String>, Value) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let next = res
        .headers()
        .get("next-cursor")
        .map(|c| c.to_str().unwrap().to_owned());
    (status, next, res.json().await.unwrap_or(Value::Null))
}

/// Every item of a list, walked a page of `limit` at a time.
async fn all_pages(app: &TestApp, token: &str, path: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, next, page) = get_page(app, token, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        let page = page.as_array().unwrap().clone();
        assert!(page.len() <= limit as usize, "{url}: {} items", page.len());
        items.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return items,
        }
    }
    panic!("{path} never ended");
}

async fn user_id(app: &TestApp, email: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_creates_a_team_that_everyone_then_sees() {
    let app = spawn_app().await;
    let admin = app.token("root@example.test", true).await;
    let member = app.member_token("mo@example.test", "payments").await;

    let res = app
        .client
        .post(app.url("/api/v1/teams"))
        .bearer_auth(&admin)
        .json(&json!({"slug": "risk", "name": "  Risk & Fraud "}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["location"], "/api/v1/teams/risk");
    let team: Value = res.json().await.unwrap();
    assert_eq!(
        team,
        json!({"slug": "risk", "name": "Risk & Fraud", "members": []})
    );

    // In the directory, for a plain member too.
    let (status, teams) = api_call(&app, &member, Method::GET, "/api/v1/teams", None).await;
    assert_eq!(status, 200);
    let risk = teams
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "risk")
        .unwrap_or_else(|| panic!("risk is listed: {teams}"));
    assert_eq!(risk["name"], "Risk & Fraud");
    assert_eq!(risk["members"], 0);
    let (status, detail) = api_call(&app, &member, Method::GET, "/api/v1/teams/risk", None).await;
    assert_eq!((status, &detail), (200, &team));

    // Once only.
    let (status, problem) = api_call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/teams",
        Some(json!({"slug": "risk", "name": "Risk again"})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("risk"),
        "{problem}"
    );

    // Only admins create teams; a member is told so, and nothing is made.
    let (status, problem) = api_call(
        &app,
        &member,
        Method::POST,
        "/api/v1/teams",
        Some(json!({"slug": "shadow", "name": "Shadow"})),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    let (_, shadow) = api_call(&app, &admin, Method::GET, "/api/v1/teams/shadow", None).await;
    assert_eq!(shadow["status"], 404);

    // Audited, as a team.
    let (status, events) = api_call(
        &app,
        &admin,
        Method::GET,
        "/api/v1/audit?object_type=team&object_id=risk&action=team.created",
        None,
    )
    .await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["details"]["name"], "Risk & Fraud");
}

#[tokio::test]
async fn a_new_team_that_fails_its_checks_is_refused_naming_each_field() {
    let app = spawn_app().await;
    let admin = app.token("root@example.test", true).await;
    for (body, expected) in [
        (json!({"slug": "Risk Team", "name": "Risk"}), vec!["slug"]),
        (json!({"slug": "-risk", "name": "Risk"}), vec!["slug"]),
        (
            json!({"slug": "a".repeat(64), "name": "Risk"}),
            vec!["slug"],
        ),
        (json!({"slug": "risk", "name": "   "}), vec!["name"]),
        (
            json!({"slug": "risk", "name": "x".repeat(101)}),
            vec!["name"],
        ),
        (json!({"slug": "", "name": ""}), vec!["slug", "name"]),
        // Absent fields are empty ones.
        (json!({}), vec!["slug", "name"]),
    ] {
        let (status, problem) = api_call(
            &app,
            &admin,
            Method::POST,
            "/api/v1/teams",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(fields(&problem), expected, "{body}: {problem}");
    }
    // A field the API does not know is refused, not ignored.
    let (status, problem) = api_call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/teams",
        Some(json!({"slug": "risk", "name": "Risk", "owner": "ada"})),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("owner"),
        "{problem}"
    );
    let (_, teams) = api_call(&app, &admin, Method::GET, "/api/v1/teams", None).await;
    assert_eq!(teams, json!([]), "nothing was made");
}

#[tokio::test]
async fn a_lead_adds_a_member_and_sets_their_role_but_a_member_cannot() {
    let app = spawn_app().await;
    let lead = app
        .team_token("lena@example.test", "payments", Role::Lead, false)
        .await;
    let member = app.member_token("mo@example.test", "payments").await;
    let other_lead = app
        .team_token("otto@example.test", "ledger", Role::Lead, false)
        .await;
    let admin = app.token("root@example.test", true).await;
    // Nina has signed in once (here: through a token made for her).
    app.token("nina@example.test", false).await;
    let nina = user_id(&app, "nina@example.test").await;
    let path = "/api/v1/teams/payments/members";

    let (status, added) = api_call(
        &app,
        &lead,
        Method::POST,
        path,
        Some(json!({"email": "Nina@Example.test", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "added: {added}");
    assert_eq!(added["user_id"], nina.to_string());
    assert_eq!(added["email"], "nina@example.test");
    assert_eq!(added["role"], "member");
    assert_eq!(added["source"], "manual");

    let (status, changed) = api_call(
        &app,
        &lead,
        Method::POST,
        path,
        Some(json!({"email": "nina@example.test", "role": "lead"})),
    )
    .await;
    assert_eq!(status, 200, "changed: {changed}");
    assert_eq!(changed["role"], "lead");
    // The same again changes nothing.
    let (status, same) = api_call(
        &app,
        &lead,
        Method::POST,
        path,
        Some(json!({"email": "nina@example.test", "role": "lead"})),
    )
    .await;
    assert_eq!((status, &same), (200, &changed));

    let (_, team) = api_call(&app, &member, Method::GET, "/api/v1/teams/payments", None).await;
    let listed: Vec<(String, String)> = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        listed.contains(&("nina@example.test".into(), "lead".into())),
        "{team}"
    );

    // A plain member, and the lead of another team, may not; an admin may.
    for (who, token) in [("member", &member), ("ledger's lead", &other_lead)] {
        let (status, problem) = api_call(
            &app,
            token,
            Method::POST,
            path,
            Some(json!({"email": "nina@example.test", "role": "member"})),
        )
        .await;
        assert_eq!(status, 403, "{who}: {problem}");
    }
    let (status, _) = api_call(
        &app,
        &admin,
        Method::POST,
        path,
        Some(json!({"email": "mo@example.test", "role": "lead"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, team) = api_call(&app, &member, Method::GET, "/api/v1/teams/payments", None).await;
    let nina_now = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "nina@example.test")
        .unwrap();
    assert_eq!(
        nina_now["role"], "lead",
        "the refused calls changed nothing"
    );

    let (status, _) = api_call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/teams/nowhere/members",
        Some(json!({"email": "nina@example.test", "role": "member"})),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_member_that_fails_its_checks_is_refused_naming_each_field() {
    let app = spawn_app().await;
    let lead = app
        .team_token("lena@example.test", "payments", Role::Lead, false)
        .await;
    app.token("nina@example.test", false).await;
    for (body, expected) in [
        (
            json!({"email": "nina@example.test", "role": "owner"}),
            vec!["role"],
        ),
        (
            json!({"email": "nina@example.test", "role": "Lead"}),
            vec!["role"],
        ),
        (json!({"email": "nina", "role": "member"}), vec!["email"]),
        (json!({"email": "nina@", "role": "member"}), vec!["email"]),
        (
            json!({"email": "nina @example.test", "role": "member"}),
            vec!["email"],
        ),
        // A valid address nobody has signed in with.
        (
            json!({"email": "nobody@example.test", "role": "member"}),
            vec!["email"],
        ),
        (json!({"email": "", "role": ""}), vec!["email", "role"]),
        (json!({}), vec!["email", "role"]),
    ] {
        let (status, problem) = api_call(
            &app,
            &lead,
            Method::POST,
            "/api/v1/teams/payments/members",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(fields(&problem), expected, "{body}: {problem}");
    }
    let (status, _) = api_call(
        &app,
        &lead,
        Method::POST,
        "/api/v1/teams/payments/members",
        Some(json!({"email": "nina@example.test", "role": "member", "admin": true})),
    )
    .await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (_, team) = api_call(&app, &lead, Method::GET, "/api/v1/teams/payments", None).await;
    assert_eq!(team["members"].as_array().unwrap().len(), 1, "{team}");
}

#[tokio::test]
async fn a_lead_removes_a_member_and_it_is_audited() {
    let app = spawn_app().await;
    let lead = app
        .team_token("lena@example.test", "payments", Role::Lead, false)
        .await;
    let member = app.member_token("mo@example.test", "payments").await;
    app.member_token("nina@example.test", "payments").await;
    let admin = app.token("root@example.test", true).await;
    let nina = user_id(&app, "nina@example.test").await;
    let mo = user_id(&app, "mo@example.test").await;
    let path = format!("/api/v1/teams/payments/members/{nina}");

    // A plain member may not remove anyone, themselves included.
    for target in [nina, mo] {
        let (status, problem) = api_call(
            &app,
            &member,
            Method::DELETE,
            &format!("/api/v1/teams/payments/members/{target}"),
            None,
        )
        .await;
        assert_eq!(status, 403, "{problem}");
    }

    let (status, body) = api_call(&app, &lead, Method::DELETE, &path, None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (_, team) = api_call(&app, &lead, Method::GET, "/api/v1/teams/payments", None).await;
    assert!(
        !team["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["user_id"] == nina.to_string()),
        "{team}"
    );

    // Gone: again, an unknown id, something that is no id, another team.
    for gone in [
        path.clone(),
        format!("/api/v1/teams/payments/members/{}", uuid::Uuid::new_v4()),
        "/api/v1/teams/payments/members/not-an-id".to_owned(),
        format!("/api/v1/teams/nowhere/members/{mo}"),
    ] {
        let (status, problem) = api_call(&app, &lead, Method::DELETE, &gone, None).await;
        assert_eq!(status, 404, "{gone}: {problem}");
    }

    // The audit log says who removed whom, from which team (admins only).
    let query = "/api/v1/audit?object_type=team&object_id=payments&action=membership.removed";
    let (status, events) = api_call(&app, &admin, Method::GET, query, None).await;
    assert_eq!(status, 200, "{events}");
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"]["user_id"], nina.to_string());
    assert_eq!(
        events[0]["actor_id"],
        user_id(&app, "lena@example.test").await.to_string()
    );
    let (status, _) = api_call(&app, &member, Method::GET, query, None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn only_admins_list_the_users_with_their_sessions() {
    let app = spawn_app().await;
    let admin = app.token("root@example.test", true).await;
    let member = app.member_token("mo@example.test", "payments").await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    dev_sign_in(
        &browser,
        &app.address,
        &[
            ("email", "sam@example.test"),
            ("name", "Sam"),
            ("team", "payments"),
            ("role", "member"),
        ],
    )
    .await;

    let (status, problem) = api_call(&app, &member, Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, 403, "{problem}");

    let (status, users) = api_call(&app, &admin, Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, 200, "{users}");
    let by_email = |email: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap_or_else(|| panic!("{email} is listed: {users}"))
            .clone()
    };
    let (root, mo, sam) = (
        by_email("root@example.test"),
        by_email("mo@example.test"),
        by_email("sam@example.test"),
    );
    assert_eq!(root["is_admin"], true);
    assert_eq!(mo["is_admin"], false);
    assert_eq!(sam["is_admin"], false);
    assert_eq!(sam["name"], "Sam");
    assert_eq!(sam["issuer"], "dev");
    assert_eq!(sam["live_sessions"], 1, "{sam}");
    assert!(sam["last_sign_in_at"].is_string(), "{sam}");
    assert_eq!(mo["live_sessions"], 0, "tokens are not sessions");
    assert_eq!(
        sam["id"],
        user_id(&app, "sam@example.test").await.to_string()
    );

    // Paged like the other lists: a page at a time, each user once.
    let walked = all_pages(&app, &admin, "/api/v1/users", 1).await;
    assert_eq!(&Value::Array(walked), &users);
    let (status, problem) =
        api_call(&app, &admin, Method::GET, "/api/v1/users?limit=0", None).await;
    assert_eq!(status, 422);
    assert_eq!(fields(&problem), ["limit"]);
}

#[tokio::test]
async fn ending_a_persons_sessions_sends_them_to_sign_in_again() {
    let app = spawn_app().await;
    let admin = app.token("root@example.test", true).await;
    let member = app.member_token("mo@example.test", "payments").await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    dev_sign_in(
        &browser,
        &app.address,
        &[
            ("email", "sam@example.test"),
            ("name", "Sam"),
            ("team", "payments"),
            ("role", "member"),
        ],
    )
    .await;
    let me = browser.get(app.url("/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "signed in");
    let sam = user_id(&app, "sam@example.test").await;
    let path = format!("/api/v1/users/{sam}/sessions");

    // Not someone else's sessions, unless an admin.
    let (status, problem) = api_call(&app, &member, Method::DELETE, &path, None).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(
        browser.get(app.url("/me")).send().await.unwrap().status(),
        200
    );

    let (status, ended) = api_call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!((status, ended), (200, json!({"ended": 1})));
    let page = browser.get(app.url("/me")).send().await.unwrap();
    assert_eq!(page.status(), 303, "the page sends Sam to sign in again");
    let to = page.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/auth/login"), "{to}");

    let (_, users) = api_call(&app, &admin, Method::GET, "/api/v1/users", None).await;
    let listed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == sam.to_string())
        .unwrap()
        .clone();
    assert_eq!(listed["live_sessions"], 0);

    // Nothing left to end is no error; nobody with that id is a 404.
    let (status, ended) = api_call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!((status, ended), (200, json!({"ended": 0})));
    for nobody in [
        format!("/api/v1/users/{}/sessions", uuid::Uuid::new_v4()),
        "/api/v1/users/sam/sessions".to_owned(),
    ] {
        let (status, _) = api_call(&app, &admin, Method::DELETE, &nobody, None).await;
        assert_eq!(status, 404, "{nobody}");
    }

    // A person may end their own sessions.
    let mo = user_id(&app, "mo@example.test").await;
    let (status, _) = api_call(
        &app,
        &member,
        Method::DELETE,
        &format!("/api/v1/users/{mo}/sessions"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    let (_, events) = api_call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/audit?object_type=user&object_id={sam}&action=sessions.revoked"),
        None,
    )
    .await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["details"]["sessions"], 1, "{events:?}");
}

#[tokio::test]
async fn a_lead_sees_the_requests_waiting_for_them_and_others_do_not() {
    let w = crate::connections::world(spawn_app().await).await;
    let first = w.request().await;
    let second = w.request().await;
    let id = |c: &Value| c["id"].as_str().unwrap().to_owned();
    let queue = |token: &str| {
        let token = token.to_owned();
        let app = &w.app;
        async move {
            let (status, items) =
                api_call(app, &token, Method::GET, "/api/v1/approvals", None).await;
            assert_eq!(status, 200, "{items}");
            items
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };

    // Rita of payments asked: search's lead decides, oldest first.
    assert_eq!(queue(&w.search_lead).await, [id(&first), id(&second)]);
    assert_eq!(queue(&w.payments_lead).await, [id(&first), id(&second)]);
    // Not the requester, nor someone of a team with no say.
    assert!(queue(&w.requester).await.is_empty());
    assert!(queue(&w.outsider).await.is_empty());

    // The same summaries as the list of connections.
    let (_, waiting) = api_call(
        &w.app,
        &w.search_lead,
        Method::GET,
        "/api/v1/approvals",
        None,
    )
    .await;
    let (_, listed) = api_call(
        &w.app,
        &w.search_lead,
        Method::GET,
        &format!("/api/v1/connections/{}", id(&first)),
        None,
    )
    .await;
    assert_eq!(waiting[0]["status"], "pending_approval");
    assert_eq!(waiting[0]["kind"], "network-to-network");
    assert_eq!(waiting[0]["summary"], listed["summary"]);
    assert_eq!(waiting[0]["plan_hash"], listed["plan_hash"]);
    assert!(
        waiting[0].get("sides").is_none(),
        "a summary: {}",
        waiting[0]
    );

    // Paged.
    let walked = all_pages(&w.app, &w.search_lead, "/api/v1/approvals", 1).await;
    let walked: Vec<String> = walked.iter().map(id).collect();
    assert_eq!(walked, [id(&first), id(&second)]);

    // Once search's lead has decided, it waits for payments' lead only.
    let (status, _) = w
        .call(
            &w.search_lead,
            Method::POST,
            &format!("/api/v1/connections/{}/approve", id(&first)),
            Some(json!({"plan_hash": first["plan_hash"]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(queue(&w.search_lead).await, [id(&second)]);
    assert_eq!(queue(&w.payments_lead).await, [id(&first), id(&second)]);
}
