//! The `proxy` provider against a real Caddy and a real Redis (started by
//! tests/run): a service exposed through Caddy answers at its host name with the
//! backend's own body; a route deleted behind Switchboard's back is drift and is
//! repaired; a route change lets a request in flight finish; the Redis route
//! store refuses what Ceryx cannot route.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connections::{World, world};
use crate::helpers::{eventually, spawn_app};
use crate::provisioning::{remove_now, repair_now, until_status};

pub(crate) fn caddy_admin() -> String {
    std::env::var("CADDY_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:2019".into())
}

fn caddy_http() -> String {
    std::env::var("CADDY_HTTP_ADDRESS").unwrap_or_else(|_| "127.0.0.1:8480".into())
}

pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A host name of this test's own.
pub(crate) fn new_host() -> String {
    format!(
        "app-{}.example.test",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The routes of Caddy's `switchboard` server.
pub(crate) async fn caddy_routes() -> Vec<Value> {
    reqwest::get(format!(
        "{}/config/apps/http/servers/switchboard/routes",
        caddy_admin()
    ))
    .await
    .expect("Caddy answers (run tests/run, which starts it)")
    .json::<Value>()
    .await
    .unwrap()
    .as_array()
    .cloned()
    .unwrap_or_default()
}

/// The `@id`s of what routes `host`: its path routes, and its entry in the
/// host map that whole host names share.
pub(crate) async fn caddy_routes_for(host: &str) -> Vec<String> {
    let routes = caddy_routes().await;
    let paths = routes
        .iter()
        .filter(|r| r["match"][0]["host"] == json!([host]) && r["match"][0]["path"].is_array())
        .filter_map(|r| r["@id"].as_str());
    let handlers = routes
        .iter()
        .flat_map(|r| r["handle"].as_array().into_iter().flatten());
    let mapped = handlers
        .filter(|h| h["handler"] == "map")
        .flat_map(|h| h["mappings"].as_array().into_iter().flatten())
        .filter(|m| m["input"] == host)
        .filter_map(|m| m["@id"].as_str());
    paths.chain(mapped).map(str::to_owned).collect()
}

/// Deletes a route by hand, through Caddy's admin API.
pub(crate) async fn delete_caddy_route(id: &str) {
    let res = reqwest::Client::new()
        .delete(format!("{}/id/{id}", caddy_admin()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// What `host` answers through Caddy: status and body, or status 0 and the
/// error when the connection failed (Caddy 2.6 resets a few connections that
/// arrive at the instant of a reload).
async fn through_caddy(host: &str, path: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .get(format!("http://{}{path}", caddy_http()))
        .header("Host", host)
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    match res {
        Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// A backend on 127.0.0.1 that answers every request with `body`, after
/// `delay` for paths starting with /slow; its port.
pub(crate) async fn backend(body: &'static str, delay: Duration) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let Ok(n) = socket.read(&mut buf).await else {
                    return;
                };
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                if head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .starts_with("/slow")
                {
                    tokio::time::sleep(delay).await;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

/// A world whose payments team also has a network on loopback (127.0.0.0/16,
/// where the test backends listen) and a proxy account of `backend`; the
/// loopback network's id.
pub(crate) async fn proxy_world(settings: Value) -> (World, String) {
    let w = world(spawn_app().await).await;
    let admin = w.app.token("root@example.test", true).await;
    let (status, body) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/pools",
            Some(json!({"name": "loopback", "cidr": "127.0.0.0/8", "parent_id": null})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, accounts) = w
        .call(&admin, Method::GET, "/api/v1/provider-accounts", None)
        .await;
    let sandbox = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "sandbox")
        .unwrap()["id"]
        .clone();
    let (status, net) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/networks",
            Some(
                json!({"name": "payments-lab", "team": "payments", "provider_account_id": sandbox,
                        "region": "local", "cidr": "127.0.0.0/16"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{net}");
    let (status, account) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/provider-accounts",
            Some(json!({"kind": "proxy", "name": "edge", "regions": [], "settings": settings})),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    (w, net["id"].as_str().unwrap().to_owned())
}

pub(crate) fn caddy_settings() -> Value {
    json!({"backend": "caddy", "admin_url": caddy_admin(), "server": "switchboard", "address": "127.0.0.1"})
}

/// Settings of a Redis route store with a key prefix of its own.
pub(crate) fn redis_settings() -> (Value, String) {
    let prefix = format!("ceryx-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    (
        json!({"backend": "redis", "redis_url": redis_url(), "key_prefix": prefix, "address": "127.0.0.1"}),
        prefix,
    )
}

/// Asks to expose `host` + `path` to 127.0.0.1:`port` in the loopback network,
/// and has the payments lead approve it; the connection as asked for.
pub(crate) async fn expose(w: &World, net: &str, host: &str, path: &str, port: u16) -> Value {
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(json!({"kind": "service-exposure", "reason": "the shop", "destination_network_id": net,
                        "target_address": "127.0.0.1", "target_port": port, "hostname": host, "path": path})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    let (status, body) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &format!("/api/v1/connections/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    c
}

#[tokio::test]
async fn an_exposed_service_answers_through_caddy_and_a_deleted_route_is_drift() {
    let (w, net) = proxy_world(caddy_settings()).await;
    let port = backend("hello from payments", Duration::ZERO).await;
    let host = new_host();
    let c = expose(&w, &net, &host, "/", port).await;
    let id = c["id"].as_str().unwrap();
    let active = until_status(&w, id, "active").await;
    assert_eq!(
        (
            active["plan"]["mechanism"].as_str(),
            active["status"].as_str()
        ),
        (Some("proxy-route"), Some("active")),
        "{active}"
    );
    assert_eq!(
        through_caddy(&host, "/orders").await,
        (200, "hello from payments".to_owned())
    );
    // Another host name is not sent there (Caddy answers an unmatched request
    // with an empty body).
    assert_eq!(through_caddy(&new_host(), "/").await.1, "");

    // Deleted by hand: the monitor reports it, a repair puts it back.
    let ids = caddy_routes_for(&host).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    delete_caddy_route(&ids[0]).await;
    assert_eq!(through_caddy(&host, "/").await.1, "");
    switchboard::services::monitor::sweep(&w.app.ctx)
        .await
        .unwrap();
    let (_, drifted) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(drifted["status"], "drifted", "{drifted}");
    let (_, drift) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}/drift"),
            None,
        )
        .await;
    assert!(
        drift
            .to_string()
            .contains(&format!("proxy route {host}/ is missing from the proxy")),
        "{drift}"
    );
    repair_now(&w, &w.payments_lead, id).await;
    eventually(Duration::from_secs(20), "the route back", || async {
        (through_caddy(&host, "/").await.1 == "hello from payments").then_some(())
    })
    .await;

    // Removing the connection removes the route, and only it.
    remove_now(&w, id).await;
    assert!(caddy_routes_for(&host).await.is_empty());
}

#[tokio::test]
async fn a_route_change_lets_requests_in_flight_finish() {
    let (w, net) = proxy_world(caddy_settings()).await;
    let port = backend("slow but whole", Duration::from_secs(2)).await;
    let host = new_host();
    let first = expose(&w, &net, &host, "/", port).await;
    until_status(&w, first["id"].as_str().unwrap(), "active").await;

    let in_flight = tokio::spawn({
        let host = host.clone();
        async move { through_caddy(&host, "/slow").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Caddy reloads its configuration for the new route while the request waits.
    let other = new_host();
    let second = expose(&w, &net, &other, "/api", port).await;
    until_status(&w, second["id"].as_str().unwrap(), "active").await;
    assert!(
        !in_flight.is_finished(),
        "the change came while the request was in flight"
    );
    assert_eq!(in_flight.await.unwrap(), (200, "slow but whole".to_owned()));
    assert_eq!(through_caddy(&other, "/api/x").await.1, "slow but whole");
    // The path is honoured: the rest of that host is not routed.
    assert_eq!(through_caddy(&other, "/elsewhere").await.1, "");
}

#[tokio::test]
async fn a_host_name_routed_for_another_connection_is_refused_in_plain_words() {
    let (w, net) = proxy_world(caddy_settings()).await;
    let host = new_host();
    let first = expose(&w, &net, &host, "/", 9).await;
    until_status(&w, first["id"].as_str().unwrap(), "active").await;
    let second = expose(&w, &net, &host, "/", 10).await;
    let failed = until_status(&w, second["id"].as_str().unwrap(), "failed").await;
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains(&format!("already sends {host}/ to 127.0.0.1:9")),
        "{failed}"
    );
    assert_eq!(caddy_routes_for(&host).await.len(), 1);
}

#[tokio::test]
async fn the_redis_route_store_refuses_a_path_ceryx_cannot_route() {
    let (settings, prefix) = redis_settings();
    let (w, net) = proxy_world(settings).await;
    let host = new_host();
    let c = expose(&w, &net, &host, "/api", 8080).await;
    let failed = until_status(&w, c["id"].as_str().unwrap(), "failed").await;
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains("routes whole host names"),
        "{failed}"
    );
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

/// A sweep now, as if the interval had passed since the last one.
async fn sweep_now(w: &World) {
    sqlx::query("DELETE FROM monitor_sweeps")
        .execute(&w.app.pool)
        .await
        .unwrap();
    let report = switchboard::services::monitor::sweep(&w.app.ctx)
        .await
        .unwrap();
    assert!(!report.skipped);
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

/// Proof through the proxy: with `probe_url`, the monitor sends a request with
/// the exposure's host name through Caddy; the service's answer is recorded
/// as verified; once the upstream stops, Caddy's gateway error makes the
/// connection drift, and it matches again when the service is back.
#[tokio::test]
async fn an_exposure_is_proved_through_caddy_and_a_stopped_upstream_is_drift() {
    let mut settings = caddy_settings();
    settings["probe_url"] = json!(format!("http://{}", caddy_http()));
    let (w, net) = proxy_world(settings).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = |listener: tokio::net::TcpListener| {
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            }
        })
    };
    let upstream = serve(listener);
    let host = new_host();
    let c = expose(&w, &net, &host, "/", port).await;
    let id = c["id"].as_str().unwrap();
    until_status(&w, id, "active").await;
    sweep_now(&w).await;
    let verified = connection(&w, id).await;
    assert!(
        verified["observed"]["verified"]
            .as_str()
            .is_some_and(|v| v.contains(&format!(
                "GET http://{host}/ through the proxy was answered 200 OK by the service"
            ))),
        "{verified}"
    );

    upstream.abort();
    let _ = upstream.await;
    sweep_now(&w).await;
    let drifted = connection(&w, id).await;
    assert_eq!(drifted["status"], "drifted", "{drifted}");
    assert_eq!(drifted["observed"]["state"], "unreachable", "{drifted}");
    assert!(
        drifted["observed"]["details"]
            .to_string()
            .contains("the service does not answer through the proxy"),
        "{drifted}"
    );

    let back = serve(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    sweep_now(&w).await;
    assert_eq!(connection(&w, id).await["status"], "active");
    back.abort();
    remove_now(&w, id).await;
}
