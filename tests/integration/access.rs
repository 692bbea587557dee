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

/// Denied = 401, 403, a page sending the person to sign in, or (`hidden`) a 404:
/// an object of another team does not exist for whoever may not see it.
/// Allowed = anything else (what the handler then said: 2xx, 3xx, 409, 422…).
fn allowed(res: &reqwest::Response, hidden: bool) -> bool {
    let status = res.status().as_u16();
    let to_sign_in = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.starts_with("/auth/login"));
    !(status == 401 || status == 403 || (hidden && status == 404) || to_sign_in)
}

/// The objects the matrix acts on: real ones, of the payments team, made
/// through the API the way people make them.
struct Objects {
    member_token: String,
    lead_token: String,
    admin_token: String,
    corp: String,
    networks: Vec<String>,
}

impl Objects {
    async fn call(
        &self,
        app: &TestApp,
        token: &str,
        method: Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let body = (!body.is_null()).then_some(body);
        let (status, value) =
            crate::helpers::api_call(app, token, method.clone(), path, body).await;
        assert!(status < 300, "{method} {path}: {status} {value}");
        value
    }

    async fn network(
        &self,
        app: &TestApp,
        account: &str,
        name: &str,
        cidr: &str,
        external_id: Option<&str>,
    ) -> String {
        let n = self
            .call(app, &self.member_token, Method::POST, "/api/v1/networks",
                json!({"name": name, "team": "payments", "provider_account_id": account, "region": "local",
                       "cidr": cidr, "external_id": external_id}))
            .await;
        n["id"].as_str().unwrap().to_owned()
    }

    /// A network the member asked for in an account that wants the lead's
    /// approval: (id, plan hash).
    async fn awaiting(&self, app: &TestApp, account: &str, name: &str) -> (String, String) {
        let n = self
            .call(app, &self.member_token, Method::POST, "/api/v1/networks",
                json!({"name": name, "team": "payments", "provider_account_id": account, "region": "local",
                       "pool_id": self.corp, "prefix_length": 24}))
            .await;
        assert_eq!(n["status"], "awaiting_approval", "{n}");
        (
            n["id"].as_str().unwrap().to_owned(),
            n["build"]["plan_hash"].as_str().unwrap().to_owned(),
        )
    }

    /// A request by the member between payments' two networks: its only side is payments.
    async fn connection(&self, app: &TestApp) -> String {
        let c = self
            .call(app, &self.member_token, Method::POST, "/api/v1/connections",
                json!({"kind": "network-to-network", "reason": "access matrix",
                       "source_network_id": self.networks[0], "destination_network_id": self.networks[1],
                       "protocol": "tcp", "ports": "443"}))
            .await;
        c["id"].as_str().unwrap().to_owned()
    }

    async fn active(&self, app: &TestApp) -> String {
        let id = self.connection(app).await;
        self.call(
            app,
            &self.lead_token,
            Method::POST,
            &format!("/api/v1/connections/{id}/approve"),
            json!({}),
        )
        .await;
        crate::helpers::eventually(Duration::from_secs(30), "active", || async {
            let (_, c) = crate::helpers::api_call(
                app,
                &self.member_token,
                Method::GET,
                &format!("/api/v1/connections/{id}"),
                None,
            )
            .await;
            (c["status"] == "active").then_some(())
        })
        .await;
        id
    }

    /// A change the member asked for that lets more through: it waits for the lead.
    async fn change(&self, app: &TestApp) -> String {
        let id = self.active(app).await;
        let c = self
            .call(
                app,
                &self.member_token,
                Method::POST,
                &format!("/api/v1/connections/{id}/changes"),
                json!({"ports": "443, 8443"}),
            )
            .await;
        assert_eq!(c["status"], "pending", "{c}");
        c["id"].as_str().unwrap().to_owned()
    }

    /// A renewal the member asked for, of a connection that expires in two
    /// days: it waits for the payments lead.
    async fn renewal(&self, app: &TestApp) -> String {
        let c = self
            .call(app, &self.member_token, Method::POST, "/api/v1/connections",
                json!({"kind": "network-to-network", "reason": "access matrix",
                       "source_network_id": self.networks[0], "destination_network_id": self.networks[1],
                       "protocol": "tcp", "ports": "443", "expires_in_hours": 48}))
            .await;
        let r = self
            .call(
                app,
                &self.member_token,
                Method::POST,
                &format!("/api/v1/connections/{}/renewals", c["id"].as_str().unwrap()),
                json!({"expires_in_hours": 240}),
            )
            .await;
        assert_eq!(r["status"], "pending", "{r}");
        r["id"].as_str().unwrap().to_owned()
    }

    async fn failed(&self, app: &TestApp) -> String {
        let id = self.connection(app).await;
        sqlx::query("UPDATE connections SET status = 'failed' WHERE id = $1::uuid")
            .bind(&id)
            .execute(&app.pool)
            .await
            .unwrap();
        id
    }

    async fn allocation(&self, app: &TestApp) -> String {
        let a = self
            .call(
                app,
                &self.member_token,
                Method::POST,
                &format!("/api/v1/pools/{}/allocations", self.corp),
                json!({"prefix_length": 28}),
            )
            .await;
        a["id"].as_str().unwrap().to_owned()
    }
}

/// One row: a route, the concrete request, and who may (anonymous, member,
/// lead, other team's lead, admin). `paths` has one path, or one per person
/// where the action uses its object up (a deleted network, a released block).
struct Row {
    method: &'static str,
    pattern: &'static str,
    paths: Vec<String>,
    body: Body,
    who: [bool; 5],
    /// A 404 counts as a refusal (a per-object route).
    hidden: bool,
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

    // Real objects of payments, which ledger's lead must not reach.
    let mut o = Objects {
        member_token: app.token("member@example.test", false).await,
        lead_token: app.token("lead@example.test", false).await,
        admin_token: app.token("root@example.test", true).await,
        corp: String::new(),
        networks: Vec::new(),
    };
    let corp = o
        .call(
            &app,
            &o.admin_token,
            Method::POST,
            "/api/v1/pools",
            json!({"name": "corp", "cidr": "10.0.0.0/8"}),
        )
        .await;
    o.corp = corp["id"].as_str().unwrap().to_owned();
    let account = o
        .call(
            &app,
            &o.admin_token,
            Method::POST,
            "/api/v1/provider-accounts",
            json!({"kind": "sandbox", "name": "access-sandbox", "regions": ["local"]}),
        )
        .await;
    let account = account["id"].as_str().unwrap().to_owned();
    for (i, name) in ["pay-a", "pay-b"].iter().enumerate() {
        let id = o
            .network(&app, &account, name, &format!("10.1.{i}.0/24"), None)
            .await;
        o.networks.push(id);
    }
    let mut throwaway = Vec::new();
    for i in 0..10 {
        throwaway.push(
            o.network(
                &app,
                &account,
                &format!("gone-{i}"),
                &format!("10.2.{i}.0/24"),
                None,
            )
            .await,
        );
    }
    let mut unproved = Vec::new();
    for i in 0..3 {
        // The sandbox account names no owner: the member's registration waits for an admin.
        unproved.push(
            o.network(
                &app,
                &account,
                &format!("claim-{i}"),
                &format!("10.3.{i}.0/24"),
                Some(&format!("sbx-vpc-{i}")),
            )
            .await,
        );
    }
    let approving = o
        .call(
            &app,
            &o.admin_token,
            Method::POST,
            "/api/v1/provider-accounts",
            json!({"kind": "sandbox", "name": "access-approving", "regions": ["local"],
                   "settings": {"network_approval": "lead"}}),
        )
        .await;
    let approving = approving["id"].as_str().unwrap().to_owned();
    let mut awaiting = Vec::new();
    // A rejection deletes the network: the admin rejects another one.
    for name in [
        "ask-web", "ask-api", "no-web", "no-api", "no-web-2", "no-api-2",
    ] {
        awaiting.push(o.awaiting(&app, &approving, name).await);
    }
    let (approve_web, approve_api) = (o.connection(&app).await, o.connection(&app).await);
    let (reject_web, reject_api) = (o.connection(&app).await, o.connection(&app).await);
    let (cancel_web, cancel_api) = (o.connection(&app).await, o.connection(&app).await);
    let (retry_web, retry_api) = (o.failed(&app).await, o.failed(&app).await);
    let watched = o.active(&app).await;
    let (approve_renewal_web, approve_renewal_api) = (o.renewal(&app).await, o.renewal(&app).await);
    let (reject_renewal_web, reject_renewal_api) = (o.renewal(&app).await, o.renewal(&app).await);
    let (remove_web, remove_api) = (o.active(&app).await, o.active(&app).await);
    let (approve_change_web, approve_change_api) = (o.change(&app).await, o.change(&app).await);
    let (reject_change_web, reject_change_api) = (o.change(&app).await, o.change(&app).await);
    let changed = o.active(&app).await;
    let mut allocations = Vec::new();
    for _ in 0..10 {
        allocations.push(o.allocation(&app).await);
    }
    let token_web = o
        .call(
            &app,
            &o.member_token,
            Method::POST,
            "/api/v1/tokens",
            json!({"name": "web"}),
        )
        .await;
    let token_api = o
        .call(
            &app,
            &o.member_token,
            Method::POST,
            "/api/v1/tokens",
            json!({"name": "api"}),
        )
        .await;
    let (token_web, token_api) = (
        token_web["id"].as_str().unwrap().to_owned(),
        token_api["id"].as_str().unwrap().to_owned(),
    );
    let mut victims = Vec::new();
    for i in 0..5 {
        let email = format!("leaver{i}@example.test");
        app.member_token(&email, "payments").await;
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(&email)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        victims.push(id);
    }
    let resources = o
        .call(
            &app,
            &o.admin_token,
            Method::GET,
            &format!("/api/v1/sandbox/resources?connection_id={watched}"),
            json!(null),
        )
        .await;
    let resource = resources[0]["id"]
        .as_str()
        .expect("the watched connection has sandbox resources")
        .to_owned();
    let api_resource = resources[1]["id"].as_str().unwrap().to_owned();
    let message: uuid::Uuid = sqlx::query_scalar("SELECT id FROM outbox_emails LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let corp = o.corp.clone();
    let pay_a = o.networks[0].clone();

    let form = |fields: &[(&'static str, &str)]| {
        Body::Form(fields.iter().map(|(k, v)| (*k, v.to_string())).collect())
    };
    let each = |ids: &[String], make: &dyn Fn(&str) -> String| -> Vec<String> {
        ids.iter().map(|id| make(id)).collect()
    };
    let public = [true; 5];
    let signed_in = [false, true, true, true, true];
    let payments_members = [false, true, true, false, true];
    let payments_leads = [false, false, true, false, true];
    let lead_only = [false, false, true, false, false];
    let requester_or_admin = [false, true, false, false, true];
    let owner_only = [false, true, false, false, false];
    let admins = [false, false, false, false, true];
    let row = |method, pattern, path: String, body: Body, who| Row {
        method,
        pattern,
        paths: vec![path],
        body,
        who,
        hidden: false,
    };
    let object = |method, pattern, path: String, body: Body, who| Row {
        method,
        pattern,
        paths: vec![path],
        body,
        who,
        hidden: true,
    };
    let per_person = |method, pattern, paths: Vec<String>, body: Body, who| Row {
        method,
        pattern,
        paths,
        body,
        who,
        hidden: true,
    };

    let table: Vec<Row> = vec![
        row("get", "/", "/".into(), Body::None, public),
        row("get", "/healthz", "/healthz".into(), Body::None, public),
        row("get", "/readyz", "/readyz".into(), Body::None, public),
        row("get", "/metrics", "/metrics".into(), Body::None, public),
        row(
            "get",
            "/static/{name}",
            "/static/app.css".into(),
            Body::None,
            public,
        ),
        row(
            "get",
            "/auth/login",
            "/auth/login".into(),
            Body::None,
            public,
        ),
        row(
            "get",
            "/auth/callback",
            "/auth/callback".into(),
            Body::None,
            public,
        ),
        row("get", "/auth/dev", "/auth/dev".into(), Body::None, public),
        row(
            "post",
            "/auth/dev",
            "/auth/dev".into(),
            form(&[("email", "")]),
            public,
        ),
        row("get", "/me", "/me".into(), Body::None, signed_in),
        row(
            "post",
            "/me/tokens",
            "/me/tokens".into(),
            form(&[("name", "t")]),
            signed_in,
        ),
        object(
            "post",
            "/me/tokens/{id}/revoke",
            format!("/me/tokens/{token_web}/revoke"),
            Body::None,
            owner_only,
        ),
        row(
            "post",
            "/me/notifications",
            "/me/notifications".into(),
            form(&[("drift", "on")]),
            signed_in,
        ),
        row("get", "/teams", "/teams".into(), Body::None, signed_in),
        row(
            "post",
            "/teams",
            "/teams".into(),
            form(&[("slug", "new-team"), ("name", "New")]),
            admins,
        ),
        object(
            "get",
            "/teams/{slug}",
            "/teams/payments".into(),
            Body::None,
            signed_in,
        ),
        object(
            "post",
            "/teams/{slug}/members",
            "/teams/payments/members".into(),
            form(&[("email", "victim@example.test"), ("role", "member")]),
            payments_leads,
        ),
        per_person(
            "post",
            "/teams/{slug}/members/{user_id}/remove",
            victims
                .iter()
                .map(|v| format!("/teams/payments/members/{v}/remove"))
                .collect(),
            Body::None,
            payments_leads,
        ),
        object(
            "post",
            "/teams/{slug}/webhook",
            "/teams/payments/webhook".into(),
            form(&[("url", "nonsense")]),
            payments_leads,
        ),
        // The team is visible to all; a 404 here says it has no webhook (any more).
        row(
            "post",
            "/teams/{slug}/webhook/delete",
            "/teams/payments/webhook/delete".into(),
            Body::None,
            payments_leads,
        ),
        row(
            "get",
            "/admin/users",
            "/admin/users".into(),
            Body::None,
            admins,
        ),
        object(
            "post",
            "/admin/users/{id}/revoke-sessions",
            format!("/admin/users/{victim}/revoke-sessions"),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/admin/audit",
            "/admin/audit".into(),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/reach",
            "/reach?to=10.0.0.1".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/guardrails",
            "/guardrails".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/guardrails",
            "/guardrails".into(),
            form(&[("rule_set", "{}"), ("based_on_version", "999")]),
            admins,
        ),
        row(
            "get",
            "/admin/provider-accounts",
            "/admin/provider-accounts".into(),
            Body::None,
            admins,
        ),
        row(
            "post",
            "/admin/provider-accounts",
            "/admin/provider-accounts".into(),
            form(&[("kind", "sandbox"), ("name", "access-sandbox-2")]),
            admins,
        ),
        row(
            "get",
            "/admin/sandbox",
            "/admin/sandbox".into(),
            Body::None,
            admins,
        ),
        object(
            "post",
            "/admin/sandbox/{id}/change",
            format!("/admin/sandbox/{resource}/change"),
            form(&[("detail", "changed")]),
            admins,
        ),
        object(
            "post",
            "/admin/sandbox/{id}/delete",
            format!("/admin/sandbox/{resource}/delete"),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/admin/registrations",
            "/admin/registrations".into(),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/address-plan",
            "/address-plan".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/address-plan/pools",
            "/address-plan/pools".into(),
            form(&[("name", ""), ("cidr", "")]),
            admins,
        ),
        row(
            "get",
            "/address-plan/check-cidr",
            "/address-plan/check-cidr?cidr=10.0.0.0/8".into(),
            Body::None,
            signed_in,
        ),
        object(
            "get",
            "/address-plan/pools/{id}",
            format!("/address-plan/pools/{corp}"),
            Body::None,
            signed_in,
        ),
        object(
            "post",
            "/address-plan/pools/{id}/allocations",
            format!("/address-plan/pools/{corp}/allocations"),
            form(&[("prefix_length", "28")]),
            signed_in,
        ),
        per_person(
            "post",
            "/address-plan/allocations/{id}/release",
            each(&allocations[..5], &|a| {
                format!("/address-plan/allocations/{a}/release")
            }),
            Body::None,
            requester_or_admin,
        ),
        row(
            "get",
            "/networks",
            "/networks".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/networks",
            "/networks".into(),
            form(&[("name", "")]),
            signed_in,
        ),
        object(
            "get",
            "/networks/{id}",
            format!("/networks/{pay_a}"),
            Body::None,
            signed_in,
        ),
        per_person(
            "post",
            "/networks/{id}/delete",
            each(&throwaway[..5], &|n| format!("/networks/{n}/delete")),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/networks/{id}/ownership/confirm",
            format!("/networks/{}/ownership/confirm", unproved[0]),
            Body::None,
            admins,
        ),
        object(
            "post",
            "/networks/{id}/ownership/refuse",
            format!("/networks/{}/ownership/refuse", unproved[1]),
            form(&[("reason", "not theirs")]),
            admins,
        ),
        object(
            "post",
            "/networks/{id}/ownership/check",
            format!("/networks/{}/ownership/check", unproved[2]),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/networks/{id}/approve",
            format!("/networks/{}/approve", awaiting[0].0),
            form(&[("plan_hash", &awaiting[0].1)]),
            payments_leads,
        ),
        per_person(
            "post",
            "/networks/{id}/reject",
            [2, 2, 2, 2, 4]
                .map(|i| format!("/networks/{}/reject", awaiting[i].0))
                .to_vec(),
            form(&[("reason", "not now")]),
            payments_leads,
        ),
        row(
            "get",
            "/connections",
            "/connections?status=pending_approval".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/connections",
            "/connections".into(),
            form(&[("kind", "")]),
            signed_in,
        ),
        row(
            "get",
            "/connections/new",
            "/connections/new".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/connections/plan-preview",
            "/connections/plan-preview?kind=network-to-network".into(),
            Body::None,
            signed_in,
        ),
        object(
            "get",
            "/connections/{id}",
            format!("/connections/{watched}"),
            Body::None,
            payments_members,
        ),
        object(
            "get",
            "/connections/{id}/progress",
            format!("/connections/{watched}/progress"),
            Body::None,
            payments_members,
        ),
        object(
            "get",
            "/connections/{id}/monitoring",
            format!("/connections/{watched}/monitoring"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/connections/{id}/approve",
            format!("/connections/{approve_web}/approve"),
            form(&[("comment", "fine")]),
            lead_only,
        ),
        object(
            "post",
            "/connections/{id}/reject",
            format!("/connections/{reject_web}/reject"),
            form(&[("comment", "no")]),
            lead_only,
        ),
        object(
            "post",
            "/connections/{id}/cancel",
            format!("/connections/{cancel_web}/cancel"),
            Body::None,
            requester_or_admin,
        ),
        object(
            "post",
            "/connections/{id}/retry",
            format!("/connections/{retry_web}/retry"),
            Body::None,
            payments_leads,
        ),
        object(
            "get",
            "/connections/{id}/renew",
            format!("/connections/{watched}/renew"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/connections/{id}/renew",
            format!("/connections/{watched}/renew"),
            form(&[("days", "30")]),
            payments_members,
        ),
        object(
            "post",
            "/renewals/{id}/approve",
            format!("/renewals/{approve_renewal_web}/approve"),
            form(&[("comment", "fine")]),
            payments_leads,
        ),
        object(
            "post",
            "/renewals/{id}/reject",
            format!("/renewals/{reject_renewal_web}/reject"),
            form(&[("comment", "no")]),
            payments_leads,
        ),
        object(
            "get",
            "/connections/{id}/change",
            format!("/connections/{changed}/change"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/connections/{id}/changes",
            format!("/connections/{changed}/changes"),
            form(&[
                ("protocol", "tcp"),
                ("ports", "443, 9443"),
                ("reason", "access matrix"),
            ]),
            payments_members,
        ),
        object(
            "post",
            "/changes/{id}/approve",
            format!("/changes/{approve_change_web}/approve"),
            form(&[("plan_hash", "v2:seen")]),
            lead_only,
        ),
        object(
            "post",
            "/changes/{id}/reject",
            format!("/changes/{reject_change_web}/reject"),
            form(&[("reason", "no")]),
            lead_only,
        ),
        object(
            "post",
            "/connections/{id}/remove",
            format!("/connections/{remove_web}/remove"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/connections/{id}/repair",
            format!("/connections/{watched}/repair"),
            Body::None,
            payments_leads,
        ),
        object(
            "post",
            "/connections/{id}/repair-mode",
            format!("/connections/{watched}/repair-mode"),
            form(&[("repair", "auto")]),
            payments_leads,
        ),
        row(
            "get",
            "/approvals",
            "/approvals".into(),
            Body::None,
            signed_in,
        ),
        row("get", "/status", "/status".into(), Body::None, signed_in),
        row("get", "/map", "/map".into(), Body::None, signed_in),
        row(
            "get",
            "/status/board",
            "/status/board".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/dev/outbox",
            "/dev/outbox".into(),
            Body::None,
            admins,
        ),
        object(
            "get",
            "/dev/outbox/{id}/html",
            format!("/dev/outbox/{message}/html"),
            Body::None,
            admins,
        ),
        row(
            "post",
            "/dev/outbox/test-email",
            "/dev/outbox/test-email".into(),
            form(&[("to", "x@example.test")]),
            admins,
        ),
        row(
            "get",
            "/api/v1/openapi.json",
            "/api/v1/openapi.json".into(),
            Body::None,
            public,
        ),
        row(
            "get",
            "/api/v1/me",
            "/api/v1/me".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/api/v1/teams",
            "/api/v1/teams".into(),
            Body::None,
            signed_in,
        ),
        object(
            "get",
            "/api/v1/teams/{slug}",
            "/api/v1/teams/payments".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/api/v1/teams",
            "/api/v1/teams".into(),
            Body::Json(json!({"slug": "api-new-team", "name": "New"})),
            admins,
        ),
        object(
            "post",
            "/api/v1/teams/{slug}/members",
            "/api/v1/teams/payments/members".into(),
            Body::Json(json!({"email": "victim@example.test", "role": "member"})),
            payments_leads,
        ),
        // The lead and the admin remove leavers the web row above leaves in
        // the team (it removes the third and the fifth), whichever runs first.
        per_person(
            "delete",
            "/api/v1/teams/{slug}/members/{user_id}",
            [3, 3, 0, 3, 1]
                .iter()
                .map(|&i| format!("/api/v1/teams/payments/members/{}", victims[i]))
                .collect(),
            Body::None,
            payments_leads,
        ),
        row(
            "get",
            "/api/v1/users",
            "/api/v1/users".into(),
            Body::None,
            admins,
        ),
        object(
            "delete",
            "/api/v1/users/{id}/sessions",
            format!("/api/v1/users/{victim}/sessions"),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/api/v1/approvals",
            "/api/v1/approvals".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Body::Json(json!({"name": "t"})),
            signed_in,
        ),
        object(
            "delete",
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{token_api}"),
            Body::None,
            owner_only,
        ),
        row(
            "get",
            "/api/v1/pools",
            "/api/v1/pools".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/api/v1/pools",
            "/api/v1/pools".into(),
            Body::Json(json!({"name": "", "cidr": ""})),
            admins,
        ),
        object(
            "get",
            "/api/v1/pools/{id}",
            format!("/api/v1/pools/{corp}"),
            Body::None,
            signed_in,
        ),
        object(
            "get",
            "/api/v1/pools/{id}/available",
            format!("/api/v1/pools/{corp}/available?prefix_length=24"),
            Body::None,
            signed_in,
        ),
        object(
            "post",
            "/api/v1/pools/{id}/allocations",
            format!("/api/v1/pools/{corp}/allocations"),
            Body::Json(json!({"prefix_length": 28})),
            signed_in,
        ),
        per_person(
            "delete",
            "/api/v1/allocations/{id}",
            each(&allocations[5..], &|a| format!("/api/v1/allocations/{a}")),
            Body::None,
            requester_or_admin,
        ),
        object(
            "put",
            "/api/v1/pools/{id}/quotas/{team}",
            format!("/api/v1/pools/{corp}/quotas/payments"),
            Body::Json(json!({"max_addresses": 4096})),
            admins,
        ),
        row(
            "get",
            "/api/v1/sandbox/resources",
            "/api/v1/sandbox/resources".into(),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/api/v1/audit",
            "/api/v1/audit".into(),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/api/v1/allocations",
            "/api/v1/allocations".into(),
            Body::None,
            signed_in,
        ),
        object(
            "patch",
            "/api/v1/sandbox/resources/{id}",
            format!("/api/v1/sandbox/resources/{api_resource}"),
            Body::Json(json!({"detail": "changed again"})),
            admins,
        ),
        object(
            "delete",
            "/api/v1/sandbox/resources/{id}",
            format!("/api/v1/sandbox/resources/{api_resource}"),
            Body::None,
            admins,
        ),
        row(
            "get",
            "/api/v1/provider-accounts",
            "/api/v1/provider-accounts".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/api/v1/reach",
            "/api/v1/reach?to=10.0.0.1&port=443".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/api/v1/guardrails",
            "/api/v1/guardrails".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/api/v1/guardrails/versions",
            "/api/v1/guardrails/versions".into(),
            Body::None,
            signed_in,
        ),
        row(
            "put",
            "/api/v1/guardrails",
            "/api/v1/guardrails".into(),
            Body::Json(json!({"rule_set": {}, "based_on_version": 999})),
            admins,
        ),
        row(
            "post",
            "/api/v1/provider-accounts",
            "/api/v1/provider-accounts".into(),
            Body::Json(json!({"kind": "", "name": ""})),
            admins,
        ),
        row(
            "get",
            "/api/v1/networks",
            "/api/v1/networks".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/api/v1/networks",
            "/api/v1/networks".into(),
            Body::Json(json!({"name": "", "team": "payments", "region": ""})),
            signed_in,
        ),
        object(
            "get",
            "/api/v1/networks/{id}",
            format!("/api/v1/networks/{pay_a}"),
            Body::None,
            signed_in,
        ),
        object(
            "patch",
            "/api/v1/networks/{id}",
            format!("/api/v1/networks/{pay_a}"),
            Body::Json(json!({})),
            payments_members,
        ),
        per_person(
            "delete",
            "/api/v1/networks/{id}",
            each(&throwaway[5..], &|n| format!("/api/v1/networks/{n}")),
            Body::None,
            payments_members,
        ),
        row(
            "get",
            "/api/v1/registrations",
            "/api/v1/registrations".into(),
            Body::None,
            admins,
        ),
        object(
            "post",
            "/api/v1/networks/{id}/ownership/confirm",
            format!("/api/v1/networks/{}/ownership/confirm", unproved[0]),
            Body::None,
            admins,
        ),
        object(
            "post",
            "/api/v1/networks/{id}/ownership/refuse",
            format!("/api/v1/networks/{}/ownership/refuse", unproved[1]),
            Body::Json(json!({"reason": "not theirs"})),
            admins,
        ),
        object(
            "post",
            "/api/v1/networks/{id}/ownership/check",
            format!("/api/v1/networks/{}/ownership/check", unproved[2]),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/api/v1/networks/{id}/approve",
            format!("/api/v1/networks/{}/approve", awaiting[1].0),
            Body::Json(json!({"plan_hash": awaiting[1].1})),
            payments_leads,
        ),
        per_person(
            "post",
            "/api/v1/networks/{id}/reject",
            [3, 3, 3, 3, 5]
                .map(|i| format!("/api/v1/networks/{}/reject", awaiting[i].0))
                .to_vec(),
            Body::Json(json!({"reason": "not now"})),
            payments_leads,
        ),
        row(
            "get",
            "/api/v1/networks/{id}/steps",
            format!("/api/v1/networks/{pay_a}/steps"),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/api/v1/connections",
            "/api/v1/connections".into(),
            Body::None,
            signed_in,
        ),
        row(
            "post",
            "/api/v1/connections",
            "/api/v1/connections".into(),
            Body::Json(json!({})),
            signed_in,
        ),
        row(
            "post",
            "/api/v1/connections/plan",
            "/api/v1/connections/plan".into(),
            Body::Json(json!({})),
            signed_in,
        ),
        object(
            "get",
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{watched}"),
            Body::None,
            payments_members,
        ),
        object(
            "get",
            "/api/v1/connections/{id}/plan",
            format!("/api/v1/connections/{watched}/plan"),
            Body::None,
            payments_members,
        ),
        object(
            "get",
            "/api/v1/connections/{id}/events",
            format!("/api/v1/connections/{watched}/events"),
            Body::None,
            payments_members,
        ),
        object(
            "get",
            "/api/v1/connections/{id}/drift",
            format!("/api/v1/connections/{watched}/drift"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/api/v1/connections/{id}/approve",
            format!("/api/v1/connections/{approve_api}/approve"),
            Body::Json(json!({})),
            lead_only,
        ),
        object(
            "post",
            "/api/v1/connections/{id}/reject",
            format!("/api/v1/connections/{reject_api}/reject"),
            Body::Json(json!({"comment": "no"})),
            lead_only,
        ),
        object(
            "post",
            "/api/v1/connections/{id}/cancel",
            format!("/api/v1/connections/{cancel_api}/cancel"),
            Body::None,
            requester_or_admin,
        ),
        object(
            "post",
            "/api/v1/connections/{id}/retry",
            format!("/api/v1/connections/{retry_api}/retry"),
            Body::None,
            payments_leads,
        ),
        object(
            "get",
            "/api/v1/connections/{id}/renewals",
            format!("/api/v1/connections/{watched}/renewals"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/api/v1/connections/{id}/renewals",
            format!("/api/v1/connections/{watched}/renewals"),
            Body::Json(json!({"expires_in_hours": 240})),
            payments_members,
        ),
        object(
            "post",
            "/api/v1/renewals/{id}/approve",
            format!("/api/v1/renewals/{approve_renewal_api}/approve"),
            Body::Json(json!({})),
            payments_leads,
        ),
        object(
            "post",
            "/api/v1/renewals/{id}/reject",
            format!("/api/v1/renewals/{reject_renewal_api}/reject"),
            Body::Json(json!({"comment": "no"})),
            payments_leads,
        ),
        object(
            "delete",
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{remove_api}"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/api/v1/connections/{id}/repair",
            format!("/api/v1/connections/{watched}/repair"),
            Body::None,
            payments_leads,
        ),
        object(
            "put",
            "/api/v1/connections/{id}/repair-mode",
            format!("/api/v1/connections/{watched}/repair-mode"),
            Body::Json(json!({"repair": "notify"})),
            payments_leads,
        ),
        row(
            "get",
            "/api/v1/status",
            "/api/v1/status".into(),
            Body::None,
            signed_in,
        ),
        row(
            "get",
            "/api/v1/me/notifications",
            "/api/v1/me/notifications".into(),
            Body::None,
            signed_in,
        ),
        row(
            "put",
            "/api/v1/me/notifications",
            "/api/v1/me/notifications".into(),
            Body::Json(json!({"drift": true})),
            signed_in,
        ),
        row(
            "get",
            "/api/v1/teams/{slug}/webhook",
            "/api/v1/teams/payments/webhook".into(),
            Body::None,
            payments_members,
        ),
        object(
            "put",
            "/api/v1/teams/{slug}/webhook",
            "/api/v1/teams/payments/webhook".into(),
            Body::Json(json!({"url": "", "secret_ref": ""})),
            payments_leads,
        ),
        row(
            "delete",
            "/api/v1/teams/{slug}/webhook",
            "/api/v1/teams/payments/webhook".into(),
            Body::None,
            payments_leads,
        ),
        object(
            "post",
            "/api/v1/connections/{id}/changes",
            format!("/api/v1/connections/{changed}/changes"),
            Body::Json(json!({"ports": "443, 9443"})),
            payments_members,
        ),
        object(
            "get",
            "/api/v1/connections/{id}/changes",
            format!("/api/v1/connections/{changed}/changes"),
            Body::None,
            payments_members,
        ),
        object(
            "get",
            "/api/v1/changes/{id}",
            format!("/api/v1/changes/{approve_change_api}"),
            Body::None,
            payments_members,
        ),
        object(
            "post",
            "/api/v1/changes/{id}/approve",
            format!("/api/v1/changes/{approve_change_api}/approve"),
            Body::Json(json!({"plan_hash": "v2:seen"})),
            lead_only,
        ),
        object(
            "post",
            "/api/v1/changes/{id}/reject",
            format!("/api/v1/changes/{reject_change_api}/reject"),
            Body::Json(json!({"reason": "no"})),
            lead_only,
        ),
        // Last: it ends the sessions it is run with.
        row(
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
            table
                .iter()
                .any(|r| r.method == *method && r.pattern == *pattern),
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
    for row in &table {
        let method = Method::from_bytes(row.method.to_uppercase().as_bytes()).unwrap();
        for (i, ((person, name), expect)) in people.iter().zip(names).zip(row.who).enumerate() {
            let path = row.paths.get(i).unwrap_or(&row.paths[0]);
            let res = person.send(&app, &method, path, &row.body).await;
            let status = res.status();
            assert_eq!(
                allowed(&res, row.hidden),
                expect,
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

/// The actions of the `post` forms on a page, ids made generic
/// (`/connections/{id}/approve`), without the sign-out every page has.
fn post_forms(html: &str) -> Vec<String> {
    let mut found: Vec<String> = html
        .split("<form")
        .skip(1)
        .filter_map(|f| {
            let tag = &f[..f.find('>')?];
            if !tag.contains(r#"method="post""#) {
                return None;
            }
            let at = tag.find(r#"action=""#)? + r#"action=""#.len();
            let action = &tag[at..at + tag[at..].find('"')?];
            let generic: Vec<&str> = action
                .split('/')
                .map(|seg| {
                    if uuid::Uuid::parse_str(seg).is_ok() {
                        "{id}"
                    } else {
                        seg
                    }
                })
                .collect();
            Some(generic.join("/"))
        })
        .filter(|a| a != "/auth/logout")
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The pages offer a control only where the policy allows the action to this
/// person, on this object, in its current state: walked as each person.
#[tokio::test]
async fn pages_offer_only_what_the_policy_allows() {
    let app = spawn_app().await;
    let member = Person::signed_in(&app, "member@example.test", "payments", "member", false).await;
    let lead = Person::signed_in(&app, "lead@example.test", "payments", "lead", false).await;
    let other_lead = Person::signed_in(&app, "other@example.test", "ledger", "lead", false).await;
    let admin = Person::signed_in(&app, "root@example.test", "", "member", true).await;
    let mut o = Objects {
        member_token: app.token("member@example.test", false).await,
        lead_token: app.token("lead@example.test", false).await,
        admin_token: app.token("root@example.test", true).await,
        corp: String::new(),
        networks: Vec::new(),
    };
    let corp = o
        .call(
            &app,
            &o.admin_token,
            Method::POST,
            "/api/v1/pools",
            json!({"name": "corp", "cidr": "10.0.0.0/8"}),
        )
        .await;
    o.corp = corp["id"].as_str().unwrap().to_owned();
    let account = o
        .call(
            &app,
            &o.admin_token,
            Method::POST,
            "/api/v1/provider-accounts",
            json!({"kind": "sandbox", "name": "walk-sandbox", "regions": ["local"]}),
        )
        .await;
    let account = account["id"].as_str().unwrap().to_owned();
    for (i, name) in ["pay-a", "pay-b"].iter().enumerate() {
        let id = o
            .network(&app, &account, name, &format!("10.1.{i}.0/24"), None)
            .await;
        o.networks.push(id);
    }
    let unproved = o
        .network(&app, &account, "claim", "10.3.0.0/24", Some("sbx-vpc-9"))
        .await;
    let approving = o
        .call(
            &app,
            &o.admin_token,
            Method::POST,
            "/api/v1/provider-accounts",
            json!({"kind": "sandbox", "name": "walk-approving", "regions": ["local"],
                   "settings": {"network_approval": "lead"}}),
        )
        .await;
    let (awaiting, _) = o
        .awaiting(&app, approving["id"].as_str().unwrap(), "asked")
        .await;
    let pending = o.connection(&app).await;
    let active = o.active(&app).await;
    let failed = o.failed(&app).await;
    let removed = o.active(&app).await;
    o.call(
        &app,
        &o.member_token,
        Method::DELETE,
        &format!("/api/v1/connections/{removed}"),
        json!(null),
    )
    .await;
    crate::helpers::eventually(Duration::from_secs(30), "removed", || async {
        let (_, c) = crate::helpers::api_call(
            &app,
            &o.member_token,
            Method::GET,
            &format!("/api/v1/connections/{removed}"),
            None,
        )
        .await;
        (c["status"] == "deleted").then_some(())
    })
    .await;
    // The member's block, which only they (and admins) may give back.
    o.allocation(&app).await;

    let get = async |person: &Person, path: &str| -> (u16, String) {
        let res = person.client.get(app.url(path)).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    let c = "/connections/{id}";
    let n = "/networks/{id}";
    // (page, person, the post forms it offers)
    let expect: Vec<(String, (&Person, &str), Vec<String>)> = vec![
        // Waiting for approval: the requester may cancel, the lead decides.
        (
            format!("/connections/{pending}"),
            (&member, "member"),
            vec![format!("{c}/cancel")],
        ),
        (
            format!("/connections/{pending}"),
            (&lead, "lead"),
            vec![
                format!("{c}/approve"),
                format!("{c}/reject"),
                format!("{c}/repair-mode"),
            ],
        ),
        (
            format!("/connections/{pending}"),
            (&admin, "admin"),
            vec![format!("{c}/cancel"), format!("{c}/repair-mode")],
        ),
        // Active: anyone involved may remove it; only leads and admins repair.
        (
            format!("/connections/{active}"),
            (&member, "member"),
            vec![format!("{c}/remove")],
        ),
        (
            format!("/connections/{active}"),
            (&lead, "lead"),
            vec![
                format!("{c}/remove"),
                format!("{c}/repair"),
                format!("{c}/repair-mode"),
            ],
        ),
        (
            format!("/connections/{active}"),
            (&admin, "admin"),
            vec![
                format!("{c}/remove"),
                format!("{c}/repair"),
                format!("{c}/repair-mode"),
            ],
        ),
        // Failed: leads try again.
        (
            format!("/connections/{failed}"),
            (&member, "member"),
            vec![format!("{c}/remove")],
        ),
        (
            format!("/connections/{failed}"),
            (&lead, "lead"),
            vec![
                format!("{c}/remove"),
                format!("{c}/repair-mode"),
                format!("{c}/retry"),
            ],
        ),
        // Removed: nothing more to do.
        (format!("/connections/{removed}"), (&lead, "lead"), vec![]),
        (format!("/connections/{removed}"), (&admin, "admin"), vec![]),
        // A network whose ownership waits: its team checks again, admins decide.
        (
            format!("/networks/{unproved}"),
            (&member, "member"),
            vec![format!("{n}/delete"), format!("{n}/ownership/check")],
        ),
        (
            format!("/networks/{unproved}"),
            (&other_lead, "other team's lead"),
            vec![],
        ),
        (
            format!("/networks/{unproved}"),
            (&admin, "admin"),
            vec![
                format!("{n}/delete"),
                format!("{n}/ownership/check"),
                format!("{n}/ownership/confirm"),
                format!("{n}/ownership/refuse"),
            ],
        ),
        // A network waiting for approval: its team's lead (or an admin) decides.
        (
            format!("/networks/{awaiting}"),
            (&member, "member"),
            vec![format!("{n}/delete")],
        ),
        (
            format!("/networks/{awaiting}"),
            (&lead, "lead"),
            vec![
                format!("{n}/approve"),
                format!("{n}/delete"),
                format!("{n}/reject"),
            ],
        ),
        (
            format!("/networks/{awaiting}"),
            (&other_lead, "other team's lead"),
            vec![],
        ),
        (
            format!("/networks/{awaiting}"),
            (&admin, "admin"),
            vec![
                format!("{n}/approve"),
                format!("{n}/delete"),
                format!("{n}/reject"),
            ],
        ),
        // The pool: anyone allocates; only who took a block (or an admin) gives it back.
        (
            format!("/address-plan/pools/{}", o.corp),
            (&member, "member"),
            vec![
                "/address-plan/allocations/{id}/release".into(),
                "/address-plan/pools/{id}/allocations".into(),
            ],
        ),
        (
            format!("/address-plan/pools/{}", o.corp),
            (&lead, "lead"),
            vec!["/address-plan/pools/{id}/allocations".into()],
        ),
        // A team: its leads manage members and the webhook.
        ("/teams/payments".into(), (&member, "member"), vec![]),
        (
            "/teams/payments".into(),
            (&other_lead, "other team's lead"),
            vec![],
        ),
        (
            "/teams/payments".into(),
            (&lead, "lead"),
            vec![
                "/teams/payments/members".into(),
                "/teams/payments/members/{id}/remove".into(),
                "/teams/payments/webhook".into(),
            ],
        ),
    ];
    for (path, (person, name), forms) in expect {
        let (status, html) = get(person, &path).await;
        assert_eq!(status, 200, "{name} {path}");
        let mut forms = forms;
        forms.sort();
        assert_eq!(post_forms(&html), forms, "{name} on {path}");
    }
    // The other team's lead does not even see payments' connections.
    let (status, _) = get(&other_lead, &format!("/connections/{active}")).await;
    assert_eq!(status, 404);
    // A refusal keeps the menu and the person, and says who may act.
    let res = member
        .send(
            &app,
            &Method::POST,
            &format!("/connections/{active}/repair"),
            &Body::None,
        )
        .await;
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"<a href="/me" class="who">member</a>"#),
        "{html}"
    );
    assert!(
        html.contains("only a lead of payments or an admin may repair it"),
        "{html}"
    );
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
    // Right after that burst, from the same address, a valid token still works:
    // one client's bad tokens never lock another (or the same one) out.
    let valid = app.token("known@example.test", false).await;
    for _ in 0..30 {
        let res = api
            .get(app.url("/api/v1/me"))
            .bearer_auth(&valid)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    let mut last = 0;
    for _ in 0..31 {
        last = app.get("/auth/login").await.status().as_u16();
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn the_operator_bootstrap_token_creates_an_admin() {
    let app = spawn_app().await;
    // The commands run while the portal under test keeps running (an async
    // wait): a blocking wait would freeze its workers mid-transaction.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
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
        .await
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

    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["admin", "create-token", "--email", "nope", "--name", "x"])
        .env_clear()
        .env("DATABASE_URL", &app.db.url)
        .output()
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email: has no @"));
    let _ = Duration::from_secs(0);
}

/// Behind a trusted proxy every client shares the proxy's address: the limits
/// key on the address the proxy forwards, and only a trusted proxy is believed.
#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_limited_each_on_its_own() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![("SWITCHBOARD_TRUSTED_PROXIES", "127.0.0.1".into())],
        ..Default::default()
    })
    .await;
    let api = reqwest::Client::new();
    let guess = |client: &'static str| {
        api.get(app.url("/api/v1/me"))
            .bearer_auth("sbp_guess")
            .header("x-forwarded-for", client)
            .send()
    };
    let mut first = Vec::new();
    for _ in 0..11 {
        first.push(guess("203.0.113.1").await.unwrap().status().as_u16());
    }
    assert_eq!(first[10], 429, "{first:?}");
    assert_eq!(
        guess("203.0.113.2").await.unwrap().status(),
        401,
        "another client behind the proxy"
    );
    let fly = api
        .get(app.url("/api/v1/me"))
        .bearer_auth("sbp_guess")
        .header("fly-client-ip", "203.0.113.3")
        .send()
        .await
        .unwrap();
    assert_eq!(fly.status(), 401);

    // Without trusted proxies, the header is the client's own word: ignored.
    let plain = spawn_app().await;
    for (i, client) in (0..11).map(|i| format!("198.51.100.{i}")).enumerate() {
        let status = api
            .get(plain.url("/api/v1/me"))
            .bearer_auth("sbp_guess")
            .header("x-forwarded-for", client)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, if i < 10 { 401 } else { 429 }, "request {i}");
    }
}
