//! Changes of active connections: a port added to a peering in moto builds
//! only the new rules (the peering and the routes untouched, their ids the
//! same, the old rule open throughout) once both leads approve; taking a port
//! away applies without any lead; a reason alone changes without a build.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::built_networks::cloud;
use crate::connections::{World, world};
use crate::helpers::{Options, eventually, spawn_app};
use crate::moto;
use crate::provisioning::{approve_both, until_status};

async fn ask(w: &World, token: &str, id: &str, body: Value) -> (u16, Value) {
    w.call(
        token,
        Method::POST,
        &format!("/api/v1/connections/{id}/changes"),
        Some(body),
    )
    .await
}

async fn external_id(w: &World, network: &str) -> String {
    let (_, n) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/networks/{network}"),
            None,
        )
        .await;
    n["external_id"].as_str().unwrap().to_owned()
}

/// Waits for the change to be applied, checking on every look that `keep`
/// holds (what must stay open while the difference is built).
async fn until_applied<F, Fut>(w: &World, change: &str, keep: F) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    eventually(Duration::from_secs(60), "the change applied", || async {
        keep().await;
        let (_, c) = w
            .call(
                &w.requester,
                Method::GET,
                &format!("/api/v1/changes/{change}"),
                None,
            )
            .await;
        assert_ne!(c["status"], "failed", "{c}");
        (c["status"] == "applied").then_some(c)
    })
    .await
}

#[tokio::test]
async fn a_port_added_to_a_peering_builds_only_the_new_rules_in_place() {
    let w = cloud(Options::default(), json!({})).await;
    let ec2 = moto::ec2("us-east-1");
    let (payments_vpc, search_vpc) = (
        external_id(&w, &w.payments_net).await,
        external_id(&w, &w.search_net).await,
    );
    let c = w.request().await;
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status(&w, &id, "active").await;
    let peering = moto::peerings(&ec2, &payments_vpc, &search_vpc).await;
    assert_eq!(peering.len(), 1);
    let routes = (
        moto::routes_to(&ec2, &payments_vpc, "10.2.0.0/16").await,
        moto::routes_to(&ec2, &search_vpc, "10.1.0.0/16").await,
    );
    let web = "tcp 443-443 from 10.2.0.0/16";
    assert!(
        moto::ingress(&ec2, &payments_vpc)
            .await
            .contains(&web.to_owned())
    );

    // Adding 8443 lets more through: both leads must approve the difference.
    let (status, change) = ask(&w, &w.requester, &id, json!({"ports": "443, 8443"})).await;
    assert_eq!(status, 201, "{change}");
    assert_eq!(change["scope"], "wider");
    assert_eq!(change["status"], "pending");
    let words = |list: &str| change["difference"][list].to_string();
    assert!(words("added").contains("8443"), "{change}");
    assert!(words("kept").contains("VPC peering"), "{change}");
    assert!(words("kept").contains("route 10.2.0.0/16"), "{change}");
    assert!(!words("kept").contains("8443"), "{change}");
    let change_id = change["id"].as_str().unwrap().to_owned();
    let hash = change["plan_hash"].as_str().unwrap().to_owned();
    let (status, busy) = ask(&w, &w.requester, &id, json!({"ports": "443, 9443"})).await;
    assert_eq!(status, 409, "one change at a time: {busy}");

    let decide = |token: &str, hash: &str| {
        let (token, path, body) = (
            token.to_owned(),
            format!("/api/v1/changes/{change_id}/approve"),
            json!({"plan_hash": hash}),
        );
        let w = &w;
        async move { w.call(&token, Method::POST, &path, Some(body)).await }
    };
    let (status, refused) = decide(&w.requester, &hash).await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = decide(&w.payments_lead, "v2:not-what-was-seen").await;
    assert_eq!(status, 409, "{refused}");
    let (status, half) = decide(&w.payments_lead, &hash).await;
    assert_eq!(status, 200, "{half}");
    assert_eq!(half["status"], "pending", "search has not approved yet");
    assert!(
        !moto::ingress(&ec2, &payments_vpc)
            .await
            .iter()
            .any(|r| r.contains("8443")),
        "nothing is built before every side approved"
    );
    let (status, approved) = decide(&w.search_lead, &hash).await;
    assert_eq!(status, 200, "{approved}");

    // Built in place: 443 stays open throughout, 8443 opens, the peering and
    // the routes are the same ones.
    let applied = until_applied(&w, &change_id, || async {
        let open = moto::ingress(&ec2, &payments_vpc).await;
        assert!(
            open.contains(&web.to_owned()),
            "443 closed during the change: {open:?}"
        );
    })
    .await;
    assert_eq!(applied["version"], 2);
    for vpc in [&payments_vpc, &search_vpc] {
        let open = moto::ingress(&ec2, vpc).await;
        assert_eq!(
            open.iter()
                .filter(|r| r.starts_with("tcp 443-443") || r.starts_with("tcp 8443-8443"))
                .count(),
            2,
            "{vpc}: {open:?}"
        );
    }
    assert_eq!(
        moto::peerings(&ec2, &payments_vpc, &search_vpc).await,
        peering
    );
    assert_eq!(
        (
            moto::routes_to(&ec2, &payments_vpc, "10.2.0.0/16").await,
            moto::routes_to(&ec2, &search_vpc, "10.1.0.0/16").await,
        ),
        routes
    );
    let (_, now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(now["status"], "active", "{now}");
    assert_eq!(now["plan_hash"], hash.as_str());

    // Taking 443 away lets less through: it applies with no lead asked.
    let (status, narrower) = ask(&w, &w.requester, &id, json!({"ports": "8443"})).await;
    assert_eq!(status, 201, "{narrower}");
    assert_eq!(narrower["scope"], "narrower");
    assert_eq!(narrower["sides"], json!([]));
    let narrowed = until_applied(&w, narrower["id"].as_str().unwrap(), || async {
        let open = moto::ingress(&ec2, &payments_vpc).await;
        assert!(
            open.iter().any(|r| r.starts_with("tcp 8443-8443")),
            "8443 closed while only 443 was to go: {open:?}"
        );
    })
    .await;
    assert_eq!(narrowed["version"], 3);
    let open = moto::ingress(&ec2, &payments_vpc).await;
    assert!(!open.contains(&web.to_owned()), "{open:?}");
    assert!(
        open.iter().any(|r| r.starts_with("tcp 8443-8443")),
        "{open:?}"
    );
    assert_eq!(
        moto::peerings(&ec2, &payments_vpc, &search_vpc).await,
        peering
    );

    // The history shows each version, newest first.
    let (_, history) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}/changes"),
            None,
        )
        .await;
    let versions: Vec<i64> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["version"].as_i64())
        .collect();
    assert_eq!(versions, [3, 2]);
}

#[tokio::test]
async fn who_may_change_what_and_a_reason_alone_needs_no_build() {
    let w = world(spawn_app().await).await;
    let pending = w.request().await["id"].as_str().unwrap().to_owned();
    let (status, refused) = ask(&w, &w.requester, &pending, json!({"ports": "8443"})).await;
    assert_eq!(status, 409, "only an active connection changes: {refused}");

    let c = w.request().await;
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status(&w, &id, "active").await;
    let (status, _) = ask(&w, &w.outsider, &id, json!({"ports": "8443"})).await;
    assert_eq!(status, 404, "an outsider does not see it");
    let (status, refused) = ask(&w, &w.requester, &id, json!({"ports": "443"})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "ports");
    let (status, refused) = ask(&w, &w.requester, &id, json!({"ports": "seventy"})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "ports");
    let (status, refused) = ask(&w, &w.requester, &id, json!({"reason": "  "})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "reason");

    let (status, reworded) = ask(
        &w,
        &w.requester,
        &id,
        json!({"reason": "payments calls search for refunds"}),
    )
    .await;
    assert_eq!(status, 201, "{reworded}");
    assert_eq!(reworded["scope"], "same");
    assert_eq!(reworded["difference"]["added"], json!([]));
    assert_eq!(reworded["difference"]["removed"], json!([]));
    let applied = until_applied(&w, reworded["id"].as_str().unwrap(), || async {}).await;
    assert_eq!(applied["version"], 2);
    let (_, now) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(now["reason"], "payments calls search for refunds", "{now}");

    // A lead's wider change waits for the other side, and they may reject it.
    let (status, wider) = ask(&w, &w.payments_lead, &id, json!({"ports": "443, 8443"})).await;
    assert_eq!(status, 201, "{wider}");
    let change = wider["id"].as_str().unwrap();
    // Its reachability delta: port 8443 is new, nothing is taken away.
    assert_eq!(
        wider["reach"]["added"][0]["flow"]["ports"], "8443",
        "{wider}"
    );
    assert_eq!(wider["reach"]["added"][0]["already_by"], Value::Null);
    assert_eq!(wider["reach"]["removed"], json!([]), "{wider}");
    let (status, own) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &format!("/api/v1/changes/{change}/approve"),
            Some(json!({"plan_hash": wider["plan_hash"]})),
        )
        .await;
    assert_eq!(status, 403, "not their own change: {own}");
    // It waits on the other lead's approvals page and home, linking to the difference.
    w.app
        .sign_in_dev(&w.search_lead_email, "search", "lead", false)
        .await;
    for page in ["/approvals", "/"] {
        let html = w.app.get(page).await.text().await.unwrap();
        assert!(
            html.contains(&format!("/connections/{id}/change")),
            "{page}: {html}"
        );
    }
    let html = w
        .app
        .get(&format!("/connections/{id}/change"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"approve-change\""), "{html}");
    assert!(html.contains("8443"), "{html}");
    assert!(html.contains("id=\"change-reach\""), "{html}");
    let (status, rejected) = w
        .call(
            &w.search_lead,
            Method::POST,
            &format!("/api/v1/changes/{change}/reject"),
            Some(json!({"reason": "8443 is not served"})),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["comment"], "8443 is not served");
    let (_, after) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(after["plan_hash"], now["plan_hash"], "nothing changed");
}
