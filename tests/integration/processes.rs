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
