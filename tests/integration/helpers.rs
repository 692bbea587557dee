//! `spawn_app()`: the real application on port 0 against a fresh database
//! (cloned from a migrated template), with its workers, talking to real peers.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection, PgPool};
use switchboard::app::Application;
use switchboard::config::Settings;
use switchboard::jobs::{self, WorkerSettings};
use switchboard::notify::Mailer;
use switchboard::services::Context;
use switchboard::telemetry::Metrics;
use tokio::sync::watch;

/// The server tests create their databases on (`TEST_DATABASE_URL`).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(name);
    url.to_string()
}

pub fn maildev_smtp() -> String {
    std::env::var("MAILDEV_SMTP_URL").unwrap_or_else(|_| "smtp://127.0.0.1:1025".into())
}

pub fn maildev_api() -> String {
    std::env::var("MAILDEV_API_URL").unwrap_or_else(|_| "http://127.0.0.1:1080".into())
}

pub async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url())
        .await
        .expect("connect to TEST_DATABASE_URL (run tests/run, which starts PostgreSQL)")
}

/// A migrated database to clone, built once per schema version, shared by all
/// test processes (guarded by an advisory lock).
async fn template() -> String {
    let mut hasher = DefaultHasher::new();
    for m in switchboard::store::MIGRATOR.iter() {
        m.checksum.hash(&mut hasher);
    }
    for m in apalis_postgres::PostgresStorage::migrations().iter() {
        m.checksum.hash(&mut hasher);
    }
    switchboard::store::QUEUE_ADDITIONS.hash(&mut hasher);
    let name = format!("sb_template_{:016x}", hasher.finish());
    let mut conn = admin().await;
    conn.execute("SELECT pg_advisory_lock(7271001)")
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    if !exists {
        let building = format!("{name}_building");
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {building} WITH (FORCE)"
        )))
        .await
        .unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
            .await
            .unwrap();
        let pool = PgPool::connect(&database_url(&building)).await.unwrap();
        switchboard::store::migrate(&pool).await.unwrap();
        pool.close().await;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {name}"
        )))
        .await
        .unwrap();
    }
    conn.execute("SELECT pg_advisory_unlock(7271001)")
        .await
        .unwrap();
    name
}

/// A fresh, migrated database of this test's own; dropped when the guard drops.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    /// Dropped at the end of the test only by the app that created it.
    owned: bool,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let template = template().await;
        let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin().await;
        let mut tries = 0;
        loop {
            let sql = format!("CREATE DATABASE {name} TEMPLATE {template}");
            match conn.execute(sqlx::AssertSqlSafe(sql)).await {
                Ok(_) => break,
                // Another process is cloning the template at this moment.
                Err(e) if tries < 50 && e.to_string().contains("being accessed") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("creating {name}: {e}"),
            }
        }
        let url = database_url(&name);
        Self {
            name,
            url,
            owned: true,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let name = self.name.clone();
        // Best effort, on its own thread: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

pub fn oidc_issuer() -> String {
    std::env::var("OIDC_ISSUER_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into())
}

/// Registers a client for this app with the identity provider (dynamic registration).
pub async fn register_oidc_client(address: &str) -> (String, String) {
    let res: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/reg", oidc_issuer()))
        .json(&serde_json::json!({
            "redirect_uris": [format!("{address}/auth/callback")],
            "post_logout_redirect_uris": [format!("{address}/")],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .expect("the OIDC provider answers (run tests/run, which starts it)")
        .json()
        .await
        .unwrap();
    (
        res["client_id"].as_str().expect("a client id").to_owned(),
        res["client_secret"]
            .as_str()
            .expect("a client secret")
            .to_owned(),
    )
}

/// Sets the groups the identity provider puts in `sub`'s claims.
pub async fn set_idp_groups(sub: &str, groups: &[&str]) {
    let res = reqwest::Client::new()
        .put(format!("{}/test/groups/{sub}", oidc_issuer()))
        .json(&groups)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

#[derive(Default)]
pub struct Options {
    /// Sign in through the real OIDC provider instead of the development sign-in.
    pub oidc: bool,
    /// Send mail over SMTP to maildev instead of the outbox.
    pub smtp: bool,
    /// Share this database (another process of the same deployment) instead of a new one.
    pub share_database_of: Option<(String, String)>,
    /// Extra environment variables for the settings.
    pub env: Vec<(&'static str, String)>,
    /// Also run the periodic tasks of a worker process (the monitor's sweeps…).
    pub scheduler: bool,
}

pub struct TestApp {
    /// The CSRF token of the client's current session (after a sign-in).
    pub csrf: std::sync::Mutex<String>,
    pub address: String,
    pub pool: PgPool,
    pub ctx: Context,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    stop_workers: watch::Sender<bool>,
    /// The workers' and the scheduler's tasks, awaited when they are stopped.
    workers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    switchboard::telemetry::init_tracing(
        &std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        switchboard::config::LogFormat::Pretty,
    );
    let db = match options.share_database_of {
        Some((name, url)) => TestDatabase {
            name,
            url,
            owned: false,
        },
        None => TestDatabase::new().await,
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");

    let mut env: HashMap<&str, String> = HashMap::new();
    env.insert("DATABASE_URL", db.url.clone());
    env.insert("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"));
    env.insert("SWITCHBOARD_BASE_URL", address.clone());
    // Development conveniences only when asked for, as a deployment would.
    if !options.oidc {
        env.insert("SWITCHBOARD_DEV_SIGN_IN", "1".into());
    }
    if !options.smtp {
        env.insert("SWITCHBOARD_OUTBOX", "1".into());
    }
    if options.smtp {
        env.insert("SWITCHBOARD_SMTP_URL", maildev_smtp());
        env.insert(
            "SWITCHBOARD_MAIL_FROM",
            "Switchboard Test <portal@switchboard.test>".into(),
        );
    }
    if options.oidc {
        let (client_id, secret) = register_oidc_client(&address).await;
        env.insert("SWITCHBOARD_OIDC_ISSUER", oidc_issuer());
        env.insert("SWITCHBOARD_OIDC_CLIENT_ID", client_id);
        env.insert("SWITCHBOARD_OIDC_CLIENT_SECRET", secret);
        env.insert(
            "SWITCHBOARD_OIDC_SCOPES",
            "openid email profile groups".into(),
        );
        env.insert("SWITCHBOARD_SESSION_KEY", "k".repeat(64));
    }
    for (k, v) in options.env {
        env.insert(k, v);
    }
    let settings = Arc::new(Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings"));

    let pool = switchboard::store::pool(db.url.parse().unwrap(), 20);
    let ctx = Context::new(pool.clone(), settings.clone()).unwrap();
    let app = Application::build(listener, ctx.clone(), Arc::new(Metrics::new())).unwrap();
    tokio::spawn(app.into_server());

    let (stop_workers, stop_rx) = watch::channel(false);
    let mailer = Mailer::from_settings(&settings, &pool).unwrap();
    let mut worker_settings = WorkerSettings::new(4);
    worker_settings.poll_interval = Duration::from_millis(200);
    let mut workers = Vec::new();
    if options.scheduler {
        workers.push(tokio::spawn(jobs::schedule::run(
            ctx.clone(),
            stop_rx.clone(),
        )));
    }
    workers.push(tokio::spawn(jobs::run(
        ctx.clone(),
        mailer,
        worker_settings,
        stop_rx,
    )));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        // The server closes a connection idle for 5 s; dropping it first means a
        // request is never sent on a connection the server is closing.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    TestApp {
        csrf: std::sync::Mutex::new(String::new()),
        address,
        pool,
        ctx,
        client,
        db,
        stop_workers,
        workers: std::sync::Mutex::new(workers),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Posts a form as the browser would: with the session's CSRF token.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf.lock().unwrap().clone();
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf_token", &csrf));
        self.client
            .post(self.url(path))
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Signs the test client in through the development sign-in page.
    pub async fn sign_in_dev(&self, email: &str, team: &str, role: &str, admin: bool) {
        let page = self.get("/auth/dev").await.text().await.unwrap();
        *self.csrf.lock().unwrap() = csrf_in(&page).expect("the sign-in page has a CSRF token");
        let name = email.split('@').next().unwrap().to_owned();
        let mut form = vec![
            ("email", email),
            ("name", name.as_str()),
            ("team", team),
            ("role", role),
        ];
        if admin {
            form.push(("admin", "on"));
        }
        let res = self.post_form("/auth/dev", &form).await;
        assert_eq!(
            res.status(),
            303,
            "dev sign-in of {email}: {}",
            res.text().await.unwrap()
        );
        let me = self.get("/me").await.text().await.unwrap();
        *self.csrf.lock().unwrap() = csrf_in(&me).expect("/me has a CSRF token");
    }

    /// Walks the identity provider's pages as a browser would (login form, then
    /// consent) and returns the callback URL it sends the browser back to.
    pub async fn oidc_until_callback(&self, login: &str) -> String {
        let res = self.get("/auth/login").await;
        assert_eq!(res.status(), 303, "sign-in starts with a redirect");
        let mut url = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(url.starts_with(&oidc_issuer()), "{url}");
        for _ in 0..20 {
            if url.starts_with(&self.url("/auth/callback")) {
                return url;
            }
            let res = self.client.get(&url).send().await.unwrap();
            if res.status().is_redirection() {
                url = resolve(&url, res.headers()["location"].to_str().unwrap());
                continue;
            }
            let page = res.text().await.unwrap();
            let (action, mut fields) =
                form_in(&page).unwrap_or_else(|| panic!("no form at {url}: {page}"));
            if fields.iter().any(|(k, _)| k == "login") || page.contains("name=\"login\"") {
                fields.retain(|(k, _)| k != "login" && k != "password");
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "any".into()));
            }
            let res = self
                .client
                .post(resolve(&url, &action))
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert!(
                res.status().is_redirection(),
                "the provider accepted the form"
            );
            url = resolve(&url, res.headers()["location"].to_str().unwrap());
        }
        panic!("the identity provider never sent the browser back");
    }

    /// Signs in through the real identity provider and lands on `/me`.
    pub async fn sign_in_oidc(&self, login: &str) {
        let callback = self.oidc_until_callback(login).await;
        let res = self.client.get(&callback).send().await.unwrap();
        assert_eq!(res.status(), 303, "callback: {:?}", res.text().await);
        assert_eq!(res.headers()["location"], "/me");
        let me = self.get("/me").await.text().await.unwrap();
        *self.csrf.lock().unwrap() = csrf_in(&me).expect("/me has a CSRF token");
    }

    /// Signs in as an administrator.
    pub async fn sign_in_admin(&self) {
        self.sign_in_dev("admin@example.test", "", "member", true)
            .await;
    }

    /// An API token of a new user (`--admin` or not), as `switchboard admin create-token` makes.
    pub async fn token(&self, email: &str, admin: bool) -> String {
        switchboard::services::tokens::create_bootstrap_token(&self.ctx, email, "test", admin, None)
            .await
            .unwrap()
            .secret
    }

    /// An API token of a new user who is a member of `team` (created if absent).
    pub async fn member_token(&self, email: &str, team: &str) -> String {
        self.team_token(email, team, switchboard::domain::team::Role::Member, false)
            .await
    }

    /// An API token of a new user with `role` in `team` (created if absent).
    pub async fn team_token(
        &self,
        email: &str,
        team: &str,
        role: switchboard::domain::team::Role,
        admin: bool,
    ) -> String {
        use switchboard::domain::team::TeamSlug;
        let token = self.token(email, admin).await;
        let mut conn = self.pool.acquire().await.unwrap();
        let slug = TeamSlug::parse(team).unwrap();
        let team = switchboard::store::teams::ensure(&mut conn, &slug, team)
            .await
            .unwrap();
        let user = switchboard::store::users::find_by_email(&mut *conn, email)
            .await
            .unwrap()
            .unwrap();
        switchboard::store::teams::set_membership(&mut *conn, user.id, team.id, role, "manual")
            .await
            .unwrap();
        token
    }

    /// A caller for using services directly: a real admin user in the database.
    pub async fn admin_caller(&self) -> switchboard::services::Caller {
        admin_caller(&self.pool, "svc-admin@example.test").await
    }

    pub async fn job_count(&self, queue: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE job_type = $1")
            .bind(queue)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Stops the workers (and scheduler) of this process and waits until they
    /// have finished their jobs: nothing of theirs runs or fetches after.
    pub async fn stop_workers(&self) {
        let _ = self.stop_workers.send(true);
        let tasks = std::mem::take(&mut *self.workers.lock().unwrap());
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Polls until `check` returns Some, or panics after `limit` with `what`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if started.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A recipient no other test uses, so tests can share one maildev.
pub fn unique_recipient() -> String {
    format!("{}@example.test", uuid::Uuid::new_v4().simple())
}

/// The messages maildev received for `to`.
pub async fn maildev_messages(to: &str) -> Vec<serde_json::Value> {
    let all: Vec<serde_json::Value> = reqwest::get(format!("{}/api/email", maildev_api()))
        .await
        .expect("maildev answers (run tests/run, which starts it)")
        .json()
        .await
        .unwrap();
    all.into_iter()
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|to_list| to_list.iter().any(|t| t["address"] == to))
        })
        .collect()
}

/// The value of the first `csrf_token` hidden field in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf_token\" value=\"")?;
    let rest = &html[at + "name=\"csrf_token\" value=\"".len()..];
    let value = &rest[..rest.find('"')?];
    (!value.is_empty()).then(|| value.to_owned())
}

fn resolve(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

/// The action and the hidden (and text) fields of the first form in a page.
fn form_in(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = &html[html.find("<form")?..];
    let action = attr(&form[..form.find('>')?], "action")?;
    let body = &form[..form.find("</form>")?];
    let mut fields = Vec::new();
    for chunk in body.split("<input").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap_or(chunk.len())];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
    }
    Some((action.replace("&amp;", "&"), fields))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    let end = tag[at..].find('"')?;
    Some(tag[at..at + end].to_owned())
}

/// Calls the API with a bearer token; returns the status and the JSON body (null if none).
pub async fn api_call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// A caller for using services directly: a real admin user in the database.
pub async fn admin_caller(pool: &PgPool, email: &str) -> switchboard::services::Caller {
    let mut conn = pool.acquire().await.unwrap();
    let (user, _) =
        switchboard::store::users::upsert(&mut conn, "dev", email, email, "Service Admin")
            .await
            .unwrap();
    switchboard::store::users::set_admin(&mut *conn, user.id, true)
        .await
        .unwrap();
    let actor = switchboard::store::users::actor(&mut conn, user.id)
        .await
        .unwrap()
        .unwrap();
    switchboard::services::Caller {
        actor,
        request_id: None,
    }
}

/// Signs a client in through the development sign-in; returns its CSRF token.
pub async fn dev_sign_in(client: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> String {
    let page = client
        .get(format!("{base}/auth/dev"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page).unwrap();
    let mut fields = form.to_vec();
    fields.push(("csrf_token", &csrf));
    let res = client
        .post(format!("{base}/auth/dev"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let me = client
        .get(format!("{base}/me"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csrf_in(&me).unwrap()
}
