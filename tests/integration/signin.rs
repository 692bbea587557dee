//! Sign-in through a real OpenID Connect provider (oidc-provider on loopback).

use crate::helpers::{Options, TestApp, set_idp_groups, spawn_app_with};

async fn oidc_app() -> TestApp {
    spawn_app_with(Options {
        oidc: true,
        ..Options::default()
    })
    .await
}

/// A login name no other test uses (the provider is shared).
fn unique_login(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

async fn me_json(app: &TestApp) -> serde_json::Value {
    let res = app.get("/api/v1/me").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn signing_in_through_the_provider_creates_the_user_with_their_teams() {
    let app = oidc_app().await;
    let login = unique_login("alice");
    set_idp_groups(&login, &["payments:lead", "ledger", "other-app-group!"]).await;
    app.sign_in_oidc(&login).await;

    let me = me_json(&app).await;
    assert_eq!(me["email"], format!("{login}@example.test"));
    assert_eq!(me["is_admin"], false);
    assert_eq!(
        me["teams"],
        serde_json::json!([{"slug": "ledger", "role": "member"}, {"slug": "payments", "role": "lead"}])
    );
    let page = app.get("/me").await.text().await.unwrap();
    assert!(page.contains("payments") && page.contains("lead"));
    // The development sign-in cannot be used while a provider is configured.
    assert_eq!(app.get("/auth/dev").await.status(), 404);
    let landing = app.get("/").await.text().await.unwrap();
    assert!(!landing.contains("development sign-in"));
}

#[tokio::test]
async fn groups_are_synced_again_at_the_next_sign_in() {
    let app = oidc_app().await;
    let login = unique_login("bob");
    set_idp_groups(&login, &["payments"]).await;
    app.sign_in_oidc(&login).await;
    assert_eq!(
        me_json(&app).await["teams"],
        serde_json::json!([{"slug": "payments", "role": "member"}])
    );

    set_idp_groups(&login, &["ledger:lead", "switchboard-admins"]).await;
    let res = app.post_form("/auth/logout", &[]).await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("/session/end"),
        "sign-out continues at the provider: {location}"
    );
    assert_eq!(
        app.get("/api/v1/me").await.status(),
        401,
        "the session has ended"
    );

    app.sign_in_oidc(&login).await;
    let me = me_json(&app).await;
    assert_eq!(
        me["teams"],
        serde_json::json!([{"slug": "ledger", "role": "lead"}])
    );
    assert_eq!(me["is_admin"], true);
}

#[tokio::test]
async fn a_tampered_state_is_refused_and_signs_nobody_in() {
    let app = oidc_app().await;
    let callback = app.oidc_until_callback(&unique_login("mallory")).await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let res = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("invalid, expired or was already used")
    );
    assert_eq!(app.get("/api/v1/me").await.status(), 401);
}

#[tokio::test]
async fn a_replayed_callback_and_a_replayed_code_are_refused() {
    let app = oidc_app().await;
    let login = unique_login("carol");
    let first = app.oidc_until_callback(&login).await;
    assert_eq!(app.client.get(&first).send().await.unwrap().status(), 303);
    // The same callback again: its state was used up.
    let again = app.client.get(&first).send().await.unwrap();
    assert_eq!(again.status(), 400);

    // The old code with a fresh, valid state: the provider refuses the used code.
    let second = app.oidc_until_callback(&login).await;
    let fresh_state = url::Url::parse(&second)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let old_code = url::Url::parse(&first)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let forged = format!(
        "{}?code={old_code}&state={fresh_state}",
        app.url("/auth/callback")
    );
    let res = app.client.get(&forged).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("did not accept the sign-in code")
    );
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let app = oidc_app().await;
    let callback = app.oidc_until_callback(&unique_login("nonce")).await;
    // The session now expects a different nonce than the one in the ID token.
    sqlx::query("UPDATE sessions SET login_nonce = 'not-the-nonce' WHERE login_state IS NOT NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = app.client.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("the ID token could not be verified")
    );
    assert_eq!(app.get("/api/v1/me").await.status(), 401);
}

#[tokio::test]
async fn the_provider_saying_no_is_explained() {
    let app = oidc_app().await;
    let res = app
        .get("/auth/callback?error=access_denied&error_description=User%20cancelled")
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("access_denied: User cancelled")
    );
}

#[tokio::test]
async fn pages_send_strangers_to_sign_in_and_back() {
    let app = oidc_app().await;
    let res = app.get("/teams").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/login?next=%2Fteams");
    let res = app.get("/auth/login?next=%2Fteams").await;
    assert_eq!(res.status(), 303);
    let idp = res.headers()["location"].to_str().unwrap();
    assert!(idp.contains("code_challenge_method=S256"), "{idp}");
    assert!(idp.contains("nonce="), "{idp}");
    // Open redirects are refused: only paths on this portal.
    sqlx::query("SELECT 1").execute(&app.pool).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT login_return_to FROM sessions WHERE login_return_to IS NOT NULL",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, vec!["/teams".to_string()]);
    app.get("/auth/login?next=https%3A%2F%2Fevil.example").await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT login_return_to FROM sessions WHERE login_return_to IS NOT NULL ORDER BY created_at DESC LIMIT 1")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, vec!["/me".to_string()]);
}

#[tokio::test]
async fn nothing_secret_is_stored_in_plain_text() {
    let app = oidc_app().await;
    app.sign_in_oidc(&unique_login("dora")).await;
    // Sessions are stored by hash, never by the cookie value.
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(hashes.iter().all(|h| h.len() == 32));
    let csrf = app.csrf.lock().unwrap().clone();
    let res = app
        .client
        .post(app.url("/api/v1/tokens"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let secret = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dump: String =
        sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM api_tokens) t")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !dump.contains(&secret[4..]),
        "the token secret is not in the database"
    );
    let audit: String =
        sqlx::query_scalar("SELECT string_agg(details::text, ' ') FROM audit_events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!audit.contains(&secret[4..]));
}
