use std::time::Duration;

use sqlx::Executor;
use switchboard::domain::jobs::{Job, SendEmail};
use switchboard::services;

use crate::helpers::{
    Options, admin, eventually, maildev_messages, spawn_app, spawn_app_with, unique_recipient,
};

#[tokio::test]
async fn a_queued_email_travels_through_postgres_and_a_worker_to_the_smtp_server() {
    let app = spawn_app_with(Options {
        smtp: true,
        ..Options::default()
    })
    .await;
    let to = unique_recipient();
    let email = services::mail::send_test_email(&app.ctx, &app.admin_caller().await, &to)
        .await
        .unwrap();

    let messages = eventually(Duration::from_secs(15), "the email in maildev", || async {
        let found = maildev_messages(&to).await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(messages.len(), 1, "delivered exactly once");
    let m = &messages[0];
    assert_eq!(m["subject"], "Switchboard test email");
    assert_eq!(m["from"][0]["address"], "portal@switchboard.test");
    assert_eq!(m["from"][0]["name"], "Switchboard Test");
    // Both parts: plain text and HTML, each with the link to the portal.
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains("this is a test message from Switchboard")
    );
    assert!(m["text"].as_str().unwrap().contains(&app.address));
    assert!(
        m["html"]
            .as_str()
            .unwrap()
            .contains("<strong>test message</strong>")
    );
    assert_eq!(
        m["headers"]["message-id"],
        format!("<{}@switchboard.test>", email.id),
        "a stable Message-ID lets receivers drop a retried duplicate"
    );

    // The worker marks its job done just after the SMTP server took the
    // message: wait for that mark, not for the message alone.
    let done: i64 = eventually(Duration::from_secs(10), "the job marked done", || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
        )
        .bind(SendEmail::QUEUE)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (done > 0).then_some(done)
    })
    .await;
    assert_eq!(done, 1);
}

#[tokio::test]
async fn without_smtp_the_email_lands_in_the_outbox_page() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    let to = unique_recipient();
    let res = app
        .post_form("/dev/outbox/test-email", &[("to", &to)])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/dev/outbox");

    // The redirect target shows the flash message once.
    let page = app.get("/dev/outbox").await.text().await.unwrap();
    assert!(
        page.contains(&format!("Queued a test email to {to}")),
        "{page}"
    );
    let again = app.get("/dev/outbox").await.text().await.unwrap();
    assert!(
        !again.contains("Queued a test email"),
        "flash shown only once"
    );

    let page = eventually(
        Duration::from_secs(15),
        "the email in the outbox",
        || async {
            let page = app.get("/dev/outbox").await.text().await.unwrap();
            page.contains(&to).then_some(page)
        },
    )
    .await;
    assert!(page.contains("Switchboard test email"));
    assert!(page.contains("this is a test message from Switchboard"));
}

#[tokio::test]
async fn a_bad_address_is_refused_with_the_reason_and_queues_nothing() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    for (input, reason) in [
        ("", "to: is empty"),
        ("not-an-address", "to: has no @"),
        ("a b@example.com", "to: contains a space"),
    ] {
        let res = app
            .post_form("/dev/outbox/test-email", &[("to", input)])
            .await;
        assert_eq!(res.status(), 422, "{input:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains(reason), "{input:?}: {body}");
        assert!(body.contains(r#"aria-invalid="true""#));
    }
    assert_eq!(app.job_count(SendEmail::QUEUE).await, 0);
}

#[tokio::test]
async fn the_outbox_does_not_exist_when_smtp_is_configured() {
    let app = spawn_app_with(Options {
        smtp: true,
        ..Options::default()
    })
    .await;
    app.sign_in_admin().await;
    assert_eq!(app.get("/dev/outbox").await.status(), 404);
    let res = app
        .post_form("/dev/outbox/test-email", &[("to", "a@example.test")])
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.job_count(SendEmail::QUEUE).await, 0);
    let home = app.get("/").await.text().await.unwrap();
    assert!(!home.contains("/dev/outbox"));
}

#[tokio::test]
async fn the_html_part_is_served_sandboxed() {
    let app = spawn_app().await;
    app.sign_in_admin().await;
    let email =
        services::mail::send_test_email(&app.ctx, &app.admin_caller().await, &unique_recipient())
            .await
            .unwrap();
    let path = format!("/dev/outbox/{}/html", email.id);
    let res = eventually(
        Duration::from_secs(15),
        "the message in the outbox",
        || async {
            let res = app.get(&path).await;
            (res.status() == 200).then_some(res)
        },
    )
    .await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("sandbox"), "{csp}");
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("<strong>test message</strong>")
    );
}

#[tokio::test]
async fn workers_keep_delivering_after_their_database_connections_are_cut() {
    let app = spawn_app_with(Options {
        smtp: true,
        ..Options::default()
    })
    .await;
    let first = unique_recipient();
    services::mail::send_test_email(&app.ctx, &app.admin_caller().await, &first)
        .await
        .unwrap();
    eventually(Duration::from_secs(15), "the first email", || async {
        (!maildev_messages(&first).await.is_empty()).then_some(())
    })
    .await;

    // What a database restart looks like from here: every connection dies.
    let mut admin = admin().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&app.db.name)
    .execute(&mut admin)
    .await
    .unwrap();
    admin.execute("SELECT 1").await.unwrap();

    let second = unique_recipient();
    eventually(
        Duration::from_secs(10),
        "queueing after the cut",
        || async {
            services::mail::send_test_email(&app.ctx, &app.admin_caller().await, &second)
                .await
                .ok()
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the second email after the cut",
        || async { (!maildev_messages(&second).await.is_empty()).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_retried_delivery_to_the_outbox_stores_the_message_once() {
    let app = spawn_app().await;
    let email =
        services::mail::send_test_email(&app.ctx, &app.admin_caller().await, &unique_recipient())
            .await
            .unwrap();
    app.stop_workers().await;
    let mailer = switchboard::notify::Mailer::from_settings(&app.ctx.settings, &app.pool).unwrap();
    // Two deliveries of the same message, as after a worker crash mid-job.
    mailer.send(&email).await.unwrap();
    mailer.send(&email).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_emails WHERE id = $1")
        .bind(email.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

/// Workers whose pool runs dry (every connection held elsewhere for longer than
/// the pool's acquire timeout) fail, restart, and work again once connections
/// are free: never a process left without workers.
#[tokio::test]
async fn workers_recover_after_their_pool_runs_dry() {
    use switchboard::jobs::{self, WorkerSettings};
    let app = spawn_app().await;
    app.stop_workers().await;
    // Workers of their own, on a small pool, as a `work` process with a small
    // SWITCHBOARD_DATABASE_POOL_SIZE would have.
    let pool = switchboard::store::pool(
        app.db.url.parse().unwrap(),
        switchboard::config::WORKER_LISTENERS + 2,
    );
    let ctx = switchboard::services::Context::new(pool.clone(), app.ctx.settings.clone()).unwrap();
    let mailer = switchboard::notify::Mailer::from_settings(&ctx.settings, &pool).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut settings = WorkerSettings::new(2);
    settings.poll_interval = Duration::from_millis(200);
    settings.heartbeat = Duration::from_secs(1);
    tokio::spawn(jobs::run(ctx.clone(), mailer, settings, rx));
    let delivered = |id: uuid::Uuid| {
        let pool = app.pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_emails WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            (n == 1).then_some(())
        }
    };
    let admin = app.admin_caller().await;
    let first = services::mail::send_test_email(&app.ctx, &admin, &unique_recipient())
        .await
        .unwrap();
    eventually(Duration::from_secs(15), "the first email", || {
        delivered(first.id)
    })
    .await;

    // Every connection of the workers' pool taken (what its listeners do not
    // hold) for longer than the pool lets anyone wait.
    let mut held = Vec::new();
    while let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_millis(500), pool.acquire()).await
    {
        held.push(conn);
    }
    assert!(!held.is_empty());
    tokio::time::sleep(Duration::from_secs(12)).await;
    drop(held);

    let second = services::mail::send_test_email(&app.ctx, &admin, &unique_recipient())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "the second email, after the pool ran dry",
        || delivered(second.id),
    )
    .await;
    let _ = stop.send(true);
}
