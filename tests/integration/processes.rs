//! The real binary, as an operator runs it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::{
    admin, database_url, dev_sign_in, eventually, maildev_messages, unique_recipient,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn start(args: &[&str], env: &[(&str, String)], dir: &std::path::Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SWITCHBOARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            panic!("did not stop within 40 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn wait_ready(base: &str) {
    eventually(
        Duration::from_secs(60),
        "the portal to be ready",
        || async {
            match reqwest::get(format!("{base}/readyz")).await {
                Ok(res) if res.status() == 200 => Some(()),
                _ => None,
            }
        },
    )
    .await;
}

async fn empty_database() -> (String, String) {
    let name = format!("sb_proc_{}", uuid::Uuid::new_v4().simple());
    admin()
        .await
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let url = database_url(&name);
    (name, url)
}

async fn drop_database(name: &str) {
    let _ = admin()
        .await
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
}

#[tokio::test]
async fn migrate_creates_the_schema_of_the_portal_and_of_the_queue() {
    let (name, url) = empty_database().await;
    let dir = std::env::temp_dir();
    let status = start(&["migrate"], &[("DATABASE_URL", url.clone())], &dir)
        .wait()
        .unwrap();
    assert!(status.success());
    let mut conn = PgConnection::connect(&url).await.unwrap();
    for table in ["outbox_emails", "apalis.jobs"] {
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(found.as_deref(), Some(table));
    }
    // Running it again is harmless.
    let again = start(&["migrate"], &[("DATABASE_URL", url)], &dir)
        .wait()
        .unwrap();
    assert!(again.success());
    conn.close().await.unwrap();
    drop_database(&name).await;
}

#[tokio::test]
async fn serve_and_work_share_one_database_and_stop_cleanly_on_sigterm() {
    let (name, url) = empty_database().await;
    let dir = std::env::temp_dir();
    assert!(
        start(&["migrate"], &[("DATABASE_URL", url.clone())], &dir)
            .wait()
            .unwrap()
            .success()
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut web = start(
        &["serve"],
        &[
            ("DATABASE_URL", url.clone()),
            ("SWITCHBOARD_BIND", format!("127.0.0.1:{port}")),
            ("SWITCHBOARD_DEV_SIGN_IN", "1".to_owned()),
            ("SWITCHBOARD_SMTP_URL", crate::helpers::maildev_smtp()),
        ],
        &dir,
    );
    let mut worker = start(
        &["work"],
        &[
            ("DATABASE_URL", url.clone()),
            ("SWITCHBOARD_SMTP_URL", crate::helpers::maildev_smtp()),
        ],
        &dir,
    );
    wait_ready(&base).await;

    // Queue a message directly in the shared database, as the web process would.
    let settings = switchboard::config::Settings::from_lookup(|k| match k {
        "DATABASE_URL" => Some(url.clone()),
        "SWITCHBOARD_SMTP_URL" => Some(crate::helpers::maildev_smtp()),
        _ => None,
    })
    .unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let ctx =
        switchboard::services::Context::new(pool.clone(), std::sync::Arc::new(settings)).unwrap();
    let caller = crate::helpers::admin_caller(&pool, "ops@example.test").await;
    let to = unique_recipient();
    switchboard::services::mail::send_test_email(&ctx, &caller, &to)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the worker process to deliver",
        || async { (!maildev_messages(&to).await.is_empty()).then_some(()) },
    )
    .await;
    pool.close().await;

    assert!(terminate(&mut web).success(), "serve exits 0 on SIGTERM");
    assert!(terminate(&mut worker).success(), "work exits 0 on SIGTERM");
    drop_database(&name).await;
}

/// The embedded default: no configuration at all.
#[tokio::test]
async fn up_with_no_configuration_runs_its_own_database_and_outbox() {
    let dir = tempdir();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = start(
        &["up"],
        &[("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))],
        &dir,
    );
    wait_ready(&base).await;

    let landing = reqwest::get(&base).await.unwrap().text().await.unwrap();
    assert!(landing.contains("Network connectivity, without the ticket queue"));
    assert!(landing.contains("Development defaults"));

    // A newcomer signs in with the development sign-in, as an admin.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let csrf = dev_sign_in(
        &client,
        &base,
        &[
            ("email", "newcomer@example.test"),
            ("name", "Newcomer"),
            ("team", "net"),
            ("role", "lead"),
            ("admin", "on"),
        ],
    )
    .await;
    // With no provider account, `up` added the sandbox: the flow works at once.
    let accounts = client
        .get(format!("{base}/admin/provider-accounts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        accounts.contains(">sandbox</span>") && accounts.contains(">ready</span>"),
        "{accounts}"
    );
    let to = unique_recipient();
    let res = client
        .post(format!("{base}/dev/outbox/test-email"))
        .form(&[("to", to.as_str()), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    eventually(
        Duration::from_secs(20),
        "the email in /dev/outbox",
        || async {
            let page = client
                .get(format!("{base}/dev/outbox"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            page.contains(&to).then_some(())
        },
    )
    .await;

    assert!(terminate(&mut up).success(), "up exits 0 on SIGTERM");
    assert!(dir.join("var/pg/data/PG_VERSION").exists());
    assert!(
        !dir.join("var/pg/data/postmaster.pid").exists(),
        "the embedded cluster is stopped on exit"
    );

    // Reused on the next start: the user and the message are still there.
    let mut again = start(
        &["up"],
        &[("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))],
        &dir,
    );
    wait_ready(&base).await;
    let page = client
        .get(format!("{base}/auth/dev"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("newcomer@example.test"),
        "the user is still known"
    );
    dev_sign_in(
        &client,
        &base,
        &[
            ("email", "newcomer@example.test"),
            ("name", "Newcomer"),
            ("keep_teams", "on"),
        ],
    )
    .await;
    let page = client
        .get(format!("{base}/dev/outbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&to));
    assert!(terminate(&mut again).success());
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-up-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// When a dead worker's jobs are put back, only those it had started are
/// charged an attempt; those it had only fetched keep theirs.
#[tokio::test]
async fn reclaiming_a_dead_workers_jobs_charges_only_those_that_ran() {
    let app = crate::helpers::spawn_app().await;
    app.stop_workers().await;
    let mut conn = app.pool.acquire().await.unwrap();
    use switchboard::domain::jobs::Noop;
    switchboard::store::queue::enqueue(&mut conn, &Noop { n: 1 })
        .await
        .unwrap();
    switchboard::store::queue::enqueue(&mut conn, &Noop { n: 2 })
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen)
         VALUES ('dead', 'switchboard.noop', 'PostgresStorage', '', now() - interval '1 hour')",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    // One fetched only, one running, both held by the dead worker.
    sqlx::query(
        "UPDATE apalis.jobs SET lock_by = 'dead', lock_at = now(),
                status = CASE WHEN convert_from(job, 'UTF8')::jsonb ->> 'n' = '1' THEN 'Queued' ELSE 'Running' END
          WHERE job_type = 'switchboard.noop'",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let reclaimed =
        apalis_postgres::queries::reenqueue_orphaned(&mut *conn, "switchboard.noop", 60)
            .await
            .unwrap();
    assert_eq!(reclaimed, 2);
    let attempts: Vec<(String, i32)> = sqlx::query_as(
        "SELECT convert_from(job, 'UTF8')::jsonb ->> 'n', attempts FROM apalis.jobs
          WHERE job_type = 'switchboard.noop' AND status = 'Pending' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(attempts, [("1".to_owned(), 0), ("2".to_owned(), 1)]);
}

/// PostgreSQL stopped for ten seconds while connections are being built: the
/// web server and the workers ride it out, nothing is lost, and once it is back
/// every connection is built, new requests are served, and the monitor sweeps.
#[tokio::test]
async fn everything_recovers_after_postgresql_stops_for_ten_seconds() {
    let root = tempdir();
    // Slow items, so the outage falls in the middle of the builds.
    let (pg, w) = world_on_private_cluster(&root, 300).await;
    let ids = approved_requests(&w, 8).await;

    pg.stop().await;
    let (status, _) = crate::helpers::api_call(
        &w.app,
        &w.requester,
        reqwest::Method::GET,
        "/api/v1/me",
        None,
    )
    .await;
    assert_eq!(status, 503, "the database is down: 503, not a crash");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let _pg = switchboard::embedded_postgres::EmbeddedPostgres::start(&root)
        .await
        .expect("PostgreSQL back");

    for id in &ids {
        crate::provisioning::until_status_within(&w, id, "active", Duration::from_secs(90)).await;
    }
    // Still served and still working: a new request is built too.
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    crate::provisioning::approve_both(&w, &id).await;
    crate::provisioning::until_status_within(&w, &id, "active", Duration::from_secs(60)).await;
    // And the monitor sweeps again.
    eventually(
        Duration::from_secs(30),
        "a sweep after the outage",
        || async {
            let recent: Option<bool> = sqlx::query_scalar(
                "SELECT finished_at > now() - interval '10 seconds' FROM monitor_sweeps WHERE id",
            )
            .fetch_optional(&w.app.pool)
            .await
            .ok()
            .flatten();
            (recent == Some(true)).then_some(())
        },
    )
    .await;
    w.app.stop_workers().await;
    w.app.pool.close().await;
    _pg.stop().await;
}

/// Someone else holds every connection row for 20 s (a long report, a stuck
/// migration) while 32 connections are being built by 32 workers: nothing fails
/// for it, every connection is active once the lock goes, and the monitor sweeps
/// again within an interval.
#[tokio::test]
async fn a_twenty_second_row_lock_only_delays_the_builds() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        scheduler: true,
        env: vec![
            ("SWITCHBOARD_MONITOR_INTERVAL", "2".into()),
            ("SWITCHBOARD_WORKER_CONCURRENCY", "32".into()),
        ],
        ..Default::default()
    })
    .await;
    let w = crate::connections::world(app).await;
    sqlx::query("UPDATE provider_accounts SET settings = '{\"latency_ms\": \"50\"}'")
        .execute(&w.app.pool)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..32 {
        ids.push(w.request().await["id"].as_str().unwrap().to_owned());
    }
    let approvals = ids
        .iter()
        .map(|id| crate::provisioning::approve_both(&w, id));
    futures::future::join_all(approvals).await;

    let mut locker = w.app.pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM connections FOR UPDATE")
        .fetch_all(&mut *locker)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    locker.rollback().await.unwrap();
    let released = chrono::Utc::now();

    for id in &ids {
        crate::provisioning::until_status_within(&w, id, "active", Duration::from_secs(90)).await;
    }
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'connection.failed'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(failed, 0, "a lock is a delay, not a failure");
    a_sweep_after(&w, released, "a sweep after the lock").await;
}

/// A burst of clients takes every connection the server allows while
/// connections are being built: the portal answers 503 where it cannot get a
/// connection (never 500), and once the burst ends every connection is built
/// and the monitor sweeps again.
#[tokio::test]
async fn a_burst_that_takes_every_server_connection_only_delays_the_builds() {
    let root = tempdir();
    let (pg, w) = world_on_private_cluster(&root, 200).await;
    let url = pg.url();
    let ids = approved_requests(&w, 8).await;

    // The burst: new sessions until the server refuses one.
    let mut burst = Vec::new();
    loop {
        match PgConnection::connect(&url).await {
            Ok(c) => burst.push(c),
            Err(e) => {
                assert!(
                    e.to_string().contains("too many clients")
                        || e.to_string().contains("reserved"),
                    "{e}"
                );
                break;
            }
        }
        assert!(burst.len() < 200, "the server never refused a connection");
    }
    let statuses: Vec<u16> = futures::future::join_all((0..40).map(|_| {
        crate::helpers::api_call(
            &w.app,
            &w.requester,
            reqwest::Method::GET,
            "/api/v1/connections",
            None,
        )
    }))
    .await
    .into_iter()
    .map(|(status, _)| status)
    .collect();
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    drop(burst);
    let ended = chrono::Utc::now();

    for id in &ids {
        crate::provisioning::until_status_within(&w, id, "active", Duration::from_secs(90)).await;
    }
    a_sweep_after(&w, ended, "a sweep after the burst").await;
    w.app.stop_workers().await;
    w.app.pool.close().await;
    pg.stop().await;
}

/// A portal (web, workers and scheduler, a 2 s monitor interval) on a private
/// PostgreSQL cluster that a test may stop or exhaust, with the two teams'
/// world and sandbox items that take `latency_ms` each.
async fn world_on_private_cluster(
    root: &std::path::Path,
    latency_ms: u32,
) -> (
    switchboard::embedded_postgres::EmbeddedPostgres,
    crate::connections::World,
) {
    let pg = switchboard::embedded_postgres::EmbeddedPostgres::start(root)
        .await
        .expect("a private PostgreSQL");
    let url = pg.url();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    switchboard::store::migrate(&pool).await.unwrap();
    pool.close().await;
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        share_database_of: Some(("switchboard".into(), url)),
        scheduler: true,
        env: vec![
            ("SWITCHBOARD_MONITOR_INTERVAL", "2".into()),
            ("SWITCHBOARD_WORKER_HEARTBEAT_SECONDS", "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let w = crate::connections::world(app).await;
    sqlx::query(
        "UPDATE provider_accounts SET settings = jsonb_build_object('latency_ms', $1::text)",
    )
    .bind(latency_ms.to_string())
    .execute(&w.app.pool)
    .await
    .unwrap();
    (pg, w)
}

/// `n` requests, each approved by both leads.
async fn approved_requests(w: &crate::connections::World, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = w.request().await["id"].as_str().unwrap().to_owned();
        crate::provisioning::approve_both(w, &id).await;
        ids.push(id);
    }
    ids
}

/// Waits for a monitor sweep that finished after `since`.
async fn a_sweep_after(
    w: &crate::connections::World,
    since: chrono::DateTime<chrono::Utc>,
    what: &str,
) {
    eventually(Duration::from_secs(30), what, || async {
        let last: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT max(finished_at) FROM monitor_sweeps")
                .fetch_one(&w.app.pool)
                .await
                .ok()
                .flatten();
        last.filter(|t| *t > since).map(|_| ())
    })
    .await;
}
