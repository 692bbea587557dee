//! The `dns` provider against a real PowerDNS (started by tests/run): a record
//! asked for and approved resolves on the server's DNS port; deleted behind
//! Switchboard's back it is drift, emailed, repaired; removing the connection
//! deletes it.

use std::net::Ipv4Addr;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::{World, world};
use crate::helpers::{Options, eventually, maildev_messages, spawn_app_with};
use crate::provisioning::{remove_now, repair_now, until_status};

pub(crate) fn api() -> String {
    std::env::var("PDNS_API_URL").unwrap_or_else(|_| "http://127.0.0.1:8081".into())
}

fn dns_address() -> String {
    std::env::var("PDNS_DNS_ADDRESS").unwrap_or_else(|_| "127.0.0.1:5353".into())
}

/// The API key of the test server (tests/peers/pdns.conf).
const KEY: &str = "test-key";

/// A call to PowerDNS's API. Its SQLite backend answers 500 ("database is
/// locked") while another test writes: such a call is made again.
pub(crate) async fn pdns(method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut tries = 0;
    loop {
        let mut request = reqwest::Client::new()
            .request(
                method.clone(),
                format!("{}/api/v1/servers/localhost{path}", api()),
            )
            .header("X-API-Key", KEY);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let res = request
            .send()
            .await
            .expect("PowerDNS answers (run tests/run, which starts it)");
        tries += 1;
        if !res.status().is_server_error() || tries == 10 {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(100 * tries)).await;
    }
}

/// A zone of this test's own.
pub(crate) async fn new_zone() -> String {
    let zone = format!("z{}.test", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let res = pdns(
        Method::POST,
        "/zones",
        Some(json!({"name": format!("{zone}."), "kind": "Native", "nameservers": []})),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    zone
}

pub(crate) fn key_ref() -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("pdns-key-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, KEY).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!("file:{}", path.display())
}

/// Asks the DNS server for the A records of `name`, over UDP, as a resolver would.
async fn resolve_a(name: &str) -> Vec<Ipv4Addr> {
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&query, dns_address()).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("the DNS server answers")
        .unwrap();
    let answer = &buf[..n];
    let count = u16::from_be_bytes([answer[6], answer[7]]);
    // Skip the header and the question (our query, echoed).
    let mut at = query.len();
    let mut found = Vec::new();
    for _ in 0..count {
        // A name: a pointer (two bytes) or labels ending with a zero.
        if answer[at] & 0xc0 == 0xc0 {
            at += 2;
        } else {
            while answer[at] != 0 {
                at += 1 + answer[at] as usize;
            }
            at += 1;
        }
        let kind = u16::from_be_bytes([answer[at], answer[at + 1]]);
        let length = u16::from_be_bytes([answer[at + 8], answer[at + 9]]) as usize;
        at += 10;
        if kind == 1 && length == 4 {
            found.push(Ipv4Addr::new(
                answer[at],
                answer[at + 1],
                answer[at + 2],
                answer[at + 3],
            ));
        }
        at += length;
    }
    found
}

async fn status_of(w: &World, id: &str) -> Value {
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
async fn a_dns_record_resolves_its_removal_is_drift_and_repaired_and_removal_deletes_it() {
    let w = world(
        spawn_app_with(Options {
            smtp: true,
            scheduler: true,
            env: vec![("SWITCHBOARD_MONITOR_INTERVAL", "1".into())],
            ..Options::default()
        })
        .await,
    )
    .await;
    let zone = new_zone().await;
    let admin = w.app.token("root@example.test", true).await;
    let (status, account) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/provider-accounts",
            Some(json!({"kind": "dns", "name": "corp-dns", "regions": [],
                        "settings": {"zone": zone, "api_url": api(), "dns_address": dns_address()},
                        "credentials_ref": key_ref()})),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    assert!(account["problem"].is_null(), "{account}");

    let name = format!("www.{zone}");
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(
                json!({"kind": "dns-record", "reason": "the shop's front door", "team": "payments",
                        "name": name, "record_type": "A", "value": "192.0.2.10", "ttl": 60}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let (status, body) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &format!("/api/v1/connections/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_status(&w, &id, "active").await;
    assert_eq!(resolve_a(&name).await, [Ipv4Addr::new(192, 0, 2, 10)]);
    // The monitor proves it through the DNS server itself, over UDP.
    let proved = format!(
        "A {name}. asked at {} over UDP resolves to 192.0.2.10",
        dns_address()
    );
    eventually(Duration::from_secs(15), "the record verified", || async {
        let c = status_of(&w, &id).await;
        (c["observed"]["verified"].as_str() == Some(proved.as_str())).then_some(())
    })
    .await;

    // Deleted behind Switchboard's back: drift, emailed with the difference.
    let res = pdns(
        Method::PATCH,
        &format!("/zones/{zone}."),
        Some(
            json!({"rrsets": [{"name": format!("{name}."), "type": "A", "changetype": "DELETE"}]}),
        ),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert!(resolve_a(&name).await.is_empty());
    let lead = w.payments_lead_email.clone();
    let mail = eventually(Duration::from_secs(15), "the drift email", || async {
        maildev_messages(&lead).await.into_iter().find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Drifted:"))
        })
    })
    .await;
    let text = mail["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("A record {name}. is missing from {zone}.")),
        "{text}"
    );
    assert_eq!(status_of(&w, &id).await["status"], "drifted");

    // A lead repairs it: it resolves again, and the connection is active again.
    repair_now(&w, &w.payments_lead, &id).await;
    until_status(&w, &id, "active").await;
    assert_eq!(resolve_a(&name).await, [Ipv4Addr::new(192, 0, 2, 10)]);

    // Removing the connection deletes the record.
    remove_now(&w, &id).await;
    assert!(resolve_a(&name).await.is_empty());
}

/// A record someone else made is not Switchboard's to overwrite: the
/// connection fails with that reason, and the record stays.
#[tokio::test]
async fn a_record_made_by_someone_else_is_left_alone() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let zone = new_zone().await;
    let name = format!("api.{zone}");
    let res = pdns(
        Method::PATCH,
        &format!("/zones/{zone}."),
        Some(json!({"rrsets": [{"name": format!("{name}."), "type": "A", "ttl": 60, "changetype": "REPLACE",
                                 "records": [{"content": "198.51.100.7", "disabled": false}]}]})),
    )
    .await;
    assert_eq!(res.status(), 204);
    let admin = w.app.token("root@example.test", true).await;
    w.call(
        &admin,
        Method::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "dns", "name": "corp-dns", "regions": [],
                    "settings": {"zone": zone, "api_url": api()}, "credentials_ref": key_ref()})),
    )
    .await;
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(
                json!({"kind": "dns-record", "reason": "new api", "team": "payments",
                        "name": name, "record_type": "A", "value": "192.0.2.20", "ttl": 60}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    w.call(
        &w.payments_lead,
        Method::POST,
        &format!("/api/v1/connections/{id}/approve"),
        None,
    )
    .await;
    let failed = until_status(&w, &id, "failed").await;
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains("Switchboard did not make it"),
        "{failed}"
    );
    assert_eq!(resolve_a(&name).await, [Ipv4Addr::new(198, 51, 100, 7)]);
}

/// Two connections asking for one name: the second never overwrites the first's
/// record (it fails, saying whose it is), and removing it leaves the first's.
#[tokio::test]
async fn a_record_of_another_connection_is_never_overwritten_or_deleted() {
    let w = world(spawn_app_with(Options::default()).await).await;
    let zone = new_zone().await;
    let name = format!("shop.{zone}");
    let admin = w.app.token("root@example.test", true).await;
    w.call(
        &admin,
        Method::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "dns", "name": "corp-dns", "regions": [],
                    "settings": {"zone": zone, "api_url": api()}, "credentials_ref": key_ref()})),
    )
    .await;
    let ask = |value: &str| {
        json!({"kind": "dns-record", "reason": "the shop", "team": "payments",
               "name": name, "record_type": "A", "value": value, "ttl": 60})
    };
    let approved = async |body: Value| {
        let (status, c) = w
            .call(
                &w.requester,
                Method::POST,
                "/api/v1/connections",
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_str().unwrap().to_owned();
        let (status, body) = w
            .call(
                &w.payments_lead,
                Method::POST,
                &format!("/api/v1/connections/{id}/approve"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        id
    };
    let first = approved(ask("192.0.2.10")).await;
    until_status(&w, &first, "active").await;

    // Another value for the same name: refused, naming the owner; nothing changed.
    let second = approved(ask("192.0.2.99")).await;
    let failed = until_status(&w, &second, "failed").await;
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains(&format!("belongs to connection {first}")),
        "{failed}"
    );
    assert_eq!(resolve_a(&name).await, [Ipv4Addr::new(192, 0, 2, 10)]);
    let (status, _) = w
        .call(
            &w.requester,
            Method::DELETE,
            &format!("/api/v1/connections/{second}"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    until_status(&w, &second, "deleted").await;
    assert_eq!(
        resolve_a(&name).await,
        [Ipv4Addr::new(192, 0, 2, 10)],
        "the first's record stays"
    );

    // The same value: found and shared; removing the sharer keeps the record.
    let third = approved(ask("192.0.2.10")).await;
    until_status(&w, &third, "active").await;
    remove_now(&w, &third).await;
    assert_eq!(
        resolve_a(&name).await,
        [Ipv4Addr::new(192, 0, 2, 10)],
        "still the first's"
    );
    let (_, first_now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{first}"),
            None,
        )
        .await;
    assert_eq!(first_now["status"], "active");

    // Its own connection removes it.
    remove_now(&w, &first).await;
    assert!(resolve_a(&name).await.is_empty());
}
