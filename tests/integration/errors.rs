use crate::helpers::spawn_app;

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
];

fn assert_secure(res: &reqwest::Response) {
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(res.headers()[*name], *value, "{name} on {}", res.url());
    }
    assert!(!res.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/healthz",
        "/static/app.css",
        "/no/such/page",
        "/api/v1/nothing",
    ] {
        let res = app.get(path).await;
        assert_secure(&res);
    }
    app.sign_in_admin().await;
    let res = app
        .post_form("/dev/outbox/test-email", &[("to", "bad")])
        .await;
    assert_eq!(res.status(), 422);
    assert_secure(&res);
}

#[tokio::test]
async fn unknown_pages_get_an_html_error_page_with_the_request_id() {
    let app = spawn_app().await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = res.text().await.unwrap();
    assert!(body.contains("404 · Not Found"), "{body}");
    assert!(
        body.contains("the page /no/such/page was not found"),
        "{body}"
    );
    assert!(
        body.contains(&request_id),
        "page shows the request id {request_id}"
    );
}

#[tokio::test]
async fn api_errors_are_problem_json_with_the_request_id() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/nothing-here").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["title"], "Not Found");
    assert_eq!(problem["instance"], "/api/v1/nothing-here");
    assert_eq!(problem["request_id"], request_id);
}

#[tokio::test]
async fn programs_asking_for_json_get_problem_json_on_pages_too() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    let csrf = app.csrf.lock().unwrap().clone();
    let res = app
        .client
        .post(app.url("/dev/outbox/test-email"))
        .header("accept", "application/json")
        .form(&[("to", "nobody"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "to");
    assert_eq!(problem["errors"][0]["reason"], "has no @");
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_a_400_not_a_500() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    let csrf = app.csrf.lock().unwrap().clone();
    let res = app
        .client
        .post(app.url("/dev/outbox/test-email"))
        .header("x-csrf-token", csrf)
        .header("content-type", "application/json")
        .body("{\"to\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("the form could not be read"), "{body}");
}

#[tokio::test]
async fn a_malformed_id_in_the_path_is_a_404() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    assert_eq!(app.get("/dev/outbox/not-a-uuid/html").await.status(), 404);
}

#[tokio::test]
async fn the_landing_page_explains_the_portal() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("Network connectivity, without the ticket queue"));
    assert!(body.contains(concat!("Switchboard ", env!("CARGO_PKG_VERSION"))));
    // No inline script: the CSP would block it.
    assert!(!body.contains("<script>"));
    assert!(body.contains(r#"<script src="/static/htmx.min.js"#));
    let htmx = app.get("/static/htmx.min.js").await;
    assert_eq!(htmx.status(), 200);
    assert!(htmx.text().await.unwrap().contains(r#"version:"2.0"#));
}

/// A script that calls the API without a token, or with a bad one, is told to
/// authenticate: 401 with `WWW-Authenticate: Bearer`, never the CSRF message
/// meant for stale forms.
#[tokio::test]
async fn api_calls_without_a_valid_token_get_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let calls = [
        client
            .post(app.url("/api/v1/pools"))
            .json(&serde_json::json!({"name": "x"})),
        client.delete(app.url("/api/v1/tokens/00000000-0000-0000-0000-000000000000")),
        client.get(app.url("/api/v1/me")),
        client
            .post(app.url("/api/v1/pools"))
            .bearer_auth("sbp_not_a_real_token")
            .json(&serde_json::json!({"name": "x"})),
    ];
    for call in calls {
        let res = call.send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"switchboard\""
        );
        let problem: serde_json::Value = res.json().await.unwrap();
        assert!(
            !problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("stale"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn a_known_address_asked_with_another_method_says_which_it_takes() {
    let app = spawn_app().await;
    let token = app.token("root@example.test", true).await;
    let res = app
        .client
        .request(reqwest::Method::PATCH, app.url("/api/v1/pools"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("GET, POST"),
        "{body}"
    );
    let res = app
        .client
        .request(
            reqwest::Method::PUT,
            app.url("/api/v1/connections/4b0c1c8a-0000-4000-8000-000000000000"),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "DELETE, GET");
    // A fixed address says what it takes, not what an id in its place would.
    let res = app
        .client
        .request(reqwest::Method::PUT, app.url("/api/v1/connections/plan"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    // An address nobody serves is still a 404.
    let res = app.get("/api/v1/nothing-here").await;
    assert_eq!(res.status(), 404);
}

/// A request stuck holding a lock on a token's or a session's row (another
/// client's, or one abandoned mid-transaction) never holds up the next request
/// with the same credentials: noting "last used" skips a locked row, and the
/// database ends a transaction left idle for a minute.
#[tokio::test]
async fn a_locked_credential_row_does_not_hold_up_the_next_request() {
    let app = spawn_app().await;
    let token = app.token("root@example.test", true).await;
    let mut stuck = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE api_tokens SET last_used_at = NULL")
        .execute(&mut *stuck)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.client
            .get(format!("{}/api/v1/me", app.address))
            .bearer_auth(&token)
            .send(),
    )
    .await
    .expect("answered while another transaction holds the token's row")
    .unwrap();
    assert_eq!(answer.status(), 200, "{:?}", started.elapsed());
    let timeout: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(&mut *stuck)
        .await
        .unwrap();
    assert_eq!(
        timeout, "1min",
        "the pool's sessions end abandoned transactions"
    );
    stuck.rollback().await.unwrap();
}
