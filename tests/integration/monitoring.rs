//! The monitor, end to end with the interval set to one second: something
//! changed behind Switchboard's back becomes a drift episode with the difference
//! in plain words, emailed once to the owners; a repair (by hand or automatic)
//! ends it and they hear of that too. A provider that cannot be asked is
//! `unknown`, not drift. Several worker processes make one sweep and one email.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::connections::{World, world, world_on};
use crate::helpers::{Options, eventually, maildev_messages, spawn_app_with};
use crate::moto;
use crate::provisioning::{approve_both, repair_now, until_status};

fn monitored() -> Options {
    Options {
        smtp: true,
        scheduler: true,
        env: vec![("SWITCHBOARD_MONITOR_INTERVAL", "1".into())],
        ..Options::default()
    }
}

/// Payments' and search's networks as two new VPCs in moto (10.1.0.0/16 and
/// 10.2.0.0/16), their account with `settings`, the monitor every second.
async fn aws_world(settings: Value) -> (World, aws_sdk_ec2::Client, String, String) {
    let ec2 = moto::ec2("us-east-1");
    let (a, b) = (
        moto::vpc(&ec2, "10.1.0.0/16").await,
        moto::vpc(&ec2, "10.2.0.0/16").await,
    );
    let w = world_on(
        spawn_app_with(monitored()).await,
        moto::account("cloud", settings),
        |account| {
            [("payments", "10.1.0.0/16", &a), ("search", "10.2.0.0/16", &b)].map(
                |(team, cidr, vpc)| {
                    json!({"name": format!("{team}-prod"), "team": team, "provider_account_id": account["id"],
                           "region": "us-east-1", "cidr": cidr, "external_id": vpc})
                },
            )
        },
    )
    .await;
    (w, ec2, a, b)
}

/// An active connection of the world.
async fn active(w: &World) -> String {
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    approve_both(w, &id).await;
    until_status(w, &id, "active").await;
    id
}

async fn emails(to: &str, subject_starts: &str) -> Vec<Value> {
    maildev_messages(to)
        .await
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with(subject_starts))
        })
        .collect()
}

async fn connection(w: &World, id: &str) -> Value {
    w.call(
        &w.requester,
        Method::GET,
        &format!("/api/v1/connections/{id}"),
        None,
    )
    .await
    .1
}

#[tokio::test]
async fn a_sandbox_change_is_emailed_once_and_a_repair_ends_it() {
    let w = world(spawn_app_with(monitored()).await).await;
    let id = active(&w).await;
    let admin = w.app.token("root@example.test", true).await;
    let (_, resources) = w
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/sandbox/resources?connection_id={id}"),
            None,
        )
        .await;
    let route = resources
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "route")
        .unwrap()
        .clone();
    let (status, _) = w
        .call(
            &admin,
            Method::DELETE,
            &format!(
                "/api/v1/sandbox/resources/{}",
                route["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let changed = std::time::Instant::now();

    // The owners hear of it within two intervals (plus delivery), with the difference.
    let lead = w.payments_lead_email.clone();
    let mail = eventually(Duration::from_secs(15), "the drift email", || async {
        emails(&lead, "Drifted:").await.into_iter().next()
    })
    .await;
    let text = mail["text"].as_str().unwrap();
    let missing = format!("route {} is missing", route["name"].as_str().unwrap());
    assert!(text.contains(&missing), "{text}");
    assert!(text.contains(&format!("/connections/{id}")), "{text}");
    eprintln!("drift to inbox: {:?}", changed.elapsed());
    let c = connection(&w, &id).await;
    assert_eq!(c["status"], "drifted");
    assert_eq!(c["observed"]["state"], "differs");
    assert!(
        c["observed"]["details"][0]
            .as_str()
            .unwrap()
            .contains("is missing")
    );

    // One email per episode, however many sweeps see it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(emails(&lead, "Drifted:").await.len(), 1);
    assert_eq!(
        emails(&w.search_lead_email, "Drifted:").await.len(),
        1,
        "both sides' leads hear of it"
    );

    // The requester may not repair; a lead may.
    let (status, _) = w
        .call(
            &w.requester,
            Method::POST,
            &format!("/api/v1/connections/{id}/repair"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    repair_now(&w, &w.payments_lead, &id).await;
    until_status(&w, &id, "active").await;
    let mail = eventually(Duration::from_secs(15), "the recovery email", || async {
        emails(&lead, "Recovered:").await.into_iter().next()
    })
    .await;
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("Repaired by Switchboard; it differed for"),
        "{mail}"
    );
    let (_, history) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}/drift"),
            None,
        )
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["closed_as"], "repaired");
    assert!(
        history[0]["differences"][0]
            .as_str()
            .unwrap()
            .contains("is missing")
    );

    // The page shows the history.
    w.app
        .sign_in_dev(&w.payments_lead_email, "payments", "lead", false)
        .await;
    let page = w
        .app
        .get(&format!("/connections/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Drift history"), "{page}");
    assert!(page.contains("matches the plan"), "{page}");
}

#[tokio::test]
async fn a_route_deleted_in_aws_is_repaired_automatically_and_both_emails_follow() {
    let (w, ec2, a, _) = aws_world(json!({"repair": "auto"})).await;
    let id = active(&w).await;
    let tables = ec2
        .describe_route_tables()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&a)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let table = tables.route_tables()[0]
        .route_table_id()
        .unwrap()
        .to_owned();
    ec2.delete_route()
        .route_table_id(&table)
        .destination_cidr_block("10.2.0.0/16")
        .send()
        .await
        .unwrap();

    let lead = w.payments_lead_email.clone();
    let mail = eventually(Duration::from_secs(20), "the drift email", || async {
        emails(&lead, "Drifted:").await.into_iter().next()
    })
    .await;
    let text = mail["text"].as_str().unwrap();
    assert!(
        text.contains("route 10.2.0.0/16 → pcx-")
            && text.contains(&format!("missing from {table}")),
        "{text}"
    );
    // Repaired without anyone asking: the route is back and the owners hear of it.
    let mail = eventually(Duration::from_secs(20), "the recovery email", || async {
        emails(&lead, "Recovered:").await.into_iter().next()
    })
    .await;
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("Repaired by Switchboard")
    );
    assert_eq!(moto::routes_to(&ec2, &a, "10.2.0.0/16").await.len(), 1);
    assert_eq!(connection(&w, &id).await["status"], "active");
    assert_eq!(emails(&lead, "Drifted:").await.len(), 1);
}

/// AWS sends no packet for Switchboard: the approved traffic is followed
/// through what the region says carries it. Two changes made by hand that
/// leave every item of the connection as built (a network ACL rule denying the
/// port, a more specific route elsewhere) make it unreachable, named; taking
/// each away makes it verified again.
#[tokio::test]
async fn a_path_blocked_in_aws_outside_the_connection_is_unreachable_and_named() {
    let (w, ec2, a, b) = aws_world(json!({})).await;
    let id = active(&w).await;
    let verified = eventually(Duration::from_secs(20), "a path check", || async {
        let c = connection(&w, &id).await;
        c["observed"]["verified_at"].is_string().then_some(c)
    })
    .await;
    let how = verified["observed"]["verified"].as_str().unwrap();
    assert!(
        how.contains("a path check in us-east-1")
            && how.contains(&a)
            && how.contains(&b)
            && how.contains("let tcp 443 through"),
        "{how}"
    );

    // A network ACL rule, made by hand, denying 443 into the search VPC.
    let acl = moto::default_acl(&ec2, &b).await;
    ec2.create_network_acl_entry()
        .network_acl_id(&acl)
        .rule_number(90)
        .protocol("6")
        .rule_action(aws_sdk_ec2::types::RuleAction::Deny)
        .egress(false)
        .cidr_block("10.1.0.0/16")
        .port_range(
            aws_sdk_ec2::types::PortRange::builder()
                .from(443)
                .to(443)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let c = until_status(&w, &id, "drifted").await;
    assert_eq!(c["observed"]["state"], "unreachable", "{c}");
    let details = c["observed"]["details"].to_string();
    assert!(
        details.contains(&format!(
            "the approved traffic does not pass: network ACL {acl} of {b} denies tcp 443 in from 10.1.0.0/16 (inbound rule 90)"
        )),
        "{c}"
    );
    let lead = w.payments_lead_email.clone();
    let mail = eventually(Duration::from_secs(20), "the drift email", || async {
        emails(&lead, "Drifted:").await.into_iter().next()
    })
    .await;
    assert!(
        mail["text"].as_str().unwrap().contains("inbound rule 90"),
        "{mail}"
    );
    ec2.delete_network_acl_entry()
        .network_acl_id(&acl)
        .rule_number(90)
        .egress(false)
        .send()
        .await
        .unwrap();
    until_status(&w, &id, "active").await;
    eventually(Duration::from_secs(20), "the recovery email", || async {
        emails(&lead, "Recovered:").await.into_iter().next()
    })
    .await;

    // A more specific route, made by hand, sending part of search's range
    // to an internet gateway: the connection's own route is untouched.
    let table = moto::route_table(&ec2, &a).await;
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&a)
        .send()
        .await
        .unwrap();
    ec2.create_route()
        .route_table_id(&table)
        .destination_cidr_block("10.2.5.0/24")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let c = until_status(&w, &id, "drifted").await;
    assert_eq!(c["observed"]["state"], "unreachable", "{c}");
    assert!(
        c["observed"]["details"].to_string().contains(&format!(
            "route 10.2.5.0/24 in {table} sends part of 10.2.0.0/16 to {igw}, not to pcx-"
        )),
        "{c}"
    );
    assert_eq!(moto::routes_to(&ec2, &a, "10.2.0.0/16").await.len(), 1);
    ec2.delete_route()
        .route_table_id(&table)
        .destination_cidr_block("10.2.5.0/24")
        .send()
        .await
        .unwrap();
    until_status(&w, &id, "active").await;
    let again = eventually(Duration::from_secs(20), "verified again", || async {
        let c = connection(&w, &id).await;
        (c["observed"]["verified_at"].as_str() > verified["observed"]["verified_at"].as_str())
            .then_some(c)
    })
    .await;
    assert_eq!(again["status"], "active");
    assert_eq!(emails(&lead, "Drifted:").await.len(), 2, "one per episode");
}

#[tokio::test]
async fn a_provider_that_cannot_be_asked_is_unknown_not_drift() {
    let w = world(spawn_app_with(monitored()).await).await;
    let id = active(&w).await;
    let admin = crate::helpers::unique_recipient();
    let _ = w.app.token(&admin, true).await;
    // The sandbox fails every call from now on, as an unreachable API would.
    sqlx::query("UPDATE provider_accounts SET settings = '{\"failure_rate\": \"1\"}'")
        .execute(&w.app.pool)
        .await
        .unwrap();
    let c = eventually(Duration::from_secs(15), "unknown", || async {
        let c = connection(&w, &id).await;
        (c["observed"]["state"] == "unknown").then_some(c)
    })
    .await;
    assert_eq!(c["status"], "active", "not drifted: {c}");
    assert!(
        c["observed"]["details"][0]
            .as_str()
            .unwrap()
            .contains("demo could not be asked"),
        "{c}"
    );
    let (_, status) = w
        .call(&w.requester, Method::GET, "/api/v1/status", None)
        .await;
    assert_eq!(status["counts"]["unknown"], 1, "{status}");
    assert_eq!(status["counts"]["active"], 0, "{status}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(emails(&w.payments_lead_email, "Drifted:").await.is_empty());
    // Still unreachable after five intervals: the admins hear of it, once.
    let mail = eventually(Duration::from_secs(15), "the admins' email", || async {
        emails(&admin, "Cannot observe demo")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert!(
        mail["text"]
            .as_str()
            .unwrap()
            .contains("the sandbox simulated an API failure"),
        "{mail}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(emails(&admin, "Cannot observe demo").await.len(), 1);
}

/// Two worker processes with the monitor: one sweep per interval, one email.
#[tokio::test]
async fn two_worker_processes_send_one_email_per_drift() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let id = active(&w).await;
    w.app.stop_workers().await;
    let env = [
        ("DATABASE_URL", w.app.db.url.clone()),
        ("SWITCHBOARD_SMTP_URL", crate::helpers::maildev_smtp()),
        ("SWITCHBOARD_MONITOR_INTERVAL", "1".to_owned()),
    ];
    let dir = std::env::temp_dir();
    let mut workers = [
        crate::processes::start(&["work"], &env, &dir),
        crate::processes::start(&["work"], &env, &dir),
    ];
    sqlx::query("DELETE FROM sandbox_resources WHERE connection_id = $1 AND kind = 'route'")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(&w.app.pool)
        .await
        .unwrap();
    let lead = w.payments_lead_email.clone();
    eventually(Duration::from_secs(20), "the drift email", || async {
        emails(&lead, "Drifted:").await.into_iter().next()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for worker in &mut workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    let drifts = emails(&lead, "Drifted:").await;
    assert_eq!(drifts.len(), 1, "one email, whatever the number of workers");
    let text = drifts[0]["text"].as_str().unwrap();
    assert!(text.contains("is missing"), "{text}");
}

/// A one-route HTTP server that records what is posted to it: (headers, body).
async fn webhook_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/network", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = text[..end].to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            let body = data[end + 4..end + 4 + length].to_vec();
                            let _ = tx.send((head, body));
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

/// A person who turned drift email off gets none; the other lead does; the
/// team's webhook gets the event, signed with its secret.
#[tokio::test]
async fn preferences_are_honoured_and_the_teams_webhook_gets_signed_events() {
    // The receiver is on loopback, over http: an admin allows exactly that.
    let secrets = std::env::temp_dir().join(format!("hooks-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&secrets).unwrap();
    let mut options = monitored();
    options.env.extend([
        ("SWITCHBOARD_WEBHOOK_ALLOW_HTTP", "1".to_owned()),
        ("SWITCHBOARD_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1".to_owned()),
        (
            "SWITCHBOARD_WEBHOOK_SECRET_DIR",
            secrets.display().to_string(),
        ),
    ]);
    let w = world(spawn_app_with(options).await).await;
    let id = active(&w).await;
    let (status, prefs) = w
        .call(
            &w.payments_lead,
            Method::PUT,
            "/api/v1/me/notifications",
            Some(json!({"drift": false})),
        )
        .await;
    assert_eq!(status, 200, "{prefs}");
    assert_eq!(
        prefs,
        json!({"approvals": true, "decisions": true, "provisioning": true, "drift": false})
    );
    let (status, body) = w
        .call(
            &w.payments_lead,
            Method::PUT,
            "/api/v1/me/notifications",
            Some(json!({"drift": "no"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("expected a boolean"),
        "{body}"
    );

    std::fs::write(secrets.join("search-hook"), "s3cret\n").unwrap();
    let (url, mut posts) = webhook_receiver().await;
    let (status, body) = w
        .call(
            &w.search_lead,
            Method::PUT,
            "/api/v1/teams/search/webhook",
            Some(json!({"url": "not a url", "secret_ref": "hunter2"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "secret_ref"]);
    let (status, _) = w
        .call(
            &w.payments_lead,
            Method::PUT,
            "/api/v1/teams/search/webhook",
            Some(json!({"url": url, "secret_ref": "file:search-hook"})),
        )
        .await;
    assert_eq!(status, 403, "a lead of another team may not");
    let (status, body) = w
        .call(
            &w.search_lead,
            Method::PUT,
            "/api/v1/teams/search/webhook",
            Some(json!({"url": url, "secret_ref": "file:search-hook"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    sqlx::query("DELETE FROM sandbox_resources WHERE connection_id = $1 AND kind = 'route'")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(&w.app.pool)
        .await
        .unwrap();
    let search_lead = w.search_lead_email.clone();
    eventually(
        Duration::from_secs(15),
        "the other lead's drift email",
        || async { emails(&search_lead, "Drifted:").await.into_iter().next() },
    )
    .await;
    let (head, body) = tokio::time::timeout(Duration::from_secs(15), posts.recv())
        .await
        .expect("the webhook is posted")
        .unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "connection.drifted");
    assert_eq!(event["team"], "search");
    assert_eq!(event["connection"]["id"], id.as_str());
    assert!(event["details"][0].as_str().unwrap().contains("is missing"));
    let expected = switchboard::notify::webhook::signature(b"s3cret", &body);
    assert!(
        head.contains(&format!("x-switchboard-signature: {expected}")),
        "{head}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        emails(&w.payments_lead_email, "Drifted:").await.is_empty(),
        "drift email was turned off"
    );
}

/// AWS that cannot be reached (the emulator gone from where the account points)
/// is unknown, not drift; the metrics say which account could not be asked.
#[tokio::test]
async fn aws_out_of_reach_is_unknown_and_the_metrics_say_so() {
    let (w, _, _, _) = aws_world(json!({})).await;
    let id = active(&w).await;
    // Nothing listens on port 9 of the loopback.
    sqlx::query(
        "UPDATE provider_accounts SET settings = jsonb_set(settings, '{endpoint_url}', '\"http://127.0.0.1:9\"')",
    )
    .execute(&w.app.pool)
    .await
    .unwrap();
    let c = eventually(Duration::from_secs(30), "unknown", || async {
        let c = connection(&w, &id).await;
        (c["observed"]["state"] == "unknown").then_some(c)
    })
    .await;
    assert_eq!(c["status"], "active", "{c}");
    assert!(
        c["observed"]["details"][0]
            .as_str()
            .unwrap()
            .contains("cloud could not be asked"),
        "{c}"
    );
    // The sweep records the connections first and its figures per account at
    // its end (what /metrics reads): wait for the gauge.
    let metrics = eventually(Duration::from_secs(10), "the unreachable gauge", || async {
        let metrics = w.app.get("/metrics").await.text().await.unwrap();
        metrics
            .contains(r#"switchboard_monitor_account_unreachable{account="cloud"} 1"#)
            .then_some(metrics)
    })
    .await;
    assert!(
        metrics.contains("switchboard_monitor_sweep_seconds"),
        "{metrics}"
    );
    assert!(emails(&w.payments_lead_email, "Drifted:").await.is_empty());
}

/// A lead may not make a webhook an oracle for the workers' secrets, nor a
/// probe of internal addresses: refused when saved, and again when sent.
#[tokio::test]
async fn webhooks_reach_neither_the_workers_secrets_nor_internal_addresses() {
    let w = world(crate::helpers::spawn_app().await).await;
    let put = |url: &str, secret_ref: &str| {
        w.call(
            &w.search_lead,
            Method::PUT,
            "/api/v1/teams/search/webhook",
            Some(json!({"url": url, "secret_ref": secret_ref})),
        )
    };
    let ok_secret = "env:SWITCHBOARD_WEBHOOK_SECRET_SEARCH";
    for (url, secret_ref, field, says) in [
        (
            "https://203.0.113.10/x",
            "env:DATABASE_URL",
            "secret_ref",
            "SWITCHBOARD_WEBHOOK_SECRET_",
        ),
        (
            "https://203.0.113.10/x",
            "env:SWITCHBOARD_SESSION_KEY",
            "secret_ref",
            "SWITCHBOARD_WEBHOOK_SECRET_",
        ),
        (
            "https://203.0.113.10/x",
            "file:/etc/passwd",
            "secret_ref",
            "file:<name>",
        ),
        (
            "https://203.0.113.10/x",
            "file:search",
            "secret_ref",
            "no SWITCHBOARD_WEBHOOK_SECRET_DIR",
        ),
        ("http://203.0.113.10/x", ok_secret, "url", "must be https"),
        (
            "https://127.0.0.1:9/x",
            ok_secret,
            "url",
            "a loopback address",
        ),
        (
            "https://localhost/x",
            ok_secret,
            "url",
            "a loopback address",
        ),
        (
            "https://169.254.169.254/latest/meta-data",
            ok_secret,
            "url",
            "link-local",
        ),
        ("https://10.0.0.1/x", ok_secret, "url", "a private address"),
        (
            "https://[::ffff:192.168.0.1]/x",
            ok_secret,
            "url",
            "a private address",
        ),
    ] {
        let (status, problem) = put(url, secret_ref).await;
        assert_eq!(status, 422, "{url} {secret_ref}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{url} {secret_ref}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{url} {secret_ref}: {problem}"
        );
    }
    let hooks: i64 = sqlx::query_scalar("SELECT count(*) FROM team_webhooks")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(hooks, 0, "nothing saved");

    // Saved while allowed, then DNS (or the allowance) changes: refused when sent.
    let allowed = switchboard::config::Settings::from_lookup(|k| match k {
        "SWITCHBOARD_WEBHOOK_ALLOWED_HOSTS" => Some("localhost".into()),
        _ => None,
    })
    .unwrap();
    let job = switchboard::domain::jobs::SendWebhook {
        url: "https://localhost:9/hook".into(),
        secret_ref: "env:SWITCHBOARD_WEBHOOK_SECRET_NOWHERE_SET".into(),
        body: json!({"event": "connection.drifted"}),
    };
    use switchboard::services::notifications::{Undelivered, deliver};
    // Allowed, but its secret is not there: not delivered, said why.
    assert!(
        matches!(deliver(&allowed, &job).await, Err(Undelivered::Refused(why)) if why.contains("is not set"))
    );
    let strict = switchboard::config::Settings::from_lookup(|_| None).unwrap();
    let job = switchboard::domain::jobs::SendWebhook {
        secret_ref: "env:PATH".into(),
        ..job
    };
    assert!(
        matches!(deliver(&strict, &job).await, Err(Undelivered::Refused(why)) if why.contains("SWITCHBOARD_WEBHOOK_SECRET_"))
    );
    let job = switchboard::domain::jobs::SendWebhook {
        secret_ref: "env:SWITCHBOARD_WEBHOOK_SECRET_SET_FOR_TEST".into(),
        ..job
    };
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("SWITCHBOARD_WEBHOOK_SECRET_SET_FOR_TEST", "x") };
    match deliver(&strict, &job).await {
        Err(Undelivered::Refused(why)) => assert!(
            why.contains("localhost resolves to 127.0.0.1, a loopback address"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

/// A connection whose stored plan cannot be read is skipped, counted and shown
/// to admins; the sweep goes on, page after page, for every other connection.
#[tokio::test]
async fn a_corrupt_plan_is_skipped_and_every_other_connection_is_still_swept() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(active(&w).await);
    }
    let uuid = |id: &String| Uuid::parse_str(id).unwrap();
    // One plan turned to nonsense, and a route of another connection deleted.
    sqlx::query("UPDATE connections SET plan = '{\"nonsense\": 1}' WHERE id = $1")
        .bind(uuid(&ids[1]))
        .execute(&w.app.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM sandbox_resources WHERE connection_id = $1 AND kind = 'route'")
        .bind(uuid(&ids[4]))
        .execute(&w.app.pool)
        .await
        .unwrap();
    // Two connections a page: the corrupt one is in an early page, the drift in the last.
    let report = switchboard::services::monitor::sweep_in_pages_of(&w.app.ctx, 2)
        .await
        .unwrap();
    assert!(!report.skipped);
    assert_eq!(
        report.observed, 4,
        "every readable connection, across three pages"
    );
    assert_eq!(report.drifted, 1);
    let (_, drifted) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{}", ids[4]),
            None,
        )
        .await;
    assert_eq!(drifted["status"], "drifted", "{drifted}");

    let metrics = w.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("switchboard_monitor_unreadable_connections 1"),
        "{metrics}"
    );
    w.app.sign_in_admin().await;
    let status = w.app.get("/status").await.text().await.unwrap();
    assert!(
        status.contains(r#"id="unreadable""#) && status.contains(&ids[1]),
        "{status}"
    );
    // A sweep right after is not run twice within an interval, nor at once by two.
    let again = switchboard::services::monitor::sweep(&w.app.ctx)
        .await
        .unwrap();
    assert!(again.skipped);
}

/// After a build and a repair, the connection is observed at once: its page
/// follows within seconds, whatever the monitor's interval.
#[tokio::test]
async fn a_repair_is_observed_at_once_not_at_the_next_sweep() {
    let w = world(
        spawn_app_with(Options {
            env: vec![("SWITCHBOARD_MONITOR_INTERVAL", "3600".into())],
            ..Options::default()
        })
        .await,
    )
    .await;
    let id = active(&w).await;
    let observed = async |id: &str| {
        let (_, c) = w
            .call(
                &w.requester,
                Method::GET,
                &format!("/api/v1/connections/{id}"),
                None,
            )
            .await;
        (
            c["status"].as_str().unwrap().to_owned(),
            c["observed"]["state"].as_str().map(str::to_owned),
        )
    };
    // Built, then observed at once.
    eventually(
        Duration::from_secs(10),
        "observed after the build",
        || async {
            (observed(&id).await == ("active".into(), Some("matches".into()))).then_some(())
        },
    )
    .await;
    sqlx::query("DELETE FROM sandbox_resources WHERE connection_id = $1 AND kind = 'route'")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(&w.app.pool)
        .await
        .unwrap();
    switchboard::services::monitor::sweep(&w.app.ctx)
        .await
        .unwrap();
    assert_eq!(
        observed(&id).await,
        ("drifted".into(), Some("differs".into()))
    );
    let asked = std::time::Instant::now();
    repair_now(&w, &w.payments_lead, &id).await;
    eventually(
        Duration::from_secs(10),
        "active and matching after the repair",
        || async {
            (observed(&id).await == ("active".into(), Some("matches".into()))).then_some(())
        },
    )
    .await;
    assert!(asked.elapsed() < Duration::from_secs(10));
}
