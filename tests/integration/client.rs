//! The typed client (`switchboard::client`) against a real portal: what a
//! Rust program or script would do with it, start to finish.

use switchboard::client::{
    AuditQuery, Client, ClientError, ConnectionQuery, ConnectionRequest, DecisionIn, PageRequest,
};
use uuid::Uuid;

use crate::connections::world;
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_program_asks_pages_approves_and_reads_the_audit_through_the_typed_client() {
    let w = world(spawn_app().await).await;
    let requester = Client::new(&w.app.address, &w.requester).unwrap();
    let me = requester.me().await.unwrap();
    assert_eq!(me.email, "rita@example.test");

    let ask = ConnectionRequest {
        kind: "network-to-network".into(),
        reason: "payments calls search".into(),
        source_network_id: Some(Uuid::parse_str(&w.payments_net).unwrap()),
        destination_network_id: Some(Uuid::parse_str(&w.search_net).unwrap()),
        protocol: Some("tcp".into()),
        ports: Some("443".into()),
        ..Default::default()
    };
    let plan = requester.preview_connection(&ask).await.unwrap();
    let made = requester
        .create_connection(&ask, Some("typed-1"))
        .await
        .unwrap();
    assert_eq!(made.summary, plan.summary);
    let again = requester
        .create_connection(&ask, Some("typed-1"))
        .await
        .unwrap();
    assert_eq!(again.id, made.id, "the key made it once");
    for reason in ["second", "third"] {
        let more = ConnectionRequest {
            reason: reason.into(),
            ..ask.clone()
        };
        requester.create_connection(&more, None).await.unwrap();
    }

    let first = requester
        .list_connections(
            &ConnectionQuery::default(),
            &PageRequest {
                limit: Some(2),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.next_cursor.is_some());
    let all = requester
        .all_connections(&ConnectionQuery {
            team: Some("search".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].id, made.id, "oldest last");
    assert_eq!(all[2].request.reason, "payments calls search");

    // Both leads consent to the plan as seen.
    for lead in [&w.payments_lead, &w.search_lead] {
        let lead = Client::new(&w.app.address, lead).unwrap();
        let decision = DecisionIn {
            plan_hash: Some(made.plan_hash.clone()),
            comment: String::new(),
        };
        lead.approve(made.id, &decision).await.unwrap();
    }
    let events = requester.connection_events(made.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.action == "connection.approved"),
        "{}",
        events.len()
    );

    // A refusal is the API's problem, with its status and fields.
    let err = requester
        .list_connections(
            &ConnectionQuery {
                status: Some("sleeping".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap_err();
    match err {
        ClientError::Api { status, problem } => {
            assert_eq!(status.as_u16(), 422);
            assert_eq!(problem.errors.unwrap()[0].field, "status");
        }
        other => panic!("{other}"),
    }
    let admin = Client::new(
        &w.app.address,
        &w.app.token("root@example.test", true).await,
    )
    .unwrap();
    let audit = admin
        .list_audit_events(
            &AuditQuery {
                object_id: Some(made.id.to_string()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|e| e.action == "connection.requested")
    );
    let denied = requester
        .list_audit_events(&AuditQuery::default(), &PageRequest::default())
        .await;
    assert!(matches!(denied, Err(ClientError::Api { status, .. }) if status.as_u16() == 403));
}
