//! The reachability model against the real database: "who can reach X on
//! port P, through which connection" from the open connections, through the
//! API, the page and `switchboard reach`; and the delta an approver sees.

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::{World, world};
use crate::helpers::spawn_app;
use crate::provisioning::{approve_both, until_status};

async fn ask(w: &World, ports: &str) -> String {
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(
                json!({"kind": "network-to-network", "reason": "payments calls search",
                        "source_network_id": w.payments_net, "destination_network_id": w.search_net,
                        "protocol": "tcp", "ports": ports}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_str().unwrap().to_owned()
}

async fn reach(w: &World, query: &str) -> (u16, Value) {
    w.call(
        &w.requester,
        Method::GET,
        &format!("/api/v1/reach?{query}"),
        None,
    )
    .await
}

fn connections(answer: &Value) -> Vec<String> {
    answer["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["connection_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn who_can_reach_a_network_on_a_port_and_through_which_connection() {
    let w = world(spawn_app().await).await;
    let active = ask(&w, "443, 8000-8100").await;
    approve_both(&w, &active).await;
    until_status(&w, &active, "active").await;
    let waiting = ask(&w, "22").await;

    // By network name, by address, by range; with and without a source and port.
    for query in [
        "to=search-prod&port=443",
        "to=10.2.3.4&port=8050",
        "to=10.2.0.0/24",
        "to=search-prod&from=payments-prod&port=443",
        "to=search-prod&from=10.1.2.3",
    ] {
        let (status, answer) = reach(&w, query).await;
        assert_eq!(status, 200, "{query}: {answer}");
        assert_eq!(
            connections(&answer),
            vec![active.clone()],
            "{query}: {answer}"
        );
    }
    let (_, answer) = reach(&w, "to=search-prod&port=443").await;
    let flow = &answer["flows"][0];
    assert_eq!(flow["from"], "payments-prod");
    assert_eq!(flow["from_prefixes"], json!(["10.1.0.0/16"]));
    assert_eq!(flow["to_prefixes"], json!(["10.2.0.0/16"]));
    assert_eq!(
        (flow["protocol"].as_str(), flow["ports"].as_str()),
        (Some("tcp"), Some("443, 8000-8100"))
    );
    // Not on another port, not from elsewhere, not the other way; the waiting
    // request allows nothing yet.
    for query in [
        "to=search-prod&port=22",
        "to=search-prod&from=10.9.0.0/16",
        "to=payments-prod",
    ] {
        let (status, answer) = reach(&w, query).await;
        assert_eq!(status, 200, "{answer}");
        assert!(connections(&answer).is_empty(), "{query}: {answer}");
    }
    // Bad questions name their field.
    for (query, field) in [
        ("", "to"),
        ("to=nowhere-at-all", "to"),
        ("to=search-prod&port=0", "port"),
        ("to=search-prod&from=x y", "from"),
    ] {
        let (status, answer) = reach(&w, query).await;
        assert_eq!(status, 422, "{query}: {answer}");
        assert_eq!(answer["errors"][0]["field"], field, "{query}: {answer}");
    }

    // The approver of the waiting request sees what it adds: port 22 is new.
    let (_, pending) = w
        .call(
            &w.search_lead,
            Method::GET,
            &format!("/api/v1/connections/{waiting}"),
            None,
        )
        .await;
    assert_eq!(pending["reach"][0]["already_by"], Value::Null, "{pending}");
    assert_eq!(pending["reach"][0]["flow"]["ports"], "22");
    // A request for what is already allowed says by which connection.
    let again = ask(&w, "443").await;
    let (_, pending) = w
        .call(
            &w.search_lead,
            Method::GET,
            &format!("/api/v1/connections/{again}"),
            None,
        )
        .await;
    assert_eq!(
        pending["reach"][0]["already_by"],
        json!(active),
        "{pending}"
    );

    // The CLI says the same.
    let token = &w.requester;
    let out = crate::cli::switchboard(
        &[
            ("SWITCHBOARD_URL", &w.app.address),
            ("SWITCHBOARD_TOKEN", token),
        ],
        &["reach", "payments-prod", "search-prod:443"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(&active) && text.contains("443, 8000-8100"),
        "{text}"
    );
    let out = crate::cli::switchboard(
        &[
            ("SWITCHBOARD_URL", &w.app.address),
            ("SWITCHBOARD_TOKEN", token),
        ],
        &["reach", "any", "search-prod:22"],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no open connection lets this through"),
        "{out:?}"
    );

    // And the page.
    w.app
        .sign_in_dev("rita@example.test", "payments", "member", false)
        .await;
    let page = w
        .app
        .get("/reach?to=search-prod&port=443")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("/connections/{active}")), "{page}");

    // The model is kept between questions, and follows every change at once:
    // the port-22 request, active now, answers the very next question.
    approve_both(&w, &waiting).await;
    until_status(&w, &waiting, "active").await;
    let (_, answer) = reach(&w, "to=search-prod&port=22").await;
    assert_eq!(connections(&answer), vec![waiting.clone()], "{answer}");
    let (_, answer) = reach(&w, "to=search-prod&port=22").await;
    assert_eq!(connections(&answer), vec![waiting.clone()], "{answer}");
}
