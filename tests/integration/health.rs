use std::time::Duration;

use sqlx::Executor;

use crate::helpers::{admin, eventually, spawn_app};

#[tokio::test]
async fn healthz_answers_while_the_process_is_up() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_follows_the_database() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    // Make the database unreachable: refuse new connections, cut existing ones.
    let mut admin = admin().await;
    let db = &app.db.name;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false"
        )))
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(db)
        .execute(&mut admin)
        .await
        .unwrap();

    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);

    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true"
        )))
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "readyz to recover", || async {
        (app.get("/readyz").await.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_jobs_by_state() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    app.get("/healthz").await;
    app.get("/no/such/page").await;
    app.get("/dev/outbox/4b0c1c8a-0000-4000-8000-000000000000/html")
        .await;
    let res = app
        .post_form("/dev/outbox/test-email", &[("to", "metrics@example.test")])
        .await;
    assert_eq!(res.status(), 303);

    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"switchboard_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    // Unknown paths share one label, so they cannot blow up the series count.
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    // Paths with ids are counted under their pattern.
    assert!(
        text.contains(r#"route="/dev/outbox/{id}/html",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("switchboard_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // Queue depth is read at scrape time, every queue and state even when 0
    // (the test email may be sent already), and left out when the database is
    // slow to answer (2 s): a busy machine may need another scrape.
    let jobs = r#"switchboard_jobs{queue="switchboard.send_email",state="Pending"}"#;
    eventually(
        Duration::from_secs(20),
        "queue depth in /metrics",
        || async {
            let text = app.get("/metrics").await.text().await.unwrap();
            text.contains(jobs).then_some(())
        },
    )
    .await;
}

/// Finished jobs are deleted after the retention (with the mail rendered in
/// them); waiting ones are kept; the metrics count only jobs not done.
#[tokio::test]
async fn finished_jobs_are_pruned_after_their_retention() {
    let app = spawn_app().await;
    app.stop_workers().await;
    let mut conn = app.pool.acquire().await.unwrap();
    use switchboard::domain::jobs::Noop;
    for n in 0..4 {
        switchboard::store::queue::enqueue(&mut conn, &Noop { n })
            .await
            .unwrap();
    }
    // 0, 1: done long ago; 2: done today; 3: still waiting.
    sqlx::query(
        "UPDATE apalis.jobs SET status = 'Done', done_at = now() - CASE
            WHEN convert_from(job, 'UTF8')::jsonb ->> 'n' IN ('0', '1') THEN interval '30 days'
            ELSE interval '1 hour' END
          WHERE job_type = 'switchboard.noop' AND convert_from(job, 'UTF8')::jsonb ->> 'n' <> '3'",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    switchboard::services::housekeeping::sweep(&app.ctx)
        .await
        .unwrap();
    let left: Vec<(String, String)> = sqlx::query_as(
        "SELECT convert_from(job, 'UTF8')::jsonb ->> 'n', status FROM apalis.jobs
          WHERE job_type = 'switchboard.noop' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        left,
        [
            ("2".to_owned(), "Done".to_owned()),
            ("3".to_owned(), "Pending".to_owned())
        ]
    );
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"switchboard_jobs{queue="switchboard.noop",state="Pending"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"queue="switchboard.noop",state="Done""#),
        "{text}"
    );
}
