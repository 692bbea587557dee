//! Renewing a connection: the expiry email links to the renew page; a member's
//! renewal waits for a lead of her team, who approves it alone; the other
//! side's lead cannot; a lead renews at once; the accounts' maximum holds.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::connection_pages::{networks, person};
use crate::helpers::{
    Options, TestApp, api_call, eventually, maildev_messages, spawn_app_with, unique_recipient,
};

/// The first message to `to` whose subject starts with `subject`.
async fn mail_to(to: &str, subject: &str) -> serde_json::Value {
    eventually(Duration::from_secs(20), subject, || async {
        maildev_messages(to).await.into_iter().find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with(subject))
        })
    })
    .await
}

/// The page at `path` as `person` sees it.
async fn page_of(person: &reqwest::Client, app: &TestApp, path: &str) -> String {
    person
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The path of the first link in `text` that ends with `suffix`.
fn link_ending(text: &str, suffix: &str) -> String {
    let word = text
        .split_whitespace()
        .find(|w| w.starts_with("http") && w.ends_with(suffix))
        .unwrap_or_else(|| panic!("no link ending {suffix} in {text}"));
    url::Url::parse(word).unwrap().path().to_owned()
}

#[tokio::test]
async fn a_member_renews_from_the_expiry_email_and_her_lead_approves_it_alone() {
    let app = spawn_app_with(Options {
        smtp: true,
        ..Options::default()
    })
    .await;
    let n = networks(&app).await;
    let (rita_email, lena_email, sam_email) = (
        format!("rita-{}", unique_recipient()),
        format!("lena-{}", unique_recipient()),
        format!("sam-{}", unique_recipient()),
    );
    let (rita, rita_csrf) = person(&app, &rita_email, "payments", "member").await;
    let (lena, lena_csrf) = person(&app, &lena_email, "payments", "lead").await;
    let (sam, sam_csrf) = person(&app, &sam_email, "search", "lead").await;

    // Rita asks for payments ↔ search for 12 hours; both leads approve.
    let res = rita
        .post(app.url("/connections"))
        .form(&[
            ("csrf_token", rita_csrf.as_str()),
            ("kind", "network-to-network"),
            ("source_network_id", &n.payments),
            ("destination_network_id", &n.search),
            ("protocol", "tcp"),
            ("ports", "443"),
            ("reason", "load test this week"),
            ("expires_in_hours", "12"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let page = res.headers()["location"].to_str().unwrap().to_owned();
    let id = page.strip_prefix("/connections/").unwrap().to_owned();
    for (lead, csrf) in [(&lena, &lena_csrf), (&sam, &sam_csrf)] {
        let res = lead
            .post(app.url(&format!("{page}/approve")))
            .form(&[("csrf_token", csrf.as_str()), ("comment", "ok")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
    }
    let expiry = || async {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
            "SELECT expires_at FROM connections WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let first = expiry().await;

    // The reminder the scheduler sends carries the link to renew. (The sweep
    // skips a connection the workers hold locked while they build it, and
    // reminds it on a later sweep: sweep until it is reminded.)
    eventually(Duration::from_secs(20), "the reminder sweep", || async {
        let reminded = switchboard::services::connections::remind_expiring(&app.ctx)
            .await
            .unwrap();
        (reminded == 1).then_some(())
    })
    .await;
    let reminder = mail_to(&rita_email, "Expires soon").await;
    let renew = link_ending(reminder["text"].as_str().unwrap(), "/renew");
    assert_eq!(renew, format!("{page}/renew"));

    // More than the accounts allow is refused at its field, nothing changes.
    let res = rita
        .post(app.url(&renew))
        .form(&[("csrf_token", rita_csrf.as_str()), ("days", "200")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("90 days, the most its provider accounts allow"),
        "{body}"
    );
    assert!(body.contains(r#"name="days" value="200""#), "{body}");
    assert_eq!(expiry().await, first);

    // Rita is no lead: her renewal waits, and Lena (her team's lead) is emailed.
    let res = rita
        .post(app.url(&renew))
        .form(&[
            ("csrf_token", rita_csrf.as_str()),
            ("days", "30"),
            ("comment", "the load test moved"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        expiry().await,
        first,
        "nothing changes before a lead decides"
    );
    let asked = mail_to(&lena_email, "Renewal to decide").await;
    let text = asked["text"].as_str().unwrap();
    assert!(
        text.contains("asks to keep this connection until"),
        "{text}"
    );
    assert_eq!(link_ending(text, "/renew"), renew);
    assert!(
        maildev_messages(&sam_email)
            .await
            .iter()
            .all(|m| !m["subject"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Renewal")),
        "the other side's lead is not asked"
    );

    // Lena finds it on her home page and in her approvals; Sam does not.
    for path in ["/", "/approvals"] {
        let lena_sees = page_of(&lena, &app, path).await;
        assert!(
            lena_sees.contains(&format!("href=\"{renew}\"")),
            "{path}: {lena_sees}"
        );
        let sam_sees = page_of(&sam, &app, path).await;
        assert!(
            !sam_sees.contains(&format!("href=\"{renew}\"")),
            "{path}: {sam_sees}"
        );
    }

    // Sam leads the other side: he may not decide; Lena approves from the page.
    let lena_page = page_of(&lena, &app, &renew).await;
    assert!(lena_page.contains("id=\"pending-renewal\""), "{lena_page}");
    assert!(lena_page.contains("the load test moved"), "{lena_page}");
    let approve = lena_page
        .split("action=\"")
        .find_map(|s| {
            s.split('"')
                .next()
                .filter(|a| a.ends_with("/approve") && a.starts_with("/renewals/"))
        })
        .unwrap()
        .to_owned();
    let sam_page = page_of(&sam, &app, &renew).await;
    assert!(
        !sam_page.contains(&approve),
        "the page offers Sam nothing to decide"
    );
    let res = sam
        .post(app.url(&approve))
        .form(&[("csrf_token", sam_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = lena
        .post(app.url(&approve))
        .form(&[("csrf_token", lena_csrf.as_str()), ("comment", "fine")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let renewed = expiry().await;
    let in_30_days = chrono::Utc::now() + chrono::Duration::days(30);
    assert!(
        (renewed - in_30_days).num_minutes().abs() < 5,
        "{renewed} is 30 days from now"
    );
    let told = mail_to(&rita_email, "Renewed").await;
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .contains("The renewal was approved")
    );
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE object_id = $1 ORDER BY id")
            .bind(&id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(audit.contains(&"renewal.asked".to_owned()), "{audit:?}");
    assert!(
        audit.contains(&"connection.renewed".to_owned()),
        "{audit:?}"
    );

    // Deciding twice is a conflict, said on the page.
    let res = lena
        .post(app.url(&approve))
        .form(&[("csrf_token", lena_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // A lead renews at once, within an account's lower maximum (through the API).
    sqlx::query(
        "UPDATE provider_accounts SET settings = settings || '{\"renewal_max_days\": \"45\"}'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let token = app.token(&lena_email, false).await;
    let (status, refused) = api_call(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/connections/{id}/renewals"),
        Some(json!({"expires_in_hours": 60 * 24})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["errors"][0]["field"], "expires_in_hours",
        "{refused}"
    );
    assert!(refused.to_string().contains("45 days"), "{refused}");
    let (status, done) = api_call(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/connections/{id}/renewals"),
        Some(json!({"expires_in_hours": 40 * 24})),
    )
    .await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["status"], "approved", "{done}");
    assert!(expiry().await > renewed);
    let (_, history) = api_call(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/connections/{id}/renewals"),
        None,
    )
    .await;
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history[0]["status"], "approved");
    assert_eq!(
        history[1]["decided_by"],
        lena_email.split('@').next().unwrap()
    );
}
