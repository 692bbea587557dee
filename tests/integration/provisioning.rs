//! Approved connections built by the workers through the sandbox provider, and
//! removed again; failures shown with their reason; a repeated run builds nothing twice.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard::domain::team::Role;
use uuid::Uuid;

use crate::connections::{World, world};
use crate::helpers::{api_call, eventually, spawn_app};

pub(crate) async fn approve_both(w: &World, id: &str) {
    for lead in [&w.payments_lead, &w.search_lead] {
        let (status, body) = w
            .call(
                lead,
                Method::POST,
                &format!("/api/v1/connections/{id}/approve"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// A lead's "repair now", which must be accepted.
pub(crate) async fn repair_now(w: &World, lead: &str, id: &str) {
    let (status, body) = w
        .call(
            lead,
            Method::POST,
            &format!("/api/v1/connections/{id}/repair"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// The requester removes a connection; it is gone once what was built is.
pub(crate) async fn remove_now(w: &World, id: &str) -> Value {
    let (status, body) = w
        .call(
            &w.requester,
            Method::DELETE,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    until_status(w, id, "deleted").await
}

pub(crate) async fn until_status(w: &World, id: &str, want: &str) -> Value {
    until_status_within(w, id, want, Duration::from_secs(30)).await
}

pub(crate) async fn until_status_within(w: &World, id: &str, want: &str, limit: Duration) -> Value {
    eventually(limit, want, || async {
        let (_, c) = w
            .call(
                &w.requester,
                Method::GET,
                &format!("/api/v1/connections/{id}"),
                None,
            )
            .await;
        (c["status"] == want).then_some(c)
    })
    .await
}

async fn sandbox_resources(w: &World, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sandbox_resources WHERE connection_id = $1")
        .bind(Uuid::parse_str(id).unwrap())
        .fetch_one(&w.app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn approved_connections_are_built_and_removal_deletes_what_was_built() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    approve_both(&w, id).await;
    let active = until_status(&w, id, "active").await;
    // One peering, a route each way, a rule each way.
    assert_eq!(sandbox_resources(&w, id).await, 5);
    let steps = active["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert!(steps.iter().all(|s| s["action"] == "created"));
    assert!(
        steps[0]["resource"]
            .as_str()
            .unwrap()
            .starts_with("VPC peering")
    );

    // A worker that died before marking it active runs again: nothing is built twice.
    sqlx::query("UPDATE connections SET status = 'provisioning' WHERE id = $1")
        .bind(Uuid::parse_str(id).unwrap())
        .execute(&w.app.pool)
        .await
        .unwrap();
    let hash = active["plan_hash"].as_str().unwrap();
    switchboard::services::provisioning::provision(
        &w.app.ctx,
        Uuid::parse_str(id).unwrap(),
        hash,
        false,
    )
    .await
    .unwrap();
    let again = until_status(&w, id, "active").await;
    assert_eq!(sandbox_resources(&w, id).await, 5);
    let found = again["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "found")
        .count();
    assert_eq!(found, 5, "the second run found everything");

    // An outsider may not remove it; the requester may.
    let (status, _) = w
        .call(
            &w.outsider,
            Method::DELETE,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let gone = remove_now(&w, id).await;
    assert_eq!(sandbox_resources(&w, id).await, 0);
    let deleted = gone["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "deleted")
        .count();
    assert_eq!(deleted, 5);
    // The requester hears of each stage.
    for want in ["Approved:", "Active:", "Removed:"] {
        eventually(Duration::from_secs(15), want, || async {
            let s: Vec<String> = sqlx::query_scalar(
                "SELECT subject FROM outbox_emails WHERE to_address = 'rita@example.test'",
            )
            .fetch_all(&w.app.pool)
            .await
            .unwrap();
            s.iter().any(|s| s.starts_with(want)).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_provider_that_cannot_build_it_fails_with_the_reason_shown() {
    let w = world(spawn_app().await).await;
    let admin = w.app.token("root@example.test", true).await;
    // Two on-prem sites registered without their namespaces: the planner picks
    // WireGuard, and the linux provider cannot build it without knowing where.
    let mut nets = Vec::new();
    for (name, cidr) in [("dc1", "10.50.0.0/24"), ("dc2", "10.50.1.0/24")] {
        let (status, account) = api_call(
            &w.app,
            &admin,
            Method::POST,
            "/api/v1/provider-accounts",
            Some(json!({"kind": "linux", "name": name, "regions": ["local"]})),
        )
        .await;
        assert_eq!(status, 201, "{account}");
        let team = if name == "dc1" { "payments" } else { "search" };
        let (status, net) = api_call(
            &w.app,
            &admin,
            Method::POST,
            "/api/v1/networks",
            Some(json!({"name": format!("{team}-{name}"), "team": team, "provider_account_id": account["id"],
                        "region": "local", "cidr": cidr})),
        )
        .await;
        assert_eq!(status, 201, "{net}");
        nets.push(net["id"].as_str().unwrap().to_owned());
    }
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(
                json!({"kind": "network-to-network", "reason": "backup link",
                        "source_network_id": nets[0], "destination_network_id": nets[1]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["mechanism"], "wireguard");
    let id = c["id"].as_str().unwrap();

    // A sandbox network and an on-prem one would need a site-to-site VPN,
    // which the sandbox has none of (AWS does): refused when asked, with the
    // reason, before anyone approves anything.
    let (status, problem) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(
                json!({"kind": "network-to-network", "reason": "backup link",
                        "source_network_id": w.payments_net, "destination_network_id": nets[1]}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "destination_network_id");
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("site-to-site VPN: neither provider builds a VPN gateway"),
        "{problem}"
    );
    let saved: i64 = sqlx::query_scalar("SELECT count(*) FROM connections")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(saved, 1, "only the WireGuard request was saved");

    approve_both(&w, id).await;
    let failed = until_status(&w, id, "failed").await;
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains(
                "register the network with its namespace (or ssh://user@host[/namespace]) as external_id"
            ),
        "{failed}"
    );
    // Only leads (and admins) try again; it fails again for the same reason.
    let (status, _) = w
        .call(
            &w.requester,
            Method::POST,
            &format!("/api/v1/connections/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let lead = w
        .app
        .team_token("pat@example.test", "payments", Role::Lead, false)
        .await;
    let (status, body) = w
        .call(
            &lead,
            Method::POST,
            &format!("/api/v1/connections/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    until_status(&w, id, "failed").await;
    // A failed connection can be cleaned up.
    remove_now(&w, id).await;
}

#[tokio::test]
async fn an_expired_connection_is_removed() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    approve_both(&w, id).await;
    until_status(&w, id, "active").await;
    assert_eq!(sandbox_resources(&w, id).await, 5);
    sqlx::query("UPDATE connections SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(Uuid::parse_str(id).unwrap())
        .execute(&w.app.pool)
        .await
        .unwrap();
    let swept = switchboard::services::connections::expire_due(&w.app.ctx)
        .await
        .unwrap();
    assert_eq!(swept, 1);
    let gone = until_status(&w, id, "deleted").await;
    assert_eq!(sandbox_resources(&w, id).await, 0);
    let (_, events) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}/events"),
            None,
        )
        .await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "connection.expired"),
        "{events}"
    );
    assert_eq!(
        gone["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] == "deleted")
            .count(),
        5
    );
}

/// Admins change or delete a sandbox resource behind Switchboard's back (to
/// demonstrate drift), through the API and the page; others may not.
#[tokio::test]
async fn admins_change_and_delete_sandbox_resources_behind_switchboards_back() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    approve_both(&w, id).await;
    until_status(&w, id, "active").await;
    let admin = w.app.token("root@example.test", true).await;
    let path = format!("/api/v1/sandbox/resources?connection_id={id}");
    let (status, listed) = w.call(&admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 5);
    let route = listed.iter().find(|r| r["kind"] == "route").unwrap();
    let route_id = route["id"].as_str().unwrap();

    // Not for the connection's own people.
    let (status, _) = w.call(&w.payments_lead, Method::GET, &path, None).await;
    assert_eq!(status, 403);
    let (status, _) = w
        .call(
            &w.requester,
            Method::DELETE,
            &format!("/api/v1/sandbox/resources/{route_id}"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // A bad change names the field and changes nothing.
    let (status, body) = w
        .call(
            &admin,
            Method::PATCH,
            &format!("/api/v1/sandbox/resources/{route_id}"),
            Some(json!({"detail": "  "})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "detail");
    let (status, body) = w
        .call(
            &admin,
            Method::GET,
            "/api/v1/sandbox/resources?connection_id=nope",
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "connection_id");

    let (status, changed) = w
        .call(
            &admin,
            Method::PATCH,
            &format!("/api/v1/sandbox/resources/{route_id}"),
            Some(json!({"detail": "in the route tables of nowhere"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["detail"], "in the route tables of nowhere");
    let (status, _) = w
        .call(
            &admin,
            Method::DELETE,
            &format!("/api/v1/sandbox/resources/{route_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, after) = w.call(&admin, Method::GET, &path, None).await;
    assert_eq!(after.as_array().unwrap().len(), 4);
    let (status, _) = w
        .call(
            &admin,
            Method::DELETE,
            &format!("/api/v1/sandbox/resources/{route_id}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "already gone");

    // The page lists them with their buttons, and its buttons work.
    w.app
        .sign_in_dev("root@example.test", "ops", "member", true)
        .await;
    let page = w
        .app
        .get(&format!("/admin/sandbox?connection={id}"))
        .await
        .text()
        .await
        .unwrap();
    let rule = after
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "firewall rule")
        .unwrap();
    let rule_id = rule["id"].as_str().unwrap();
    assert!(
        page.contains(&format!("/admin/sandbox/{rule_id}/delete")),
        "{page}"
    );
    let res = w
        .app
        .post_form(&format!("/admin/sandbox/{rule_id}/delete"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let (_, after) = w.call(&admin, Method::GET, &path, None).await;
    assert_eq!(after.as_array().unwrap().len(), 3);
    // Each is in the audit log, by whom.
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action LIKE 'sandbox.resource_%'",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(logged, 3);
}

/// Many connections approved at once, both leads at the same instant for each:
/// every connection is queued once and built once.
#[tokio::test]
async fn many_approvals_at_once_build_each_connection_once() {
    let w = world(spawn_app().await).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(w.request().await["id"].as_str().unwrap().to_owned());
    }
    let world = &w;
    let mut approvals = Vec::new();
    for id in &ids {
        for lead in [&w.payments_lead, &w.search_lead] {
            let path = format!("/api/v1/connections/{id}/approve");
            approvals.push(async move { world.call(lead, Method::POST, &path, None).await });
        }
    }
    for (status, body) in futures::future::join_all(approvals).await {
        assert_eq!(status, 200, "{body}");
    }
    for id in &ids {
        until_status(&w, id, "active").await;
    }
    assert_eq!(w.app.job_count("switchboard.provision").await, 20);
    let per_connection: Vec<i64> =
        sqlx::query_scalar("SELECT count(*) FROM sandbox_resources GROUP BY connection_id")
            .fetch_all(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(per_connection, vec![5; 20]);
    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM connection_steps WHERE action = 'created'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(created, 100, "nothing was built twice");
}

/// Workers of a second process of the same deployment (the first one's are stopped).
async fn second_process(w: &World) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(crate::helpers::Options {
        share_database_of: Some((w.app.db.name.clone(), w.app.db.url.clone())),
        ..Default::default()
    })
    .await
}

/// Repair and removal of one connection never act at once: whatever order they
/// run in, nothing of the connection exists once it is removed.
#[tokio::test]
async fn a_repair_racing_a_removal_never_rebuilds_what_was_removed() {
    let w = world(spawn_app().await).await;
    // Slow items, so the two jobs overlap if nothing keeps them apart.
    sqlx::query("UPDATE provider_accounts SET settings = '{\"latency_ms\": \"5\"}'")
        .execute(&w.app.pool)
        .await
        .unwrap();
    for round in 0..50 {
        let c = w.request().await;
        let id = c["id"].as_str().unwrap().to_owned();
        approve_both(&w, &id).await;
        until_status(&w, &id, "active").await;
        let (repair_path, remove_path) = (
            format!("/api/v1/connections/{id}/repair"),
            format!("/api/v1/connections/{id}"),
        );
        let repair = api_call(&w.app, &w.payments_lead, Method::POST, &repair_path, None);
        let remove = api_call(&w.app, &w.requester, Method::DELETE, &remove_path, None);
        let ((repair_status, _), (remove_status, body)) = tokio::join!(repair, remove);
        assert_eq!(remove_status, 202, "round {round}: {body}");
        // The repair was asked for before the removal (202) or after it (409).
        assert!(
            [202, 409].contains(&repair_status),
            "round {round}: {repair_status}"
        );
        until_status(&w, &id, "deleted").await;
        // Whatever repair job was queued has run by now.
        eventually(Duration::from_secs(30), "no repair waiting", || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM apalis.jobs WHERE job_type = 'switchboard.repair' AND status IN ('Pending', 'Queued', 'Running')",
            )
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
            (waiting == 0).then_some(())
        })
        .await;
        assert_eq!(
            sandbox_resources(&w, &id).await,
            0,
            "round {round}: rebuilt after removal"
        );
    }
}

/// "Repair now" pressed again while a repair waits asks for nothing more.
#[tokio::test]
async fn repeated_repair_requests_collapse_into_one_job() {
    let w = world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status(&w, &id, "active").await;
    w.app.stop_workers().await;
    for _ in 0..5 {
        repair_now(&w, &w.payments_lead, &id).await;
    }
    assert_eq!(w.app.job_count("switchboard.repair").await, 1);
}

/// A network deleted between approval and the build: the connection does not
/// sit in `approved` forever; it fails with the reason, and people are told.
#[tokio::test]
async fn a_network_deleted_before_the_build_fails_the_connection_with_the_reason() {
    let w = world(spawn_app().await).await;
    w.app.stop_workers().await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    let admin = w.app.token("deleter@example.test", true).await;
    let (status, body) = api_call(
        &w.app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/networks/{}", w.search_net),
        None,
    )
    .await;
    // The API refuses while the approved connection uses it, naming it…
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains(&id), "{body}");
    // …but a network can still vanish under it (an operator's SQL): the build
    // then fails with the reason.
    sqlx::query("DELETE FROM networks WHERE id = $1::uuid")
        .bind(&w.search_net)
        .execute(&w.app.pool)
        .await
        .unwrap();
    let _workers = second_process(&w).await;
    let failed = until_status(&w, &id, "failed").await;
    let why = failed["failure"].as_str().unwrap();
    assert!(why.contains("no network has this id"), "{failed}");
    // The email is delivered by the workers, moments after.
    let mailed = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM outbox_emails WHERE subject LIKE 'Failed:%' AND to_address = 'rita@example.test'",
        )
        .fetch_one(&w.app.pool)
        .await
        .unwrap()
    };
    eventually(Duration::from_secs(30), "the requester told", || async {
        (mailed().await > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mailed().await, 1, "the requester is told once");
}

/// A connection whose job was lost (or used up its attempts) is found by the
/// housekeeping pass: given a new job, or failed with what the last attempt said.
#[tokio::test]
async fn connections_nothing_works_on_are_put_back_in_motion() {
    let w = world(spawn_app().await).await;
    w.app.stop_workers().await;
    let lost = w.request().await["id"].as_str().unwrap().to_owned();
    let spent = w.request().await["id"].as_str().unwrap().to_owned();
    approve_both(&w, &lost).await;
    approve_both(&w, &spent).await;
    // One job vanished; the other used up its attempts.
    sqlx::query(
        "DELETE FROM apalis.jobs WHERE convert_from(job, 'UTF8')::jsonb ->> 'connection_id' = $1",
    )
    .bind(&lost)
    .execute(&w.app.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE apalis.jobs SET status = 'Failed', attempts = max_attempts, done_at = now(),
                 last_result = '{\"Err\": \"AWS could not be reached\"}'
                 WHERE convert_from(job, 'UTF8')::jsonb ->> 'connection_id' = $1",
    )
    .bind(&spent)
    .execute(&w.app.pool)
    .await
    .unwrap();
    // Recently moved connections are left alone; quiet ones are looked at.
    let resumed = switchboard::services::provisioning::resume_unattended(&w.app.ctx)
        .await
        .unwrap();
    assert_eq!((resumed.requeued, resumed.failed), (0, 0));
    sqlx::query("UPDATE connections SET updated_at = now() - interval '10 minutes'")
        .execute(&w.app.pool)
        .await
        .unwrap();
    let resumed = switchboard::services::provisioning::resume_unattended(&w.app.ctx)
        .await
        .unwrap();
    assert_eq!((resumed.requeued, resumed.failed), (1, 1));
    let (_, failed) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{spent}"),
            None,
        )
        .await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains("AWS could not be reached"),
        "{failed}"
    );
    // The lost one is built by the workers of another process.
    let _workers = second_process(&w).await;
    until_status(&w, &lost, "active").await;
    let again = switchboard::services::provisioning::resume_unattended(&w.app.ctx)
        .await
        .unwrap();
    assert_eq!((again.requeued, again.failed), (0, 0));
}

/// A release may reword a plan's prose, or change what the plan hash covers:
/// connections approved before it are built as approved, never sent back to
/// their leads.
#[tokio::test]
async fn approvals_stand_when_a_release_rewords_plans_or_changes_their_hash() {
    let w = world(spawn_app().await).await;
    w.app.stop_workers().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = w.request().await["id"].as_str().unwrap().to_owned();
        approve_both(&w, &id).await;
        ids.push(Uuid::parse_str(&id).unwrap());
    }
    // The first was planned by a release that worded its plan differently,
    // and approved under that plan's hash.
    let stored: Value = sqlx::query_scalar("SELECT plan FROM connections WHERE id = $1")
        .bind(ids[0])
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    let mut older: switchboard::planner::Plan = serde_json::from_value(stored).unwrap();
    older.summary = "An older summary".into();
    older.explanation = "Worded by an earlier release.".into();
    approved_under(&w, ids[0], Some(&older), &older.hash()).await;
    // The second was approved under an earlier hash version.
    approved_under(&w, ids[1], None, &format!("{:064x}", 7)).await;

    // The new release starts: its migration step carries the hash forward.
    let carried = switchboard::services::connections::carry_plans_forward(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(carried, 1);
    let again = switchboard::services::connections::carry_plans_forward(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(again, 0, "carrying forward is done once");

    let _workers = second_process(&w).await;
    for id in &ids {
        until_status(&w, &id.to_string(), "active").await;
    }
    let replanned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'connection.replanned'",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(replanned, 0, "no connection went back to approval");
}

/// Makes a connection look approved under `hash` (and, given one, `plan`): its
/// row, its approvals and its queued job.
async fn approved_under(
    w: &World,
    id: Uuid,
    plan: Option<&switchboard::planner::Plan>,
    hash: &str,
) {
    if let Some(plan) = plan {
        sqlx::query("UPDATE connections SET plan = $2 WHERE id = $1")
            .bind(id)
            .bind(serde_json::to_value(plan).unwrap())
            .execute(&w.app.pool)
            .await
            .unwrap();
    }
    for statement in [
        "UPDATE connections SET plan_hash = $2 WHERE id = $1",
        "UPDATE connection_sides SET plan_hash = $2 WHERE connection_id = $1",
        "UPDATE apalis.jobs SET job = convert_to(jsonb_set(convert_from(job, 'UTF8')::jsonb,
                '{plan_hash}', to_jsonb($2::text))::text, 'UTF8')
          WHERE convert_from(job, 'UTF8')::jsonb->>'connection_id' = $1::text
            AND convert_from(job, 'UTF8')::jsonb ? 'plan_hash'",
    ] {
        let changed = sqlx::query(statement)
            .bind(id)
            .bind(hash)
            .execute(&w.app.pool)
            .await
            .unwrap()
            .rows_affected();
        assert!(changed > 0, "{statement}");
    }
}
