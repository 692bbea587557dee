//! The connection pages over HTTP: the request form, its live plan preview, the
//! approval queue's htmx rows, and refusals said on the page.

use reqwest::Method;
use serde_json::json;
use switchboard::domain::team::TeamSlug;

use crate::helpers::{TestApp, api_call, dev_sign_in, spawn_app};

/// Networks in one sandbox account, made by an admin through the API:
/// payments 10.1.0.0/16 and search 10.2.0.0/16 in the address space `corp`, and
/// billing 10.1.128.0/20 in `acquired` (another company's space), overlapping payments'.
pub struct Networks {
    pub payments: String,
    pub search: String,
    pub billing: String,
}

pub async fn networks(app: &TestApp) -> Networks {
    let admin = app.token("root@example.test", true).await;
    let (status, account) = api_call(
        app,
        &admin,
        Method::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "sandbox", "name": "demo", "regions": ["local"]})),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let mut spaces = Vec::new();
    for name in ["corp", "acquired"] {
        let (status, space) = api_call(
            app,
            &admin,
            Method::POST,
            "/api/v1/pools",
            Some(json!({"name": name, "cidr": "10.0.0.0/8"})),
        )
        .await;
        assert_eq!(status, 201, "{space}");
        spaces.push(space["id"].clone());
    }
    let mut conn = app.pool.acquire().await.unwrap();
    let mut ids = Vec::new();
    for (team, cidr, space) in [
        ("payments", "10.1.0.0/16", &spaces[0]),
        ("search", "10.2.0.0/16", &spaces[0]),
        ("billing", "10.1.128.0/20", &spaces[1]),
    ] {
        // The team exists before its network; people join it when they sign in.
        switchboard::store::teams::ensure(&mut conn, &TeamSlug::parse(team).unwrap(), team)
            .await
            .unwrap();
        let (status, net) = api_call(
            app,
            &admin,
            Method::POST,
            "/api/v1/networks",
            Some(json!({"name": format!("{team}-prod"), "team": team, "provider_account_id": account["id"],
                        "region": "local", "cidr": cidr, "pool_id": space})),
        )
        .await;
        assert_eq!(status, 201, "{net}");
        ids.push(net["id"].as_str().unwrap().to_owned());
    }
    Networks {
        payments: ids[0].clone(),
        search: ids[1].clone(),
        billing: ids[2].clone(),
    }
}

/// A browser of its own (cookies, no redirects followed), signed in; and its CSRF token.
pub async fn person(
    app: &TestApp,
    email: &str,
    team: &str,
    role: &str,
) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let name = email.split('@').next().unwrap();
    let csrf = dev_sign_in(
        &client,
        &app.address,
        &[
            ("email", email),
            ("name", name),
            ("team", team),
            ("role", role),
        ],
    )
    .await;
    (client, csrf)
}

async fn connections(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM connections")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Rita (payments) asks for payments ↔ search through the form; the request's id.
async fn request(app: &TestApp, n: &Networks) -> (reqwest::Client, String, String) {
    let (rita, csrf) = person(app, "rita@example.test", "payments", "member").await;
    let res = rita
        .post(app.url("/connections"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("kind", "network-to-network"),
            ("source_network_id", &n.payments),
            ("destination_network_id", &n.search),
            ("protocol", "tcp"),
            ("ports", "443"),
            ("reason", "checkout calls search"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/connections/").unwrap().to_owned();
    (rita, csrf, id)
}

#[tokio::test]
async fn the_form_comes_back_with_field_errors_and_nothing_is_saved() {
    let app = spawn_app().await;
    let n = networks(&app).await;
    let (rita, csrf) = person(&app, "rita@example.test", "payments", "member").await;
    let res = rita
        .post(app.url("/connections"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("kind", "network-to-network"),
            ("source_network_id", &n.payments),
            ("destination_network_id", &n.search),
            ("ports", "443"),
            ("expires_in_hours", "soon"),
            ("reason", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    // The form's own parse error and the service's, at once: summed up at the
    // top by the fields' labels, each again at its field.
    assert!(page.contains("2 things to correct"), "{page}");
    assert!(
        page.contains(
            "<a href=\"#c-expires\">Remove after</a>: must be a whole number of hours such as 24"
        ),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"#c-reason\">Why is it needed</a>: is required: say why"),
        "{page}"
    );
    assert!(
        page.contains("<p class=\"field-error\" id=\"c-reason-error\">is required: say why"),
        "{page}"
    );
    assert!(
        page.contains(r#"id="c-expires" aria-invalid="true" aria-describedby="c-expires-error""#),
        "{page}"
    );
    assert!(
        !page.contains("expires_in_hours:"),
        "no internal names: {page}"
    );
    // What was typed is still there.
    assert!(page.contains("<h1>New request</h1>"));
    assert!(page.contains(r#"name="ports" value="443""#), "{page}");
    assert!(
        page.contains(r#"name="expires_in_hours" value="soon""#),
        "{page}"
    );
    assert!(
        page.contains(&format!(r#"<option value="{}" selected>"#, n.search)),
        "{page}"
    );
    assert_eq!(connections(&app).await, 0);
}

#[tokio::test]
async fn the_preview_shows_the_plan_or_why_there_is_none() {
    let app = spawn_app().await;
    let n = networks(&app).await;
    let (rita, _) = person(&app, "rita@example.test", "payments", "member").await;
    let preview = |destination: &str, ports: &str| {
        rita.get(app.url("/connections/plan-preview"))
            .query(&[
                ("kind", "network-to-network"),
                ("source_network_id", n.payments.as_str()),
                ("destination_network_id", destination),
                ("ports", ports),
                ("reason", ""),
            ])
            .header("hx-request", "true")
            .send()
    };

    // No reason yet: the plan does not depend on it.
    let res = preview(&n.search, "443").await.unwrap();
    assert_eq!(res.status(), 200);
    let part = res.text().await.unwrap();
    assert!(
        part.starts_with(r#"<div id="plan-preview""#),
        "a fragment: {part}"
    );
    assert!(part.contains("VPC peering"), "{part}");
    assert!(
        part.contains("<code>10.2.0.0/16</code>"),
        "the route: {part}"
    );
    assert!(part.contains("Plan hash <code class=\"hash\">"), "{part}");

    // An overlapping network: refused, with the reason, still a 200 for htmx.
    let res = preview(&n.billing, "443").await.unwrap();
    assert_eq!(res.status(), 200);
    let part = res.text().await.unwrap();
    assert!(
        part.contains("10.1.0.0/16 (payments-prod) overlaps 10.1.128.0/20 (billing-prod)"),
        "{part}"
    );
    assert!(!part.contains("Plan hash"), "{part}");

    // A field that does not parse is named too.
    let part = preview(&n.search, "443, http")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        part.contains("Ports: &#34;http&#34; is not a port"),
        "{part}"
    );
    assert_eq!(connections(&app).await, 0);
}

#[tokio::test]
async fn approving_your_own_request_is_explained_on_the_page() {
    let app = spawn_app().await;
    let n = networks(&app).await;
    let (rita, csrf, id) = request(&app, &n).await;
    let page = rita
        .get(app.url(&format!("/connections/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Requested: "), "the flash: {page}");
    assert!(page.contains("waiting for approval"), "{page}");
    // The page leads with where it stands: which teams' leads it waits for.
    let banner = page
        .split("id=\"banner\" role=\"status\">")
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .unwrap_or_else(|| panic!("a banner: {page}"));
    assert!(banner.starts_with("Waiting for a lead of "), "{banner}");
    assert!(
        banner.contains("payments") && banner.contains("search"),
        "{banner}"
    );
    assert!(
        !page.contains("approve-form"),
        "no approve button for the requester"
    );

    let res = rita
        .post(app.url(&format!("/connections/{id}/approve")))
        .form(&[("csrf_token", csrf.as_str()), ("comment", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "a refusal, shown on the request page itself"
    );
    assert_eq!(
        res.headers()["hx-push-url"].to_str().unwrap(),
        format!("/connections/{id}")
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("flash-error"), "{page}");
    assert!(
        page.contains("you requested this connection, so you cannot approve it"),
        "{page}"
    );
    assert!(page.contains(r#"id="timeline""#), "{page}");
    let status: String = sqlx::query_scalar("SELECT status FROM connections")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "pending_approval");
}

#[tokio::test]
async fn leads_decide_from_the_queue_and_the_request_page_shows_it() {
    let app = spawn_app().await;
    let n = networks(&app).await;
    let (rita, _, id) = request(&app, &n).await;
    let (paula, paula_csrf) = person(&app, "paula@example.test", "payments", "lead").await;
    let (sam, sam_csrf) = person(&app, "sam@example.test", "search", "lead").await;

    let queue = paula
        .get(app.url("/approvals"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        queue.contains(&format!(r#"<tr id="approval-{id}">"#)),
        "{queue}"
    );
    assert!(queue.contains("checkout calls search"), "{queue}");
    let hash: String = sqlx::query_scalar("SELECT plan_hash FROM connections")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(queue.contains(&hash), "the hash approved is the hash shown");

    // The queue's htmx button: the row comes back, decided.
    let res = paula
        .post(app.url(&format!("/connections/{id}/approve")))
        .header("hx-request", "true")
        .header("x-csrf-token", &paula_csrf)
        .form(&[("plan_hash", hash.as_str()), ("comment", "ok for payments")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let row = res.text().await.unwrap();
    assert!(
        row.starts_with(&format!(r#"<tr id="approval-{id}">"#)),
        "{row}"
    );
    assert!(row.contains(">Approved</strong>"), "{row}");
    let queue = paula
        .get(app.url("/approvals"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(queue.contains("Nothing is waiting for you."), "{queue}");

    // Rejecting without a comment: the row says why and keeps its buttons.
    let res = sam
        .post(app.url(&format!("/connections/{id}/reject")))
        .header("hx-request", "true")
        .header("x-csrf-token", &sam_csrf)
        .form(&[("comment", " ")])
        .send()
        .await
        .unwrap();
    // htmx gets the row saying why as a page (200: no failed request in
    // the browser's console); a plain form or a script gets the 422 itself.
    assert_eq!(res.status(), 200, "htmx swaps the refusal in");
    let row = res.text().await.unwrap();
    assert!(row.contains("comment: is required"), "{row}");
    assert!(row.contains(">Reject</button>"), "{row}");

    // The plain form on the request page: a redirect back with a message.
    let res = sam
        .post(app.url(&format!("/connections/{id}/approve")))
        .form(&[
            ("csrf_token", sam_csrf.as_str()),
            ("plan_hash", hash.as_str()),
            ("comment", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("/connections/{id}")
    );
    let page = rita
        .get(app.url(&format!("/connections/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Approved (or already further along, once provisioning picks it up).
    assert!(!page.contains("status-pending_approval"), "{page}");
    assert!(!page.contains("Waiting for a lead of"), "{page}");
    assert_eq!(
        page.matches(r#"class="badge decision-approved""#).count(),
        2,
        "{page}"
    );
    assert!(page.contains("ok for payments"), "{page}");
    assert_eq!(
        page.matches("<strong class=\"what\">approved</strong>")
            .count(),
        2,
        "{page}"
    );
    // The timeline reads as words: the approved plan by the start of its hash.
    let short = regex_lite::Regex::new(r"<dt>plan hash</dt><dd>(v2:)?[0-9a-f]{12}…</dd>").unwrap();
    assert!(short.find_iter(&page).count() >= 2, "{page}");
    let full = regex_lite::Regex::new(r"<dd>[^<]*[0-9a-f]{64}").unwrap();
    assert!(
        !full.is_match(&page),
        "no full hash in the timeline: {page}"
    );

    // Someone of neither team finds nothing there.
    let (olga, _) = person(&app, "olga@example.test", "ledger", "lead").await;
    let res = olga
        .get(app.url(&format!("/connections/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
