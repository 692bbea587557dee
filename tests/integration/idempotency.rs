//! A creating request retried with the same `Idempotency-Key` makes nothing
//! twice, even when the retries arrive all at once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::{World, world};
use crate::helpers::spawn_app;

async fn post_with_key(
    w: &World,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let res = w
        .app
        .client
        .post(w.app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn ask(w: &World, reason: &str) -> Value {
    json!({"kind": "network-to-network", "reason": reason,
           "source_network_id": w.payments_net, "destination_network_id": w.search_net,
           "protocol": "tcp", "ports": "443"})
}

#[tokio::test]
async fn a_retried_connection_request_is_answered_with_the_first_one() {
    let w = world(spawn_app().await).await;
    let body = ask(&w, "payments calls search");
    let (status, first) =
        post_with_key(&w, &w.requester, "/api/v1/connections", "retry-1", &body).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) =
        post_with_key(&w, &w.requester, "/api/v1/connections", "retry-1", &body).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(w.count("connections").await, 1);
    // The leads were asked once.
    assert_eq!(
        w.count("audit_events WHERE action = 'connection.requested'")
            .await,
        1
    );

    // The same key for another request is refused and makes nothing.
    let (status, refused) = post_with_key(
        &w,
        &w.requester,
        "/api/v1/connections",
        "retry-1",
        &ask(&w, "something else"),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{refused}"
    );
    assert_eq!(w.count("connections").await, 1);

    // Keys are each caller's own: another person's same key makes their own.
    let (status, theirs) = post_with_key(
        &w,
        &w.payments_lead,
        "/api/v1/connections",
        "retry-1",
        &body,
    )
    .await;
    assert_eq!(status, 201, "{theirs}");
    assert_ne!(theirs["id"], first["id"]);

    // A key that is not a key is named.
    let (status, bad) = post_with_key(&w, &w.requester, "/api/v1/connections", "", &body).await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["errors"][0]["field"], "Idempotency-Key", "{bad}");
}

#[tokio::test]
async fn sixteen_simultaneous_retries_make_one_connection() {
    let w = world(spawn_app().await).await;
    let body = ask(&w, "payments calls search");
    let answers = futures::future::join_all(
        (0..16).map(|_| post_with_key(&w, &w.requester, "/api/v1/connections", "burst", &body)),
    )
    .await;
    assert_eq!(w.count("connections").await, 1, "{answers:?}");
    let made: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, c)| &c["id"])
        .collect();
    assert!(!made.is_empty(), "{answers:?}");
    assert!(made.iter().all(|id| *id == made[0]), "{answers:?}");
    // Those that met the first one under way were told to retry, and a
    // retry now gets the connection.
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 201 || *status == 409),
        "{answers:?}"
    );
    let (status, after) =
        post_with_key(&w, &w.requester, "/api/v1/connections", "burst", &body).await;
    assert_eq!((status, &after["id"]), (201, made[0]));
}

#[tokio::test]
async fn networks_pools_and_tokens_honour_the_key() {
    let w = world(spawn_app().await).await;
    let admin = w.app.token("root@example.test", true).await;
    let pool = json!({"name": "lab", "cidr": "172.16.0.0/12", "parent_id": null});
    let (s1, p1) = post_with_key(&w, &admin, "/api/v1/pools", "pool-1", &pool).await;
    let (s2, p2) = post_with_key(&w, &admin, "/api/v1/pools", "pool-1", &pool).await;
    assert_eq!((s1, s2), (201, 201), "{p1} {p2}");
    assert_eq!(p1["id"], p2["id"]);

    let (_, payments) = w
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/networks/{}", w.payments_net),
            None,
        )
        .await;
    let network = json!({"name": "payments-extra", "team": "payments",
                         "provider_account_id": payments["provider_account_id"],
                         "region": payments["region"], "cidr": "172.16.5.0/24"});
    let (s1, n1) = post_with_key(&w, &admin, "/api/v1/networks", "net-1", &network).await;
    let (s2, n2) = post_with_key(&w, &admin, "/api/v1/networks", "net-1", &network).await;
    assert_eq!((s1, s2), (201, 201), "{n1} {n2}");
    assert_eq!(n1["id"], n2["id"]);

    let token = json!({"name": "ci"});
    let (s1, t1) = post_with_key(&w, &w.requester, "/api/v1/tokens", "tok-1", &token).await;
    assert_eq!(s1, 201, "{t1}");
    let (s2, t2) = post_with_key(&w, &w.requester, "/api/v1/tokens", "tok-1", &token).await;
    assert_eq!(s2, 409, "{t2}");
    let detail = t2["detail"].as_str().unwrap();
    assert!(detail.contains(t1["id"].as_str().unwrap()), "{detail}");
    assert!(
        !detail.contains(t1["token"].as_str().unwrap()),
        "the secret is never repeated"
    );
    let (_, mine) = w
        .call(&w.requester, Method::GET, "/api/v1/tokens", None)
        .await;
    assert_eq!(
        mine.as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] == "ci")
            .count(),
        1
    );
}
