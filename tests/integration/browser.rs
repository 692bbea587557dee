//! Real headless Chromium, driven over WebDriver (chromedriver), looking at the
//! pages the way a person does. Screenshots go to target/screenshots/.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::{eventually, spawn_app, unique_recipient};

/// chromedriver on a port of its own, killed when the test ends.
struct Browser {
    driver: Child,
    client: Client,
}

impl Browser {
    async fn start() -> Self {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{chromedriver} could not start ({e}): install chromium and chromium-driver (tests/run does)")
            });
        let profile =
            std::env::temp_dir().join(format!("sb-chrome-{}", uuid::Uuid::new_v4().simple()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        // Keep the console, for `console_errors`.
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let url = format!("http://127.0.0.1:{port}");
        let client = eventually(Duration::from_secs(15), "chromedriver", || {
            let caps = caps.clone();
            let url = url.clone();
            async move {
                // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url)
                    .await
                    .ok()
            }
        })
        .await;
        Self { driver, client }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// axe-core's serious and critical findings on the current page, each as
    /// "rule: where".
    async fn accessibility_violations(&self) -> Vec<String> {
        let path = std::env::var("AXE_CORE_JS")
            .expect("AXE_CORE_JS names axe-core's axe.min.js (tests/run installs it with npm)");
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        self.client
            .execute(&format!("{axe}\nreturn true;"), vec![])
            .await
            .unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                       + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await
            .unwrap();
        found
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The console's errors since the last call (CSP refusals, failed loads,
    /// script errors), from chromedriver's log.
    async fn console_errors(&self) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// chromedriver's "read the browser's console" command.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Signs in through the development sign-in page and waits for the profile.
async fn dev_sign_in(
    app: &crate::helpers::TestApp,
    c: &Client,
    email: &str,
    name: &str,
    team: &str,
    role: &str,
    admin: bool,
) {
    c.goto(&app.url("/auth/dev")).await.unwrap();
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    if !team.is_empty() {
        c.find(Locator::Id("team"))
            .await
            .unwrap()
            .send_keys(team)
            .await
            .unwrap();
        c.find(Locator::Id("role"))
            .await
            .unwrap()
            .select_by_value(role)
            .await
            .unwrap();
    }
    if admin {
        c.find(Locator::Css("input[name=admin]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "signed in", || async {
        (c.current_url().await.ok()?.path() == "/me").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_newcomer_reads_the_landing_page_and_sends_a_test_email_from_the_outbox() {
    let app = spawn_app().await;
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&app.url("/")).await.unwrap();
    let heading = c
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Network connectivity, without the ticket queue");
    assert_eq!(
        c.title().await.unwrap(),
        "Network connectivity, self-service · Switchboard"
    );
    let footer = c
        .find(Locator::Css("footer"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(footer.contains(env!("CARGO_PKG_VERSION")), "{footer}");
    // htmx loaded under the strict CSP (no inline script anywhere).
    let htmx = c.execute("return typeof htmx", vec![]).await.unwrap();
    assert_eq!(htmx, json!("object"));
    browser.screenshot("landing").await;

    // Sign in with the development sign-in (no identity provider here), as an admin.
    c.find(Locator::LinkText("Sign in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the development sign-in page",
        || async {
            let h1 = c.find(Locator::Css("h1")).await.ok()?.text().await.ok()?;
            (h1 == "Development sign-in").then_some(())
        },
    )
    .await;
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("ada@example.test")
        .await
        .unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("Ada Admin")
        .await
        .unwrap();
    c.find(Locator::Id("team"))
        .await
        .unwrap()
        .send_keys("network")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=admin]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the profile page", || async {
        let h1 = c.find(Locator::Css("h1")).await.ok()?.text().await.ok()?;
        (h1 == "Ada Admin").then_some(())
    })
    .await;
    let teams = c
        .find(Locator::Css("main table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        teams.contains("network") && teams.contains("member"),
        "{teams}"
    );
    browser.screenshot("me").await;

    // Open the admin menu, go to the outbox and send a test email with the form.
    c.find(Locator::Css("details.menu-group summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::LinkText("Outbox"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the outbox page", || async {
        let h1 = c.find(Locator::Css("h1")).await.ok()?.text().await.ok()?;
        (h1 == "Outbox").then_some(())
    })
    .await;

    // A mistake first: the reason is shown next to the field.
    let input = c.find(Locator::Id("to")).await.unwrap();
    input.send_keys("not-an-address").await.unwrap();
    c.find(Locator::Css(
        "form[action='/dev/outbox/test-email'] button[type=submit]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let error = eventually(Duration::from_secs(10), "the field error", || async {
        c.find(Locator::Css(".field-error"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    })
    .await;
    assert_eq!(error, "to: has no @");

    let to = unique_recipient();
    let input = c.find(Locator::Id("to")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(&to).await.unwrap();
    c.find(Locator::Css(
        "form[action='/dev/outbox/test-email'] button[type=submit]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let flash = eventually(Duration::from_secs(10), "the confirmation", || async {
        c.find(Locator::Css(".flash")).await.ok()?.text().await.ok()
    })
    .await;
    assert!(flash.contains(&to), "{flash}");

    // The list refreshes by itself (htmx polling) once the worker delivered it.
    let row = eventually(
        Duration::from_secs(20),
        "the message in the list",
        || async {
            let table = c
                .find(Locator::Css("#outbox-list"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            table.contains(&to).then_some(table)
        },
    )
    .await;
    assert!(row.contains("Switchboard test email"), "{row}");
    browser.screenshot("outbox").await;
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_person_signs_in_through_the_identity_provider_creates_a_token_and_signs_out() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        oidc: true,
        ..Default::default()
    })
    .await;
    let login = format!("grace-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    crate::helpers::set_idp_groups(&login, &["payments:lead"]).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&app.url("/")).await.unwrap();
    c.find(Locator::LinkText("Sign in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The identity provider's own login page, then its consent page.
    let login_field = eventually(
        Duration::from_secs(10),
        "the provider's login form",
        || async { c.find(Locator::Css("input[name=login]")).await.ok() },
    )
    .await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&crate::helpers::oidc_issuer())
    );
    login_field.send_keys(&login).await.unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("secret")
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let h1 = eventually(
        Duration::from_secs(10),
        "consent, then the profile",
        || async {
            let url = c.current_url().await.ok()?;
            if url.as_str().starts_with(&app.address) {
                return c.find(Locator::Css("h1")).await.ok()?.text().await.ok();
            }
            if let Ok(button) = c.find(Locator::Css("form button[type=submit]")).await {
                let _ = button.click().await;
            }
            None
        },
    )
    .await;
    assert_eq!(h1, login[..1].to_uppercase() + &login[1..]);
    assert!(c.current_url().await.unwrap().path() == "/me");
    let teams = c
        .find(Locator::Css("main table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        teams.contains("payments") && teams.contains("lead"),
        "{teams}"
    );

    // Create a token: shown once, in full.
    c.find(Locator::Id("token-name"))
        .await
        .unwrap()
        .send_keys("laptop")
        .await
        .unwrap();
    c.find(Locator::Css(
        "form[action='/me/tokens'] button[type=submit]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let secret = eventually(Duration::from_secs(10), "the new token", || async {
        c.find(Locator::Id("new-token-secret"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    })
    .await;
    assert!(secret.starts_with("sbp_"), "{secret}");
    browser.screenshot("me-token").await;
    let me = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // Sign out: here, then at the provider, and back to the start page.
    c.find(Locator::Css("form[action='/auth/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(15),
        "signed out, back on the start page",
        || async {
            let url = c.current_url().await.ok()?;
            if url.as_str().starts_with(&app.address) {
                let header = c
                    .find(Locator::Css(".account"))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                return header.contains("Sign in").then_some(());
            }
            // The provider asks to confirm the sign-out.
            if let Ok(button) = c.find(Locator::Css("button[type=submit]")).await {
                let _ = button.click().await;
            }
            None
        },
    )
    .await;
    browser.screenshot("signed-out").await;
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_admin_draws_the_address_plan_and_allocates_from_it() {
    let app = spawn_app().await;
    let browser = Browser::start().await;
    let c = &browser.client;
    dev_sign_in(&app, c, "nina@example.test", "Nina", "", "member", true).await;

    c.find(Locator::LinkText("Address plan"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let cidr = eventually(Duration::from_secs(10), "the new-pool form", || async {
        c.find(Locator::Id("pool-cidr")).await.ok()
    })
    .await;
    // Live validation while typing.
    cidr.send_keys("10.0.0.1/8").await.unwrap();
    let verdict = eventually(Duration::from_secs(10), "the live CIDR check", || async {
        let text = c
            .find(Locator::Id("cidr-check"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (!text.is_empty()).then_some(text)
    })
    .await;
    assert_eq!(
        verdict,
        "cidr: 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"
    );
    cidr.clear().await.unwrap();
    cidr.send_keys("10.0.0.0/8").await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the check to accept it",
        || async {
            let text = c
                .find(Locator::Id("cidr-check"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("16777216 addresses").then_some(())
        },
    )
    .await;
    c.find(Locator::Id("pool-name"))
        .await
        .unwrap()
        .send_keys("corp")
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/address-plan/pools'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let h1 = eventually(Duration::from_secs(10), "the pool page", || async {
        let h1 = c.find(Locator::Css("h1")).await.ok()?.text().await.ok()?;
        h1.starts_with("corp").then_some(h1)
    })
    .await;
    assert_eq!(h1, "corp 10.0.0.0/8");

    c.find(Locator::Id("alloc-len"))
        .await
        .unwrap()
        .send_keys("16")
        .await
        .unwrap();
    c.find(Locator::Id("alloc-desc"))
        .await
        .unwrap()
        .send_keys("staging")
        .await
        .unwrap();
    c.find(Locator::Css("form[action$='/allocations'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let flash = eventually(Duration::from_secs(10), "the allocation", || async {
        let text = c
            .find(Locator::Css(".flash"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.starts_with("Allocated").then_some(text)
    })
    .await;
    assert_eq!(flash, "Allocated 10.0.0.0/16.");
    // On the picture: one allocated stretch, titled with its CIDR.
    let rect = c
        .find(Locator::Css("rect.seg-allocated title"))
        .await
        .unwrap();
    assert_eq!(rect.html(true).await.unwrap(), "allocated 10.0.0.0/16");
    let table = c
        .find(Locator::Id("allocations"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        table.contains("10.0.0.0/16") && table.contains("staging"),
        "{table}"
    );
    browser.screenshot("pool").await;
    c.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_team_member_creates_a_network_and_finds_it_on_the_plan() {
    let app = spawn_app().await;
    // The admin's part, through the API: a provider account and a labelled pool.
    let admin = app.token("admin@example.test", true).await;
    let api = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        api.post(app.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    post(
        "/api/v1/provider-accounts",
        json!({"kind": "sandbox", "name": "lab", "regions": ["eu-west-1"]}),
    )
    .await
    .unwrap();
    let space: serde_json::Value = post(
        "/api/v1/pools",
        json!({"name": "corp", "cidr": "10.0.0.0/8"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    post("/api/v1/pools", json!({"name": "eu-prod", "cidr": "10.16.0.0/12", "parent_id": space["id"], "labels": {"region": "eu-west-1", "environment": "prod"}}))
        .await
        .unwrap();

    let browser = Browser::start().await;
    let c = &browser.client;
    dev_sign_in(
        &app,
        c,
        "mia@example.test",
        "Mia",
        "payments",
        "member",
        false,
    )
    .await;
    c.find(Locator::LinkText("Networks"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let cidr = eventually(Duration::from_secs(10), "the network form", || async {
        c.find(Locator::Id("n-cidr")).await.ok()
    })
    .await;
    // Live validation of the optional CIDR field, then left empty to get a new prefix.
    cidr.send_keys("10.300.0.0/16").await.unwrap();
    let verdict = eventually(Duration::from_secs(10), "the live CIDR check", || async {
        let text = c
            .find(Locator::Id("cidr-check"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (!text.is_empty()).then_some(text)
    })
    .await;
    assert!(
        verdict.starts_with("cidr: \"10.300.0.0/16\" is not a CIDR block"),
        "{verdict}"
    );
    cidr.clear().await.unwrap();
    c.find(Locator::Id("n-name"))
        .await
        .unwrap()
        .send_keys("checkout")
        .await
        .unwrap();
    c.find(Locator::Id("n-team"))
        .await
        .unwrap()
        .send_keys("payments")
        .await
        .unwrap();
    c.find(Locator::Id("n-region"))
        .await
        .unwrap()
        .send_keys("eu-west-1")
        .await
        .unwrap();
    c.find(Locator::Id("n-env"))
        .await
        .unwrap()
        .send_keys("prod")
        .await
        .unwrap();
    c.find(Locator::Css(
        "form[method='post'][action='/networks'] button",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let flash = eventually(Duration::from_secs(10), "the new network", || async {
        let text = c
            .find(Locator::Css(".flash"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.starts_with("Network").then_some(text)
    })
    .await;
    assert_eq!(flash, "Network checkout created with 10.16.0.0/24.");
    c.find(Locator::LinkText("view in the plan"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let title = eventually(
        Duration::from_secs(10),
        "the allocation on the pool map",
        || async {
            c.find(Locator::Css("rect.seg-allocated title"))
                .await
                .ok()?
                .html(true)
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(title, "allocated 10.16.0.0/24");
    browser.screenshot("network-on-plan").await;
    c.clone().close().await.unwrap();
}

/// The text of the element `css` once `ok` holds for it.
async fn text_when(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let ok = &ok;
    eventually(Duration::from_secs(10), what, || async move {
        let text = c.find(Locator::Css(css)).await.ok()?.text().await.ok()?;
        ok(&text).then_some(text)
    })
    .await
}

#[tokio::test]
async fn a_requester_asks_for_a_connection_and_both_leads_approve_it() {
    let app = spawn_app().await;
    let n = crate::connection_pages::networks(&app).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    // Rita of payments asks for payments ↔ search, watching the plan as she picks.
    dev_sign_in(
        &app,
        c,
        "rita@example.test",
        "Rita",
        "payments",
        "member",
        false,
    )
    .await;
    c.find(Locator::LinkText("Requests"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let new = eventually(Duration::from_secs(10), "the requests page", || async {
        c.find(Locator::LinkText("New request")).await.ok()
    })
    .await;
    new.click().await.unwrap();
    let kind = eventually(Duration::from_secs(10), "the request form", || async {
        c.find(Locator::Id("c-kind")).await.ok()
    })
    .await;
    kind.select_by_value("network-to-network").await.unwrap();
    c.find(Locator::Id("c-source"))
        .await
        .unwrap()
        .select_by_value(&n.payments)
        .await
        .unwrap();
    text_when(
        c,
        "#plan-preview",
        "the preview asking for a destination",
        |t| t.contains("To network: is required"),
    )
    .await;
    let destination = c.find(Locator::Id("c-destination")).await.unwrap();
    destination.select_by_value(&n.search).await.unwrap();
    let plan = text_when(c, "#plan-preview", "the VPC peering plan", |t| {
        t.contains("VPC peering")
    })
    .await;
    assert!(plan.contains("payments-prod--search-prod"), "{plan}");
    assert!(plan.contains("Plan hash"), "{plan}");
    // Fields of other kinds are out of the way.
    assert!(
        !c.find(Locator::Id("c-hostname"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    browser.screenshot("connection-preview").await;

    // billing's range overlaps payments': the plan gives way to the reason.
    destination.select_by_value(&n.billing).await.unwrap();
    let refusal = text_when(c, "#plan-preview", "the overlap refusal", |t| {
        t.contains("overlap")
    })
    .await;
    assert!(
        refusal.contains("10.1.0.0/16 (payments-prod) overlaps 10.1.128.0/20 (billing-prod)"),
        "{refusal}"
    );
    assert!(!refusal.contains("VPC peering"), "{refusal}");
    browser.screenshot("connection-overlap").await;

    destination.select_by_value(&n.search).await.unwrap();
    text_when(c, "#plan-preview", "the plan again", |t| {
        t.contains("VPC peering")
    })
    .await;
    c.find(Locator::Id("c-ports"))
        .await
        .unwrap()
        .send_keys("443")
        .await
        .unwrap();
    c.find(Locator::Id("c-reason"))
        .await
        .unwrap()
        .send_keys("checkout calls the search API")
        .await
        .unwrap();
    c.find(Locator::Css("form.request-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let flash = text_when(c, ".flash", "the new request's page", |t| {
        t.starts_with("Requested")
    })
    .await;
    assert!(flash.contains("payments-prod"), "{flash}");
    let url = c.current_url().await.unwrap();
    let id = url.path().strip_prefix("/connections/").unwrap().to_owned();
    let status = c
        .find(Locator::Id("status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(status, "waiting for approval");
    browser.screenshot("connection-requested").await;

    // Each team's lead approves from their queue with one click.
    for (email, name, team) in [
        ("paula@example.test", "Paula", "payments"),
        ("sam@example.test", "Sam", "search"),
    ] {
        dev_sign_in(&app, c, email, name, team, "lead", false).await;
        c.find(Locator::LinkText("Approvals"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let row = format!("#approval-{id}");
        let text = text_when(c, &row, "the request in the queue", |t| {
            t.contains("checkout calls the search API")
        })
        .await;
        assert!(text.contains("Rita"), "{text}");
        c.find(Locator::Css(&format!("{row} input[name=comment]")))
            .await
            .unwrap()
            .send_keys(&format!("fine for {team}"))
            .await
            .unwrap();
        c.find(Locator::Css(&format!("{row} button[hx-post$='/approve']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        text_when(c, &row, "the row saying it is approved", |t| {
            t.contains("Approved")
        })
        .await;
        browser.screenshot(&format!("approvals-{team}")).await;
    }

    // The request page: both approvals, and the timeline of what happened.
    c.find(Locator::Css(&format!("a[href='/connections/{id}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let sides = text_when(c, "#sides tbody", "both approvals", |t| {
        t.matches("approved").count() == 2
    })
    .await;
    assert!(
        sides.contains("Paula") && sides.contains("Sam") && sides.contains("fine for search"),
        "{sides}"
    );
    let timeline = c
        .find(Locator::Id("timeline"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(timeline.contains("requested by Rita"), "{timeline}");
    assert_eq!(timeline.matches("approved by").count(), 2, "{timeline}");
    assert!(timeline.contains("fine for payments"), "{timeline}");
    browser.screenshot("connection-approved").await;
    c.execute(
        "document.getElementById('timeline').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    browser.screenshot("connection-timeline").await;
    c.clone().close().await.unwrap();
}

/// After the last approval the request page shows provisioning advancing, step by
/// step, until the connection is active, without a reload.
#[tokio::test]
async fn the_request_page_shows_provisioning_live() {
    use switchboard::domain::team::Role;
    let app = spawn_app().await;
    let n = crate::connection_pages::networks(&app).await;
    // A slow sandbox: a second per item, so the steps arrive one by one.
    sqlx::query("UPDATE provider_accounts SET settings = '{\"latency_ms\": \"1000\"}'")
        .execute(&app.pool)
        .await
        .unwrap();
    let rita = app
        .team_token("rita@example.test", "payments", Role::Member, false)
        .await;
    let paula = app
        .team_token("paula@example.test", "payments", Role::Lead, false)
        .await;
    let (status, c) = crate::helpers::api_call(
        &app,
        &rita,
        reqwest::Method::POST,
        "/api/v1/connections",
        Some(
            json!({"kind": "network-to-network", "reason": "payments calls search",
                    "source_network_id": n.payments, "destination_network_id": n.search}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let (status, _) = crate::helpers::api_call(
        &app,
        &paula,
        reqwest::Method::POST,
        &format!("/api/v1/connections/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Sam, lead of search, gives the last approval in the browser.
    let browser = Browser::start().await;
    let c = &browser.client;
    dev_sign_in(&app, c, "sam@example.test", "Sam", "search", "lead", false).await;
    c.goto(&app.url(&format!("/connections/{id}")))
        .await
        .unwrap();
    let approve = eventually(Duration::from_secs(10), "the approve button", || async {
        c.find(Locator::Css("#approve-form button")).await.ok()
    })
    .await;
    approve.click().await.unwrap();
    let first = text_when(c, "#progress", "the progress of the work", |t| {
        t.contains("being set up") || t.contains("approved")
    })
    .await;
    assert!(!first.contains("Status: active"), "{first}");
    // From here on the page is not reloaded: a marker set now must survive.
    c.execute("window.stillTheSamePage = true", vec![])
        .await
        .unwrap();
    let done = text_when(c, "#progress", "the connection active", |t| {
        t.contains("Status: active")
    })
    .await;
    assert_eq!(done.matches("created").count(), 5, "{done}");
    let same = c
        .execute("return window.stillTheSamePage === true", vec![])
        .await
        .unwrap();
    assert_eq!(
        same,
        json!(true),
        "the page updated itself, without a reload"
    );
    let badge = c
        .find(Locator::Id("status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(badge, "active", "the badge at the top follows");
    c.execute(
        "document.getElementById('progress').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    browser.screenshot("connection-active-live").await;
    c.clone().close().await.unwrap();
}

/// The status dashboard follows the monitor without a reload: a connection
/// changed behind Switchboard's back turns `drifted` with its difference, then
/// `active` again once a lead repairs it.
#[tokio::test]
async fn the_dashboard_shows_a_connection_drifting_and_coming_back_after_a_repair() {
    use crate::helpers::{Options, spawn_app_with};
    let w = crate::connections::world(
        spawn_app_with(Options {
            scheduler: true,
            env: vec![("SWITCHBOARD_MONITOR_INTERVAL", "1".into())],
            ..Options::default()
        })
        .await,
    )
    .await;
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    crate::provisioning::approve_both(&w, &id).await;
    crate::provisioning::until_status(&w, &id, "active").await;

    let browser = Browser::start().await;
    let c = &browser.client;
    dev_sign_in(
        &w.app,
        c,
        &w.payments_lead_email,
        "Pat",
        "payments",
        "lead",
        false,
    )
    .await;
    c.goto(&w.app.url("/status")).await.unwrap();
    let row = format!("#row-{id}");
    text_when(c, &row, "the connection active on the dashboard", |t| {
        t.contains("active")
    })
    .await;
    c.execute("window.stillTheSamePage = true", vec![])
        .await
        .unwrap();

    // Someone deletes a route in the sandbox.
    sqlx::query(
        "DELETE FROM sandbox_resources WHERE connection_id = $1 AND kind = 'route' AND name LIKE '10.2.0.0/16%'",
    )
    .bind(uuid::Uuid::parse_str(&id).unwrap())
    .execute(&w.app.pool)
    .await
    .unwrap();
    let drifted = text_when(
        c,
        &row,
        "the connection drifted, with its difference",
        |t| t.contains("drifted") && t.contains("is missing"),
    )
    .await;
    assert!(drifted.contains("route 10.2.0.0/16"), "{drifted}");
    let count = c
        .find(Locator::Id("count-drifted"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "1");
    let same = c
        .execute("return window.stillTheSamePage === true", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the dashboard updated itself");

    // Its page leads with the drift, and home lists it as needing attention.
    c.goto(&w.app.url(&format!("/connections/{id}")))
        .await
        .unwrap();
    let banner = c
        .find(Locator::Id("banner"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(banner.starts_with("Drifted since "), "{banner}");
    assert!(banner.contains("route 10.2.0.0/16"), "{banner}");
    c.goto(&w.app.url("/")).await.unwrap();
    let home = text_when(c, "#home-day", "home", |t| t.contains("Needs attention")).await;
    assert!(
        home.contains("drifted") && home.contains("route 10.2.0.0/16"),
        "{home}"
    );
    c.goto(&w.app.url("/status")).await.unwrap();
    text_when(c, &row, "the dashboard again", |t| t.contains("drifted")).await;
    c.execute("window.stillTheSamePage = true", vec![])
        .await
        .unwrap();

    // A lead repairs it (from another tab: the API); the dashboard follows.
    crate::provisioning::repair_now(&w, &w.payments_lead, &id).await;
    text_when(c, &row, "the connection active again", |t| {
        t.contains("active") && !t.contains("is missing")
    })
    .await;
    let same = c
        .execute("return window.stillTheSamePage === true", vec![])
        .await
        .unwrap();
    assert_eq!(same, json!(true), "the dashboard updated itself");

    // The map shows it between the two teams.
    c.goto(&w.app.url("/map")).await.unwrap();
    c.find(Locator::Css(&format!(
        "a.map-edge[href='/connections/{id}']"
    )))
    .await
    .expect("the connection on the map");

    // A mistake in the member form is said at its field, what was typed kept.
    c.goto(&w.app.url("/teams/payments")).await.unwrap();
    c.find(Locator::Id("member-email"))
        .await
        .unwrap()
        .send_keys("not-an-address")
        .await
        .unwrap();
    c.find(Locator::Id("member-role"))
        .await
        .unwrap()
        .select_by_value("lead")
        .await
        .unwrap();
    c.find(Locator::Css(
        "form[action='/teams/payments/members'] button",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let summary = text_when(c, "#form-errors", "the member form's error", |t| {
        t.contains("Email")
    })
    .await;
    assert!(summary.contains("One thing to correct"), "{summary}");
    let at_field = c.find(Locator::Id("member-email-error")).await.unwrap();
    assert!(at_field.is_displayed().await.unwrap());
    let email = c.find(Locator::Id("member-email")).await.unwrap();
    assert_eq!(
        email.prop("value").await.unwrap().as_deref(),
        Some("not-an-address")
    );
    let role = c.find(Locator::Id("member-role")).await.unwrap();
    assert_eq!(role.prop("value").await.unwrap().as_deref(), Some("lead"));

    // Removing asks first: dismissed, nothing happens; accepted, it goes.
    c.goto(&w.app.url(&format!("/connections/{id}")))
        .await
        .unwrap();
    for accept in [false, true] {
        c.find(Locator::Css("#remove-form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let question = c.get_alert_text().await.unwrap();
        assert!(question.starts_with("Remove "), "{question}");
        if accept {
            c.accept_alert().await.unwrap();
        } else {
            c.dismiss_alert().await.unwrap();
            let status: String =
                sqlx::query_scalar("SELECT status FROM connections WHERE id = $1::uuid")
                    .bind(&id)
                    .fetch_one(&w.app.pool)
                    .await
                    .unwrap();
            assert_eq!(status, "active", "dismissed: nothing removed");
        }
    }
    text_when(c, "#banner", "the connection going", |t| {
        t.starts_with("Being removed") || t.starts_with("Removed on")
    })
    .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// Is the page wider than the window (something to scroll sideways to)? The
/// widths, and the outermost elements reaching past the window's edge.
async fn overflows(c: &Client) -> Option<(i64, i64, String)> {
    let widths = c
        .execute(
            "const w = document.documentElement.clientWidth;
             const past = [...document.querySelectorAll('body *')]
               .filter(e => e.getBoundingClientRect().right > w + 1)
               .filter(e => !e.parentElement.closest('table, pre') || e.matches('table, pre'))
               .slice(0, 4)
               .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                 + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/ +/).join('.') : ''));
             const texts = [];
             const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
             for (let t = walk.nextNode(); t; t = walk.nextNode()) {
               const r = document.createRange(); r.selectNodeContents(t);
               if (r.getBoundingClientRect().right > w + 1 && !t.parentElement.closest('table, pre'))
                 texts.push('text in ' + t.parentElement.tagName.toLowerCase() + ': ' + t.textContent.trim().slice(0, 40));
             }
             return [document.documentElement.scrollWidth, w, past.concat(texts.slice(0, 4)).join(' | ')]",
            vec![],
        )
        .await
        .unwrap();
    let (page, window) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
    (page > window).then(|| {
        (
            page,
            window,
            widths[2].as_str().unwrap_or_default().to_owned(),
        )
    })
}

/// A lead who is also an admin (the longest menu) goes through every main page
/// on a phone and on a desktop: nothing is wider than the window, the menu
/// folds behind a button on the phone, and the console stays free of errors.
/// Her home page lists what waits for her; what destroys asks first.
#[tokio::test]
async fn every_main_page_fits_a_phone_and_a_desktop_and_the_console_stays_clean() {
    let w = crate::connections::world(spawn_app().await).await;
    // An active connection with a change waiting for the leads.
    let active = w.request().await["id"].as_str().unwrap().to_owned();
    crate::provisioning::approve_both(&w, &active).await;
    crate::provisioning::until_status(&w, &active, "active").await;
    let (status, change) = w
        .call(
            &w.requester,
            reqwest::Method::POST,
            &format!("/api/v1/connections/{active}/changes"),
            Some(serde_json::json!({"ports": "443, 8443"})),
        )
        .await;
    assert_eq!(status, 201, "{change}");
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    let browser = Browser::start().await;
    let c = &browser.client;
    dev_sign_in(
        &w.app,
        c,
        &w.payments_lead_email,
        "Pat",
        "payments",
        "lead",
        true,
    )
    .await;

    // Home is her day: the request waiting for her decision comes first.
    c.goto(&w.app.url("/")).await.unwrap();
    let waiting = text_when(c, "#home-day", "the home dashboard", |t| {
        t.contains("Waiting for your decision")
    })
    .await;
    assert!(!waiting.contains("Nothing waits for you"), "{waiting}");
    c.find(Locator::Css(&format!(
        "#home-day a[href='/connections/{id}']"
    )))
    .await
    .expect("the waiting request links to its page");

    let pages = [
        "/".to_owned(),
        "/connections".to_owned(),
        format!("/connections/{id}"),
        format!("/connections/{id}/renew"),
        format!("/connections/{active}/change"),
        "/connections/new".to_owned(),
        "/approvals".to_owned(),
        "/status".to_owned(),
        "/networks".to_owned(),
        format!("/networks/{}", w.payments_net),
        "/map".to_owned(),
        "/address-plan".to_owned(),
        "/teams".to_owned(),
        "/teams/payments".to_owned(),
        "/me".to_owned(),
        "/admin/users".to_owned(),
        "/guardrails".to_owned(),
        "/reach?to=search-prod".to_owned(),
        "/admin/provider-accounts".to_owned(),
        "/admin/registrations".to_owned(),
        "/admin/sandbox".to_owned(),
        "/admin/audit".to_owned(),
        "/no-such-page".to_owned(),
    ];
    for (width, label) in [(1280, "desktop"), (390, "phone")] {
        c.set_window_size(width, 900).await.unwrap();
        for path in &pages {
            c.goto(&w.app.url(path)).await.unwrap();
            c.find(Locator::Css("main#main")).await.unwrap();
            assert_eq!(
                overflows(c).await,
                None,
                "{path} at {width} px is wider than the window"
            );
            let violations = browser.accessibility_violations().await;
            assert!(
                violations.is_empty(),
                "{path} at {width} px: {violations:#?}"
            );
            let shot = path.trim_matches('/').replace('/', "-");
            browser
                .screenshot(&format!(
                    "{label}-{}",
                    if shot.is_empty() { "home" } else { &shot }
                ))
                .await;
        }
        let mut errors = browser.console_errors().await;
        // The browser reports the missing page's own 404, and nothing else.
        errors.retain(|e| !e.contains("/no-such-page - Failed to load resource"));
        assert!(
            errors.is_empty(),
            "console errors at {width} px: {errors:#?}"
        );
    }

    // On the phone the menu folds: "Sign out" shows once the menu opens.
    let sign_out = c
        .find(Locator::Css("form[action='/auth/logout'] button"))
        .await
        .unwrap();
    let requests = c
        .find(Locator::Css("nav.main-nav a[href='/connections']"))
        .await
        .unwrap();
    assert!(!sign_out.is_displayed().await.unwrap(), "folded away");
    assert!(!requests.is_displayed().await.unwrap(), "folded away");
    c.find(Locator::Css("label.menu-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        sign_out.is_displayed().await.unwrap(),
        "shown in the open menu"
    );
    assert!(
        requests.is_displayed().await.unwrap(),
        "shown in the open menu"
    );
    assert_eq!(overflows(c).await, None, "the open menu fits");
    browser.screenshot("phone-menu-open").await;

    // On the desktop the whole menu and "Sign out" are on screen.
    c.set_window_size(1280, 900).await.unwrap();
    c.goto(&w.app.url("/")).await.unwrap();
    let right = c
        .execute(
            "return document.querySelector(\"form[action='/auth/logout'] button\").getBoundingClientRect().right <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(right, json!(true), "Sign out is on screen");

    // Revoking a token asks first, naming it; saying no changes nothing.
    c.goto(&w.app.url("/me")).await.unwrap();
    c.find(Locator::Id("token-name"))
        .await
        .unwrap()
        .send_keys("deploy-bot")
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/me/tokens'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_when(c, "main", "the new token", |t| t.contains("Your new token")).await;
    let revoke = "form[hx-confirm*='deploy-bot'] button";
    c.find(Locator::Css(revoke))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let question = c.get_alert_text().await.unwrap();
    assert!(
        question.contains("Revoke the token deploy-bot"),
        "{question}"
    );
    c.dismiss_alert().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        c.find(Locator::Css(revoke)).await.is_ok(),
        "still there after saying no"
    );
    c.find(Locator::Css(revoke))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert().await.unwrap();
    eventually(Duration::from_secs(10), "the token revoked", || async {
        c.find(Locator::Css(revoke)).await.is_err().then_some(())
    })
    .await;

    // A new pool with two mistakes: both at their fields, what was typed kept.
    c.goto(&w.app.url("/address-plan")).await.unwrap();
    for (field, text) in [
        ("pool-name", "lab"),
        ("pool-cidr", "10.300.0.0/16"),
        ("pool-len", "twenty"),
    ] {
        c.find(Locator::Id(field))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Css("form[action='/address-plan/pools'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let summary = text_when(c, "#form-errors", "the pool form's errors", |t| {
        t.contains("2 things to correct")
    })
    .await;
    assert!(
        summary.contains("CIDR") && summary.contains("Default prefix length"),
        "{summary}"
    );
    for field in ["pool-cidr", "pool-len"] {
        let error = c
            .find(Locator::Id(&format!("{field}-error")))
            .await
            .unwrap();
        assert!(error.is_displayed().await.unwrap(), "{field}");
    }
    let typed = c.find(Locator::Id("pool-len")).await.unwrap();
    assert_eq!(
        typed.prop("value").await.unwrap().as_deref(),
        Some("twenty")
    );
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// A member's day: she asks for a connection and forgets the reason (the
/// mistake is shown at its field, what she typed is kept), asks again, finds
/// the request on her home page and on the map, and cancels it after the
/// confirmation says what will happen.
#[tokio::test]
async fn a_member_asks_finds_her_request_on_home_and_the_map_and_cancels_it() {
    let w = crate::connections::world(spawn_app().await).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    dev_sign_in(
        &w.app,
        c,
        "rita@example.test",
        "Rita",
        "payments",
        "member",
        false,
    )
    .await;

    c.goto(&w.app.url("/connections/new")).await.unwrap();
    c.find(Locator::Id("c-kind"))
        .await
        .unwrap()
        .select_by_value("network-to-network")
        .await
        .unwrap();
    c.find(Locator::Id("c-source"))
        .await
        .unwrap()
        .select_by_value(&w.payments_net)
        .await
        .unwrap();
    c.find(Locator::Id("c-destination"))
        .await
        .unwrap()
        .select_by_value(&w.search_net)
        .await
        .unwrap();
    c.find(Locator::Id("c-ports"))
        .await
        .unwrap()
        .send_keys("443")
        .await
        .unwrap();
    let submit = "form.request-form button[type=submit]";
    c.find(Locator::Css(submit))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let summary = text_when(c, "main", "the refusal", |t| t.contains("to correct")).await;
    assert!(summary.contains("Why is it needed"), "{summary}");
    let at_field = c
        .find(Locator::Id("c-reason-error"))
        .await
        .expect("the error at the reason field");
    assert!(at_field.is_displayed().await.unwrap());
    let ports = c.find(Locator::Id("c-ports")).await.unwrap();
    assert_eq!(
        ports.prop("value").await.unwrap().as_deref(),
        Some("443"),
        "kept"
    );
    browser.screenshot("member-form-error").await;

    c.find(Locator::Id("c-reason"))
        .await
        .unwrap()
        .send_keys("checkout calls search")
        .await
        .unwrap();
    c.find(Locator::Css(submit))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let banner = text_when(c, "#banner", "the new request", |t| t.contains("Waiting")).await;
    assert!(banner.starts_with("Waiting for a lead of"), "{banner}");
    let url = c.current_url().await.unwrap();
    let id = url.path().trim_start_matches("/connections/").to_owned();

    c.goto(&w.app.url("/")).await.unwrap();
    c.find(Locator::Css(&format!(
        "#home-day a[href='/connections/{id}']"
    )))
    .await
    .expect("her request on her home page");
    c.goto(&w.app.url("/map")).await.unwrap();
    c.find(Locator::Css(&format!(
        "a.map-edge[href='/connections/{id}']"
    )))
    .await
    .expect("her request on the map");

    c.goto(&w.app.url(&format!("/connections/{id}")))
        .await
        .unwrap();
    c.find(Locator::Css("#cancel-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let question = c.get_alert_text().await.unwrap();
    assert!(
        question.starts_with("Cancel the request for "),
        "{question}"
    );
    c.accept_alert().await.unwrap();
    text_when(c, "#banner", "the request cancelled", |t| {
        t.starts_with("Cancelled")
    })
    .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
