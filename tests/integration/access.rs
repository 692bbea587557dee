//! Who may do what: every route for every role, CSRF, sessions, API tokens,
//! rate limits, and the operator's bootstrap token.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, csrf_in, dev_sign_in, spawn_app};

/// A browser of its own (cookie jar), signed in through the development sign-in.
struct Person {
    client: reqwest::Client,
    csrf: String,
}

impl Person {
    fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap()
    }

    async fn anonymous(app: &TestApp) -> Self {
        let client = Self::browser();
        // Visiting a form gives even an anonymous visitor a session and a CSRF token.
        let page = client
            .get(app.url("/auth/dev"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_in(&page).unwrap();
        Self { client, csrf }
    }

    async fn signed_in(app: &TestApp, email: &str, team: &str, role: &str, admin: bool) -> Self {
        let client = Self::browser();
        let name = email.split('@').next().unwrap();
        let mut form = vec![
            ("email", email),
            ("name", name),
            ("team", team),
            ("role", role),
        ];
        if admin {
            form.push(("admin", "on"));
        }
        let csrf = dev_sign_in(&client, &app.address, &form).await;
        Self { client, csrf }
    }

    async fn send(
        &self,
        app: &TestApp,
        method: &Method,
        path: &str,
        body: &Body,
    ) -> reqwest::Response {
        let req = self
            .client
            .request(method.clone(), app.url(path))
            .header("x-csrf-token", &self.csrf);
        match body {
            Body::None => req,
            Body::Form(fields) => req.form(fields),
            Body::Json(value) => req.json(value),
        }
        .send()
        .await
        .unwrap()
    }
}

#[derive(Clone)]
enum Body {
    None,
    Form(Vec<(&'static str, String)>),
    Json(serde_json::Value),
}

/// Allowed = the request got past authorization (whatever it then said);
/// denied = 401, 403, or a page sending the person to sign in.
fn allowed(res: &reqwest::Response) -> bool {
    let status = res.status().as_u16();
    let to_sign_in = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.starts_with("/auth/login"));
    !(status == 401 || status == 403 || to_sign_in)
}

#[tokio::test]
async fn every_route_for_every_role() {
    let app = spawn_app().await;
    let anonymous = Person::anonymous(&app).await;
    let member = Person::signed_in(&app, "member@example.test", "payments", "member", false).await;
    let lead = Person::signed_in(&app, "lead@example.test", "payments", "lead", false).await;
    let other_lead = Person::signed_in(&app, "other@example.test", "ledger", "lead", false).await;
    let admin = Person::signed_in(&app, "root@example.test", "", "member", true).await;
    let _victim = Person::signed_in(&app, "victim@example.test", "payments", "member", false).await;
    let victim: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'victim@example.test'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let nobody = uuid::Uuid::new_v4();
    let form = |fields: &[(&'static str, &str)]| {
        Body::Form(fields.iter().map(|(k, v)| (*k, v.to_string())).collect())
    };

    // (method, route pattern, concrete path, body, [anonymous, member, lead, other team's lead, admin])
    let public = [true; 5];
    let signed_in = [false, true, true, true, true];
    let payments_leads = [false, false, true, false, true];
    let admins = [false, false, false, false, true];
    let payments_members = [false, true, true, false, true];
    let table: Vec<(&str, &str, String, Body, [bool; 5])> = vec![
        ("get", "/", "/".into(), Body::None, public),
        ("get", "/healthz", "/healthz".into(), Body::None, public),
        ("get", "/readyz", "/readyz".into(), Body::None, public),
        ("get", "/metrics", "/metrics".into(), Body::None, public),
        (
            "get",
            "/static/{name}",
            "/static/app.css".into(),
            Body::None,
            public,
        ),
        (
            "get",
            "/auth/login",
            "/auth/login".into(),
            Body::None,
            public,
        ),
        (
            "get",
            "/auth/callback",
            "/auth/callback".into(),
            Body::None,
            public,
        ),
        ("get", "/auth/dev", "/auth/dev".into(), Body::None, public),
        (
            "post",
            "/auth/dev",
            "/auth/dev".into(),
            form(&[("email", "")]),
            public,
        ),
        ("get", "/me", "/me".into(), Body::None, signed_in),
        (
            "post",
            "/me/tokens",
            "/me/tokens".into(),
            form(&[("name", "t")]),
            signed_in,
        ),
        (
            "post",
            "/me/tokens/{id}/revoke",
            format!("/me/tokens/{nobody}/revoke"),
            Body::None,
            signed_in,
        ),
        ("get", "/teams", "/teams".into(), Body::None, signed_in),
        (
            "post",
            "/teams",
            "/teams".into(),
            form(&[("slug", "new-team"), ("name", "New")]),
            admins,
        ),
        (
            "get",
            "/teams/{slug}",
            "/teams/payments".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/teams/{slug}/members",
            "/teams/payments/members".into(),
            form(&[("email", "victim@example.test"), ("role", "member")]),
            payments_leads,
        ),
        (
            "post",
            "/teams/{slug}/members/{user_id}/remove",
            format!("/teams/payments/members/{nobody}/remove"),
            Body::None,
            payments_leads,
        ),
        (
            "get",
            "/admin/users",
            "/admin/users".into(),
            Body::None,
            admins,
        ),
        (
            "get",
            "/admin/provider-accounts",
            "/admin/provider-accounts".into(),
            Body::None,
            admins,
        ),
        (
            "post",
            "/admin/provider-accounts",
            "/admin/provider-accounts".into(),
            form(&[("kind", "sandbox"), ("name", "access-sandbox")]),
            admins,
        ),
        (
            "get",
            "/admin/sandbox",
            "/admin/sandbox".into(),
            Body::None,
            admins,
        ),
        (
            "post",
            "/admin/sandbox/{id}/change",
            "/admin/sandbox/sbx-nothing/change".into(),
            form(&[("detail", "changed")]),
            admins,
        ),
        (
            "post",
            "/admin/sandbox/{id}/delete",
            "/admin/sandbox/sbx-nothing/delete".into(),
            Body::None,
            admins,
        ),
        (
            "post",
            "/admin/users/{id}/revoke-sessions",
            format!("/admin/users/{victim}/revoke-sessions"),
            Body::None,
            admins,
        ),
        (
            "get",
            "/admin/audit",
            "/admin/audit".into(),
            Body::None,
            admins,
        ),
        (
            "put",
            "/api/v1/pools/{id}/quotas/{team}",
            format!("/api/v1/pools/{nobody}/quotas/payments"),
            Body::Json(json!({"max_addresses": 256})),
            admins,
        ),
        (
            "get",
            "/networks",
            "/networks".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/networks",
            "/networks".into(),
            form(&[("name", "")]),
            signed_in,
        ),
        (
            "get",
            "/networks/{id}",
            format!("/networks/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/networks/{id}/delete",
            format!("/networks/{nobody}/delete"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/connections",
            "/connections?status=pending_approval".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/connections",
            "/connections".into(),
            form(&[("kind", "")]),
            signed_in,
        ),
        (
            "get",
            "/connections/new",
            "/connections/new".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/connections/plan-preview",
            "/connections/plan-preview?kind=network-to-network".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/connections/{id}",
            format!("/connections/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/connections/{id}/approve",
            format!("/connections/{nobody}/approve"),
            form(&[("comment", "fine")]),
            signed_in,
        ),
        (
            "post",
            "/connections/{id}/reject",
            format!("/connections/{nobody}/reject"),
            form(&[("comment", "no")]),
            signed_in,
        ),
        (
            "post",
            "/connections/{id}/cancel",
            format!("/connections/{nobody}/cancel"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/approvals",
            "/approvals".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/address-plan",
            "/address-plan".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/address-plan/pools",
            "/address-plan/pools".into(),
            form(&[("name", ""), ("cidr", "")]),
            admins,
        ),
        (
            "get",
            "/address-plan/check-cidr",
            "/address-plan/check-cidr?cidr=10.0.0.0/8".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/address-plan/pools/{id}",
            format!("/address-plan/pools/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/address-plan/pools/{id}/allocations",
            format!("/address-plan/pools/{nobody}/allocations"),
            form(&[("prefix_length", "24")]),
            signed_in,
        ),
        (
            "post",
            "/address-plan/allocations/{id}/release",
            format!("/address-plan/allocations/{nobody}/release"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/dev/outbox",
            "/dev/outbox".into(),
            Body::None,
            admins,
        ),
        (
            "get",
            "/dev/outbox/{id}/html",
            format!("/dev/outbox/{nobody}/html"),
            Body::None,
            admins,
        ),
        (
            "post",
            "/dev/outbox/test-email",
            "/dev/outbox/test-email".into(),
            form(&[("to", "x@example.test")]),
            admins,
        ),
        (
            "get",
            "/api/v1/openapi.json",
            "/api/v1/openapi.json".into(),
            Body::None,
            public,
        ),
        (
            "get",
            "/api/v1/me",
            "/api/v1/me".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/teams",
            "/api/v1/teams".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/teams/{slug}",
            "/api/v1/teams/payments".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Body::Json(json!({"name": "t"})),
            signed_in,
        ),
        (
            "delete",
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/pools",
            "/api/v1/pools".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/pools",
            "/api/v1/pools".into(),
            Body::Json(json!({"name": "", "cidr": ""})),
            admins,
        ),
        (
            "get",
            "/api/v1/pools/{id}",
            format!("/api/v1/pools/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/pools/{id}/available",
            format!("/api/v1/pools/{nobody}/available?prefix_length=24"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/pools/{id}/allocations",
            format!("/api/v1/pools/{nobody}/allocations"),
            Body::Json(json!({})),
            signed_in,
        ),
        (
            "delete",
            "/api/v1/allocations/{id}",
            format!("/api/v1/allocations/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/sandbox/resources",
            "/api/v1/sandbox/resources".into(),
            Body::None,
            admins,
        ),
        (
            "patch",
            "/api/v1/sandbox/resources/{id}",
            "/api/v1/sandbox/resources/sbx-nothing".into(),
            Body::Json(json!({"detail": "changed"})),
            admins,
        ),
        (
            "delete",
            "/api/v1/sandbox/resources/{id}",
            "/api/v1/sandbox/resources/sbx-nothing".into(),
            Body::None,
            admins,
        ),
        (
            "get",
            "/api/v1/provider-accounts",
            "/api/v1/provider-accounts".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/provider-accounts",
            "/api/v1/provider-accounts".into(),
            Body::Json(json!({"kind": "", "name": ""})),
            admins,
        ),
        (
            "get",
            "/api/v1/networks",
            "/api/v1/networks".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/networks",
            "/api/v1/networks".into(),
            Body::Json(json!({"name": "", "team": "payments", "region": ""})),
            signed_in,
        ),
        (
            "get",
            "/api/v1/networks/{id}",
            format!("/api/v1/networks/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "patch",
            "/api/v1/networks/{id}",
            format!("/api/v1/networks/{nobody}"),
            Body::Json(json!({})),
            signed_in,
        ),
        (
            "delete",
            "/api/v1/networks/{id}",
            format!("/api/v1/networks/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/connections",
            "/api/v1/connections".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/connections",
            "/api/v1/connections".into(),
            Body::Json(json!({})),
            signed_in,
        ),
        (
            "post",
            "/api/v1/connections/plan",
            "/api/v1/connections/plan".into(),
            Body::Json(json!({})),
            signed_in,
        ),
        (
            "get",
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/connections/{id}/plan",
            format!("/api/v1/connections/{nobody}/plan"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/api/v1/connections/{id}/events",
            format!("/api/v1/connections/{nobody}/events"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/connections/{id}/approve",
            format!("/api/v1/connections/{nobody}/approve"),
            Body::Json(json!({})),
            signed_in,
        ),
        (
            "post",
            "/api/v1/connections/{id}/reject",
            format!("/api/v1/connections/{nobody}/reject"),
            Body::Json(json!({"comment": "no"})),
            signed_in,
        ),
        (
            "delete",
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{nobody}"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/connections/{id}/retry",
            format!("/api/v1/connections/{nobody}/retry"),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/connections/{id}/progress",
            format!("/connections/{nobody}/progress"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/connections/{id}/remove",
            format!("/connections/{nobody}/remove"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/connections/{id}/retry",
            format!("/connections/{nobody}/retry"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/me/notifications",
            "/me/notifications".into(),
            form(&[("drift", "on")]),
            signed_in,
        ),
        (
            "post",
            "/teams/{slug}/webhook",
            "/teams/payments/webhook".into(),
            form(&[("url", "nonsense")]),
            payments_leads,
        ),
        (
            "post",
            "/teams/{slug}/webhook/delete",
            "/teams/payments/webhook/delete".into(),
            Body::None,
            payments_leads,
        ),
        (
            "get",
            "/api/v1/me/notifications",
            "/api/v1/me/notifications".into(),
            Body::None,
            signed_in,
        ),
        (
            "put",
            "/api/v1/me/notifications",
            "/api/v1/me/notifications".into(),
            Body::Json(json!({"drift": true})),
            signed_in,
        ),
        (
            "get",
            "/api/v1/teams/{slug}/webhook",
            "/api/v1/teams/payments/webhook".into(),
            Body::None,
            payments_members,
        ),
        (
            "put",
            "/api/v1/teams/{slug}/webhook",
            "/api/v1/teams/payments/webhook".into(),
            Body::Json(json!({"url": "", "secret_ref": ""})),
            payments_leads,
        ),
        (
            "delete",
            "/api/v1/teams/{slug}/webhook",
            "/api/v1/teams/payments/webhook".into(),
            Body::None,
            payments_leads,
        ),
        ("get", "/status", "/status".into(), Body::None, signed_in),
        (
            "get",
            "/status/board",
            "/status/board".into(),
            Body::None,
            signed_in,
        ),
        (
            "get",
            "/connections/{id}/monitoring",
            format!("/connections/{nobody}/monitoring"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/connections/{id}/repair",
            format!("/connections/{nobody}/repair"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/connections/{id}/repair-mode",
            format!("/connections/{nobody}/repair-mode"),
            form(&[("repair", "auto")]),
            signed_in,
        ),
        (
            "get",
            "/api/v1/connections/{id}/drift",
            format!("/api/v1/connections/{nobody}/drift"),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/connections/{id}/repair",
            format!("/api/v1/connections/{nobody}/repair"),
            Body::None,
            signed_in,
        ),
        (
            "put",
            "/api/v1/connections/{id}/repair-mode",
            format!("/api/v1/connections/{nobody}/repair-mode"),
            Body::Json(json!({"repair": "auto"})),
            signed_in,
        ),
        (
            "get",
            "/api/v1/status",
            "/api/v1/status".into(),
            Body::None,
            signed_in,
        ),
        (
            "post",
            "/api/v1/connections/{id}/cancel",
            format!("/api/v1/connections/{nobody}/cancel"),
            Body::None,
            signed_in,
        ),
        // Last: it ends the sessions it is run with.
        (
            "post",
            "/auth/logout",
            "/auth/logout".into(),
            Body::None,
            signed_in,
        ),
    ];

    // A route added later without a row here fails this test.
    let all_routes: Vec<(&str, &str)> = switchboard::web::ROUTES
        .iter()
        .chain(switchboard::api::v1::ROUTES)
        .copied()
        .collect();
    for (method, pattern) in &all_routes {
        assert!(
            table.iter().any(|(m, p, ..)| m == method && p == pattern),
            "route {method} {pattern} has no row in the authorization table"
        );
    }
    assert_eq!(
        table.len(),
        all_routes.len(),
        "every row names a real route"
    );

    let people = [&anonymous, &member, &lead, &other_lead, &admin];
    let names = ["anonymous", "member", "lead", "other team's lead", "admin"];
    for (method, _, path, body, expected) in &table {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        for ((person, name), expect) in people.iter().zip(names).zip(expected) {
            let res = person.send(&app, &method, path, body).await;
            let status = res.status();
            assert_eq!(
                allowed(&res),
                *expect,
                "{name} {method} {path} → {status}: {:?}",
                res.text().await
            );
            assert!(
                !status.is_server_error(),
                "{name} {method} {path} → {status}"
            );
        }
    }
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let person = Person::signed_in(&app, "pat@example.test", "", "member", false).await;
    for token in [None, Some("wrong")] {
        let mut req = person.client.post(app.url("/me/tokens"));
        if let Some(token) = token {
            req = req.header("x-csrf-token", token);
        }
        let res = req.form(&[("name", "sneaky")]).send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("stale or did not come from this site")
        );
    }
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
    // The real token in the form field works.
    let res = person
        .client
        .post(app.url("/me/tokens"))
        .form(&[("name", "fine"), ("csrf_token", &person.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn idle_expired_and_revoked_sessions_end() {
    let app = spawn_app().await;
    let idle = Person::signed_in(&app, "idle@example.test", "", "member", false).await;
    let old = Person::signed_in(&app, "old@example.test", "", "member", false).await;
    let revoked = Person::signed_in(&app, "gone@example.test", "", "member", false).await;
    let admin = Person::signed_in(&app, "boss@example.test", "", "member", true).await;
    for p in [&idle, &old, &revoked] {
        assert_eq!(
            p.send(&app, &Method::GET, "/api/v1/me", &Body::None)
                .await
                .status(),
            200
        );
    }
    sqlx::query("UPDATE sessions s SET last_seen_at = now() - interval '9 hours' FROM users u WHERE u.id = s.user_id AND u.email = 'idle@example.test'")
        .execute(&app.pool).await.unwrap();
    sqlx::query("UPDATE sessions s SET expires_at = now() - interval '1 second' FROM users u WHERE u.id = s.user_id AND u.email = 'old@example.test'")
        .execute(&app.pool).await.unwrap();
    let gone: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'gone@example.test'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let res = admin
        .send(
            &app,
            &Method::POST,
            &format!("/admin/users/{gone}/revoke-sessions"),
            &Body::None,
        )
        .await;
    assert_eq!(res.status(), 303);

    for p in [&idle, &old, &revoked] {
        assert_eq!(
            p.send(&app, &Method::GET, "/api/v1/me", &Body::None)
                .await
                .status(),
            401
        );
        let page = p.send(&app, &Method::GET, "/me", &Body::None).await;
        assert_eq!(page.status(), 303, "pages send them to sign in again");
    }
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'sessions.revoked' AND object_id = $1",
    )
    .bind(gone.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audit, 1);

    // Housekeeping deletes the dead sessions and keeps the live one.
    let sessions_of = |email: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1",
        )
        .bind(email)
        .fetch_one(&app.pool)
    };
    assert_eq!(sessions_of("idle@example.test").await.unwrap(), 1);
    switchboard::services::housekeeping::sweep(&app.ctx)
        .await
        .unwrap();
    for email in ["idle@example.test", "old@example.test", "gone@example.test"] {
        assert_eq!(sessions_of(email).await.unwrap(), 0, "{email}");
    }
    assert_eq!(sessions_of("boss@example.test").await.unwrap(), 1);
    assert_eq!(
        admin
            .send(&app, &Method::GET, "/api/v1/me", &Body::None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn api_tokens_act_as_their_user_until_revoked_or_expired() {
    let app = spawn_app().await;
    let person = Person::signed_in(&app, "tess@example.test", "payments", "lead", false).await;
    let res = person
        .send(
            &app,
            &Method::POST,
            "/api/v1/tokens",
            &Body::Json(json!({"name": "ci", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sbp_") && secret.starts_with(created["prefix"].as_str().unwrap()));

    let api = reqwest::Client::new();
    let me = |token: String| {
        let api = api.clone();
        let url = app.url("/api/v1/me");
        async move { api.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let res = me(secret.clone()).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["email"], "tess@example.test");
    assert_eq!(body["teams"], json!([{"slug": "payments", "role": "lead"}]));
    // Token requests need no CSRF token (no cookies involved).
    let res = api
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&secret)
        .json(&json!({"name": "second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let second = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bad input is named, and nothing is created.
    let res = api
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&secret)
        .json(&json!({"name": "", "expires_in_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let problem: serde_json::Value = res.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "expires_in_days"]);

    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE name = 'ci'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(used.is_some(), "last use is recorded");

    // Revoked: refused from then on.
    let id = created["id"].as_str().unwrap();
    let res = api
        .delete(app.url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = me(secret).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // Expired: refused too.
    sqlx::query(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'second'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(me(second).await.status(), 401);
    assert_eq!(me("sbp_made-up".into()).await.status(), 401);
}

#[tokio::test]
async fn repeated_bad_tokens_and_sign_in_storms_are_slowed_down() {
    let app = spawn_app().await;
    let api = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            api.get(app.url("/api/v1/me"))
                .bearer_auth("sbp_guess")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);

    let mut last = 0;
    for _ in 0..31 {
        last = app.get("/auth/login").await.status().as_u16();
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn the_operator_bootstrap_token_creates_an_admin() {
    let app = spawn_app().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "admin",
            "create-token",
            "--email",
            "ops@example.test",
            "--name",
            "bootstrap",
            "--admin",
            "--expires-in",
            "7",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("sbp_"));
    let me: serde_json::Value = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ops@example.test");
    assert_eq!(me["is_admin"], true);

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["admin", "create-token", "--email", "nope", "--name", "x"])
        .env_clear()
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email: has no @"));
    let _ = Duration::from_secs(0);
}
