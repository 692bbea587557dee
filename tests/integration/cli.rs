//! The command-line client, run as a user runs it, against a real portal.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::helpers::{TestApp, api_call, spawn_app};

/// Runs the binary with only `env` (and a HOME without a config file).
pub(crate) async fn switchboard(env: &[(&str, &str)], args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Someone with a token for the test portal, in SWITCHBOARD_URL and SWITCHBOARD_TOKEN.
struct User<'a> {
    app: &'a TestApp,
    token: String,
}

impl User<'_> {
    async fn run(&self, args: &[&str]) -> Output {
        let env = [
            ("SWITCHBOARD_URL", self.app.address.as_str()),
            ("SWITCHBOARD_TOKEN", self.token.as_str()),
        ];
        switchboard(&env, args).await
    }

    /// Stdout of a command that must succeed.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "switchboard {}: {}",
            args.join(" "),
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The parsed output of a command run with `--output json`.
    async fn json(&self, args: &[&str]) -> Value {
        let args: Vec<&str> = ["--output", "json"].iter().chain(args).copied().collect();
        let text = self.ok(&args).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Every line's cell under `header` starts in the header's column.
fn assert_aligned(table: &str, header: &str) {
    let lines: Vec<&str> = table.lines().collect();
    let at = 1 + lines[0].find(&format!(" {header}")).expect("the header");
    for line in &lines[1..] {
        assert!(
            line.as_bytes()[at - 1] == b' ' && line.as_bytes()[at] != b' ',
            "{header} is not aligned:\n{table}"
        );
    }
}

#[tokio::test]
async fn admins_build_the_plan_and_allocate_from_the_command_line() {
    let app = spawn_app().await;
    let admin = User {
        app: &app,
        token: app.token("cli-admin@example.test", true).await,
    };

    let corp = admin
        .ok(&["pool", "create", "--name", "corp", "--cidr", "10.0.0.0/8"])
        .await;
    assert!(corp.contains("10.0.0.0/8"), "{corp}");
    admin
        .ok(&[
            "pool",
            "create",
            "--name",
            "eu-west",
            "--cidr",
            "10.16.0.0/12",
            "--parent",
            "corp",
            "--label",
            "region=eu-west-1",
            "--default-prefix-length",
            "24",
        ])
        .await;
    let prod = admin
        .json(&[
            "pool",
            "create",
            "--name",
            "prod",
            "--cidr",
            "10.16.0.0/16",
            "--parent",
            "corp/eu-west",
            "--label",
            "environment=prod",
        ])
        .await;
    assert_eq!(prod["labels"], json!({"environment": "prod"}));
    let prod_id = prod["id"].as_str().unwrap();

    // An allocation by the pool's path; the same idempotency key gives it again.
    let first = admin
        .ok(&[
            "pool",
            "allocate",
            "corp/eu-west/prod",
            "--size",
            "24",
            "--idempotency-key",
            "deploy-42",
            "--description",
            "build farm",
        ])
        .await;
    assert!(first.contains("10.16.0.0/24"), "{first}");
    let again = admin
        .json(&["pool", "allocate", "prod", "--idempotency-key", "deploy-42"])
        .await;
    assert_eq!(again["cidr"], "10.16.0.0/24");
    let allocation_id = again["id"].as_str().unwrap();
    assert!(first.contains(allocation_id), "{first}");
    let reserved = admin
        .json(&["pool", "allocate", prod_id, "--reserve-seconds", "3600"])
        .await;
    assert_eq!(reserved["cidr"], "10.16.1.0/24");
    assert!(reserved["reserved_until"].is_string(), "{reserved}");

    // As JSON: the API's pools with their ids. As a table: paths, labels, usage.
    let pools = admin.json(&["pool", "list"]).await;
    let pools = pools.as_array().unwrap();
    assert_eq!(pools.len(), 3);
    assert!(
        pools
            .iter()
            .all(|p| uuid::Uuid::parse_str(p["id"].as_str().unwrap()).is_ok())
    );
    let table = admin.ok(&["pool", "list"]).await;
    assert!(table.starts_with("PATH "), "{table}");
    for header in ["CIDR", "LABELS", "USED"] {
        assert_aligned(&table, header);
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("corp/eu-west/prod "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("10.16.0.0/16"), "{row}");
    assert!(row.contains("environment=prod"), "{row}");
    assert!(row.ends_with("0.8%"), "two /24 of a /16: {row}");

    let show = admin.ok(&["pool", "show", "eu-west/prod"]).await;
    assert!(show.contains("build farm"), "{show}");
    assert!(
        show.contains("10.16.2.0/23"),
        "the free blocks are listed: {show}"
    );
    let available = admin
        .ok(&["pool", "available", "eu-west/prod", "--size", "24"])
        .await;
    assert!(available.contains("254 × /24"), "{available}");
    assert!(available.contains("10.16.2.0/24"), "{available}");

    let released = admin.ok(&["pool", "release", allocation_id]).await;
    assert!(released.contains(allocation_id), "{released}");
    let detail = admin.json(&["pool", "show", prod_id]).await;
    assert_eq!(detail["allocations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn team_members_create_networks_from_a_pool_path() {
    let app = spawn_app().await;
    let admin = app.token("cli-net-admin@example.test", true).await;
    use reqwest::Method as M;
    let (_, corp) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(json!({"name": "corp", "cidr": "10.0.0.0/8"})),
    )
    .await;
    let (_, eu) = api_call(&app, &admin, M::POST, "/api/v1/pools",
        Some(json!({"name": "eu-west", "cidr": "10.16.0.0/12", "parent_id": corp["id"], "labels": {"region": "eu-west-1"}}))).await;
    let (status, _) = api_call(
        &app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(json!({"name": "prod", "cidr": "10.16.0.0/16", "parent_id": eu["id"]})),
    )
    .await;
    assert_eq!(status, 201);
    // The account the team uses is moto's: the network is built there.
    let (status, _) = api_call(&app, &admin, M::POST, "/api/v1/provider-accounts",
        Some(json!({"kind": "aws", "name": "aws-prod", "regions": ["eu-west-1", "us-east-1"],
                    "settings": {"endpoint_url": crate::moto::url()}, "credentials_ref": crate::moto::credentials_ref()}))).await;
    assert_eq!(status, 201);
    let member = User {
        app: &app,
        token: app.member_token("cli-pay@example.test", "payments").await,
    };

    // The account is the only one; the region is the label of the pool's parent.
    let created = member
        .ok(&[
            "network",
            "create",
            "--team",
            "payments",
            "--pool",
            "eu-west/prod",
            "--size",
            "24",
            "--name",
            "api",
            "--tag",
            "owner=pay",
        ])
        .await;
    for expected in [
        "10.16.0.0/24",
        "payments",
        "aws-prod",
        "eu-west-1",
        "owner=pay",
    ] {
        assert!(created.contains(expected), "{expected}: {created}");
    }

    let listed = member
        .json(&["network", "list", "--team", "payments"])
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["prefixes"][0]["cidr"], "10.16.0.0/24");
    let id = listed[0]["id"].as_str().unwrap();
    let table = member.ok(&["network", "list"]).await;
    assert!(table.starts_with("NAME "), "{table}");
    for header in ["TEAM", "PROVIDER", "REGION", "PREFIXES", "ID"] {
        assert_aligned(&table, header);
    }
    let row = table.lines().nth(1).unwrap();
    assert!(row.starts_with("api ") && row.contains("10.16.0.0/24") && row.ends_with(id));
    let elsewhere = member
        .ok(&["network", "list", "--region", "us-east-1"])
        .await;
    assert_eq!(elsewhere.lines().count(), 1, "only the header: {elsewhere}");

    // A path that names no pool is refused, naming the flag; nothing is created.
    let before = count(&app, "networks").await;
    let out = member
        .run(&[
            "network",
            "create",
            "--team",
            "payments",
            "--pool",
            "eu-west/staging",
            "--name",
            "web",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("switchboard: --pool: no pool is called \"eu-west/staging\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&app, "networks").await, before);

    // An existing VPC of the team (tagged so) is registered in the pool that contains it.
    let ec2 = crate::moto::ec2("eu-west-1");
    let legacy_vpc = crate::moto::vpc(&ec2, "10.16.200.0/24").await;
    ec2.create_tags()
        .resources(&legacy_vpc)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("switchboard:team")
                .value("payments")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let registered = member
        .json(&[
            "network",
            "register",
            "--team",
            "payments",
            "--name",
            "legacy",
            "--cidr",
            "10.16.200.0/24",
            "--region",
            "eu-west-1",
            "--external-id",
            &legacy_vpc,
        ])
        .await;
    assert_eq!(registered["prefixes"][0]["cidr"], "10.16.200.0/24");
    assert_eq!(registered["external_id"], legacy_vpc.as_str());
    assert_eq!(registered["region"], "eu-west-1");

    let out = member
        .run(&[
            "network",
            "register",
            "--team",
            "payments",
            "--name",
            "other",
            "--cidr",
            "10.16.201.0/24",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "two regions to choose from");
    assert!(
        stderr(&out).contains("--region is required"),
        "{}",
        stderr(&out)
    );

    let shown = member.ok(&["network", "show", id]).await;
    assert!(shown.contains("owner=pay"), "{shown}");
    let removing = member.ok(&["network", "delete", id]).await;
    assert!(
        removing.contains("Switchboard removes what it built"),
        "{removing}"
    );
    let left = crate::helpers::eventually(
        std::time::Duration::from_secs(30),
        "the built network removed",
        || async {
            let left = member.json(&["network", "list"]).await;
            (left.as_array().unwrap().len() == 1).then_some(left)
        },
    )
    .await;
    assert_eq!(left[0]["name"], "legacy");

    // An account without usable credentials cannot build the network.
    let (status, _) = api_call(&app, &admin, M::POST, "/api/v1/provider-accounts",
        Some(json!({"kind": "aws", "name": "aws-broken", "regions": ["eu-west-1"], "credentials_ref": "env:AWS_NOWHERE"}))).await;
    assert_eq!(status, 201);
    let out = member
        .run(&[
            "network",
            "create",
            "--team",
            "payments",
            "--pool",
            "eu-west/prod",
            "--size",
            "24",
            "--name",
            "broken",
            "--account",
            "aws-broken",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("AWS_NOWHERE_ACCESS_KEY_ID is not set"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn mistakes_are_said_plainly_with_exit_codes_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.token("cli-errors@example.test", true).await;
    let admin = User {
        app: &app,
        token: token.clone(),
    };
    admin
        .ok(&["pool", "create", "--name", "corp", "--cidr", "10.0.0.0/8"])
        .await;

    // A bad size: the API's field, the flag that set it, exit code 1, nothing allocated.
    let out = admin
        .run(&["pool", "allocate", "corp", "--size", "99"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("switchboard: invalid request: prefix_length (--size): must be"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(count(&app, "allocations").await, 0);
    let out = admin
        .run(&[
            "pool",
            "create",
            "--name",
            "x",
            "--cidr",
            "10.1.0.0/16",
            "--label",
            "region",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed flag is a usage error"
    );

    // Client verbs ignore the server's configuration, even a broken one.
    let url = app.address.as_str();
    let out = switchboard(
        &[
            ("SWITCHBOARD_URL", url),
            ("SWITCHBOARD_TOKEN", &token),
            ("SWITCHBOARD_BIND", "nonsense"),
        ],
        &["pool", "list"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));

    let out = switchboard(&[("SWITCHBOARD_URL", url)], &["pool", "list"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("switchboard: no API token: set SWITCHBOARD_TOKEN"),
        "{}",
        stderr(&out)
    );
    let out = switchboard(
        &[
            ("SWITCHBOARD_URL", url),
            ("SWITCHBOARD_TOKEN", "sbp_not-a-real-token"),
        ],
        &["pool", "list"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("API token"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("sbp_not-a-real-token"));

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let out = switchboard(
        &[("SWITCHBOARD_URL", &dead), ("SWITCHBOARD_TOKEN", &token)],
        &["network", "list"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "switchboard: could not reach the portal at {dead} ("
        )),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains(&token), "{err}");

    // The config file: refused while others may read it, used once it is private.
    let dir = std::env::temp_dir().join(format!("sb-cli-{}", uuid::Uuid::new_v4().simple()));
    let file = dir.join("switchboard").join("config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!("# the test portal\nserver = \"{url}\"\ntoken = \"{token}\"\n"),
    )
    .unwrap();
    let chmod = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let xdg = [("XDG_CONFIG_HOME", dir.to_str().unwrap())];
    chmod(&file, 0o644);
    let out = switchboard(&xdg, &["pool", "list"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("permissions 0644"), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", file.display())),
        "{err}"
    );
    assert!(!err.contains(&token));
    chmod(&file, 0o600);
    let out = switchboard(&xdg, &["pool", "list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.0.0.0/8"));

    // A broken file is located without being quoted (it may hold the token).
    std::fs::write(&file, "token = \"sbp_secret-in-the-file\n").unwrap();
    let out = switchboard(&xdg, &["pool", "list"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("config.toml, line 1:"), "{err}");
    assert!(!err.contains("sbp_secret"), "{err}");
    let missing = dir.join("missing.toml");
    let out = switchboard(
        &[("SWITCHBOARD_CONFIG", missing.to_str().unwrap())],
        &["pool", "list"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A requester and a lead in payments, a lead in search; networks payments/prod,
/// search/prod and search/index in one sandbox account.
async fn connection_people(app: &TestApp) -> (User<'_>, User<'_>, User<'_>) {
    use reqwest::Method as M;
    use switchboard::domain::team::Role;
    let admin = app.token("cli-conn-admin@example.test", true).await;
    let (status, space) = api_call(
        app,
        &admin,
        M::POST,
        "/api/v1/pools",
        Some(json!({"name": "corp", "cidr": "10.0.0.0/8"})),
    )
    .await;
    assert_eq!(status, 201, "{space}");
    let (status, account) = api_call(
        app,
        &admin,
        M::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "sandbox", "name": "demo", "regions": ["local"]})),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let requester = User {
        app,
        token: app.member_token("cli-rita@example.test", "payments").await,
    };
    let payments_lead = User {
        app,
        token: app
            .team_token("cli-pat@example.test", "payments", Role::Lead, false)
            .await,
    };
    let search_lead = User {
        app,
        token: app
            .team_token("cli-sam@example.test", "search", Role::Lead, false)
            .await,
    };
    // The teams exist once their people do.
    for (team, name, cidr) in [
        ("payments", "prod", "10.1.0.0/16"),
        ("search", "prod", "10.2.0.0/16"),
        ("search", "index", "10.3.0.0/16"),
    ] {
        let (status, net) = api_call(app, &admin, M::POST, "/api/v1/networks",
            Some(json!({"name": name, "team": team, "provider_account_id": account["id"], "region": "local", "cidr": cidr}))).await;
        assert_eq!(status, 201, "{net}");
    }
    (requester, payments_lead, search_lead)
}

#[tokio::test]
async fn connections_are_requested_by_network_name_and_approved_by_both_leads() {
    let app = spawn_app().await;
    // Nothing is built here: the request stays `approved` for `show` to say so.
    app.stop_workers().await;
    let (requester, payments_lead, search_lead) = connection_people(&app).await;

    // By team/name, and by a name only one team uses.
    let requested = requester
        .ok(&[
            "connection",
            "request",
            "--kind",
            "network-to-network",
            "--from",
            "payments/prod",
            "--to",
            "index",
            "--protocol",
            "tcp",
            "--ports",
            "443",
            "--reason",
            "payments calls search",
        ])
        .await;
    for expected in [
        "pending_approval",
        "VPC peering (vpc-peering)",
        "payments calls search",
        "ROUTE IN",
        "a lead of each of payments, search must approve it",
    ] {
        assert!(requested.contains(expected), "{expected}: {requested}");
    }

    let listed = requester.json(&["connection", "list"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["status"], "pending_approval");
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let id = id.as_str();
    let table = payments_lead.ok(&["connection", "list"]).await;
    assert!(table.starts_with("ID "), "{table}");
    for header in ["STATUS", "KIND", "REQUESTED BY", "REQUESTED", "SUMMARY"] {
        assert_aligned(&table, header);
    }
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with(id) && row.contains("pending_approval") && row.contains("cli-rita@"),
        "{row}"
    );
    let none = requester
        .ok(&["connection", "list", "--status", "approved"])
        .await;
    assert_eq!(none.lines().count(), 1, "only the header: {none}");

    let shown = requester.json(&["connection", "show", id]).await;
    let hash = shown["plan_hash"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("v2:") && hash.len() == 3 + 64, "{hash}");
    assert_eq!(shown["plan"]["mechanism"], "vpc-peering");
    assert_eq!(shown["events"][0]["action"], "connection.requested");
    let text = requester.ok(&["connection", "show", id]).await;
    for expected in [
        "Status        pending_approval".into(),
        format!("Plan hash     {hash}"),
        "Requested by  cli-rita@example.test".into(),
        "payments calls search".into(),
        "ROUTE IN".into(),
        "REJECTED".into(),
        "waiting".into(),
        "requested".into(),
    ] {
        assert!(text.contains(&expected), "{expected}: {text}");
    }

    // The requester cannot approve their own request.
    let out = requester.run(&["connection", "approve", id]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("switchboard: you requested this connection"),
        "{}",
        stderr(&out)
    );

    // One lead, then the other: approved, both sides on the plan shown.
    let first = payments_lead
        .ok(&["connection", "approve", id, "--comment", "fine by payments"])
        .await;
    assert!(first.contains("pending_approval"), "{first}");
    assert!(first.contains("Waiting for  search"), "{first}");
    assert!(first.contains(&hash), "{first}");
    let second = search_lead.json(&["connection", "approve", id]).await;
    assert_eq!(second["status"], "approved", "{second}");

    let text = requester.ok(&["connection", "show", id]).await;
    assert!(text.contains("Status        approved"), "{text}");
    let sides: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("payments ") || l.starts_with("search "))
        .collect();
    assert_eq!(sides.len(), 2, "{text}");
    assert!(
        sides
            .iter()
            .all(|s| s.contains(" approved ") && s.contains(&hash[..12])),
        "{text}"
    );
    assert!(text.contains("\"fine by payments\""), "{text}");
    assert!(
        text.contains("pending_approval → approved, for search"),
        "{text}"
    );
    let shown = requester.json(&["connection", "show", id]).await;
    let actions: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "connection.requested",
            "connection.approved",
            "connection.approved"
        ]
    );
}

#[tokio::test]
async fn connection_mistakes_name_the_flag_and_dry_runs_save_nothing() {
    let app = spawn_app().await;
    let (requester, _, search_lead) = connection_people(&app).await;
    let ask = |from: &'static str, to: &'static str, ports: &'static str| {
        vec![
            "connection",
            "request",
            "--kind",
            "network-to-network",
            "--from",
            from,
            "--to",
            to,
            "--ports",
            ports,
            "--reason",
            "r",
        ]
    };

    // A bad port: the API's field, the flag, exit code 1, nothing saved.
    let out = requester
        .run(&ask("payments/prod", "search/index", "443,99999"))
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("switchboard: invalid request: ports (--ports): \"99999\" is not a port"),
        "{err}"
    );
    // A name two teams use, and a name nobody uses.
    let out = requester.run(&ask("prod", "index", "443")).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "switchboard: --from: several teams have a network called \"prod\": payments/prod, \
         search/prod; say which with team/name\n"
    );
    let out = requester.run(&ask("payments/prod", "nowhere", "443")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("switchboard: --to: no network is called \"nowhere\""),
        "{}",
        stderr(&out)
    );
    // Flags of another kind are refused before anything is sent.
    let out = requester
        .run(&[
            "connection",
            "request",
            "--kind",
            "dns-record",
            "--from",
            "index",
            "--reason",
            "r",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--from does not apply to --kind dns-record"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&app, "connections").await, 0);

    // A dry run shows the plan and saves nothing (no --reason needed).
    let dry = requester
        .ok(&[
            "connection",
            "request",
            "--kind",
            "network-to-network",
            "--from",
            "payments/prod",
            "--to",
            "search/index",
            "--dry-run",
        ])
        .await;
    assert!(dry.starts_with("Dry run: nothing was saved"), "{dry}");
    assert!(dry.contains("VPC peering (vpc-peering)"), "{dry}");
    assert!(dry.contains("ROUTE IN"), "{dry}");
    // An opening into search's network alone: search's people may ask for it, and
    // the dry run says so to anyone else before anything is typed in vain.
    let opening = [
        "connection",
        "request",
        "--kind",
        "firewall-opening",
        "--from-cidr",
        "203.0.113.0/24",
        "--to",
        "index",
        "--ports",
        "443",
        "--dry-run",
    ];
    let out = requester.run(&opening).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("only members of search (or an admin) may ask for this"),
        "{}",
        stderr(&out)
    );
    let plan = search_lead.json(&opening).await;
    assert!(plan["mechanism"].is_string(), "{plan}");
    assert!(
        plan["rules"].as_array().is_some_and(|r| !r.is_empty()),
        "{plan}"
    );
    assert_eq!(count(&app, "connections").await, 0);

    // Reject needs a comment; a stale plan hash approves nothing; the requester cancels.
    let c = requester
        .json(&ask("payments/prod", "search/index", "443"))
        .await;
    let id = c["id"].as_str().unwrap();
    let out = search_lead.run(&["connection", "reject", id]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = search_lead
        .run(&["connection", "approve", id, "--plan-hash", "0000"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the plan changed"),
        "{}",
        stderr(&out)
    );
    let rejected = search_lead
        .ok(&["connection", "reject", id, "--comment", "use the gateway"])
        .await;
    assert!(rejected.contains("Status    rejected"), "{rejected}");
    let c = requester
        .json(&ask("payments/prod", "index", "8000-8100"))
        .await;
    let id = c["id"].as_str().unwrap();
    let cancelled = requester.ok(&["connection", "cancel", id]).await;
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    let statuses: Vec<String> = requester
        .json(&["connection", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .collect();
    let mut statuses = statuses;
    statuses.sort();
    assert_eq!(statuses, ["cancelled", "rejected"]);
}

#[tokio::test]
async fn admins_change_the_sandbox_behind_switchboards_back_from_the_command_line() {
    let w = crate::connections::world(spawn_app().await).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    crate::provisioning::approve_both(&w, id).await;
    crate::provisioning::until_status(&w, id, "active").await;
    let admin = User {
        app: &w.app,
        token: w.app.token("root@example.test", true).await,
    };
    let table = admin.ok(&["sandbox", "list", "--connection", id]).await;
    assert_aligned(&table, "KIND");
    assert_eq!(
        table.lines().count(),
        6,
        "a header and five resources: {table}"
    );
    let listed = admin.json(&["sandbox", "list", "--connection", id]).await;
    let route = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "route")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = admin
        .ok(&["sandbox", "change", &route, "--detail", "sent elsewhere"])
        .await;
    assert!(out.contains("sent elsewhere"), "{out}");
    let out = admin
        .run(&["sandbox", "change", &route, "--detail", ""])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("detail"), "{}", stderr(&out));
    let out = admin.ok(&["sandbox", "delete", &route]).await;
    assert!(
        out.contains(&format!("Deleted sandbox resource {route}")),
        "{out}"
    );
    let listed = admin.json(&["sandbox", "list", "--connection", id]).await;
    assert_eq!(listed.as_array().unwrap().len(), 4);
    // Not for a team member.
    let member = User {
        app: &w.app,
        token: w.requester.clone(),
    };
    let out = member.run(&["sandbox", "list"]).await;
    assert_eq!(out.status.code(), Some(1));

    // A lead chooses what happens when it drifts, and repairs it.
    let lead = User {
        app: &w.app,
        token: w.payments_lead.clone(),
    };
    let out = lead
        .run(&["connection", "repair-mode", id, "sometimes"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("repair"), "{}", stderr(&out));
    let out = lead.ok(&["connection", "repair-mode", id, "auto"]).await;
    assert!(out.contains("auto"), "{out}");
    let out = lead.ok(&["connection", "repair", id]).await;
    assert!(out.contains("Repair queued"), "{out}");
    let shown = lead.ok(&["connection", "show", id]).await;
    assert!(
        shown.contains("On drift") && shown.contains("auto"),
        "{shown}"
    );
}

#[tokio::test]
async fn connection_lists_come_a_page_at_a_time_or_all_at_once_with_filters() {
    let app = spawn_app().await;
    app.stop_workers().await;
    let (requester, _, _) = connection_people(&app).await;
    for reason in ["one", "two", "three"] {
        requester
            .ok(&[
                "connection",
                "request",
                "--kind",
                "network-to-network",
                "--from",
                "payments/prod",
                "--to",
                "index",
                "--reason",
                reason,
            ])
            .await;
    }
    let first = requester.ok(&["connection", "list", "--limit", "2"]).await;
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 4, "header, two rows, how to go on: {first}");
    let cursor = lines[3]
        .strip_prefix("More: add --cursor ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{first}"));
    let rest = requester
        .ok(&["connection", "list", "--limit", "2", "--cursor", cursor])
        .await;
    assert_eq!(rest.lines().count(), 2, "header and the last one: {rest}");
    assert!(!rest.contains("More:"), "{rest}");

    let all = requester.json(&["connection", "list", "--all"]).await;
    let reasons: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["three", "two", "one"], "newest first");

    let filtered = requester
        .json(&[
            "connection",
            "list",
            "--all",
            "--team",
            "search",
            "--kind",
            "dns-record",
        ])
        .await;
    assert_eq!(filtered, json!([]));
    let out = requester
        .run(&["connection", "list", "--created-after", "last tuesday"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("created_after"), "{}", stderr(&out));
}

#[tokio::test]
async fn people_teams_tokens_and_the_audit_are_managed_from_the_command_line() {
    let app = spawn_app().await;
    app.stop_workers().await;
    let admin = User {
        app: &app,
        token: app.token("cli-root@example.test", true).await,
    };
    let ada = User {
        app: &app,
        token: app.token("cli-ada@example.test", false).await,
    };

    // An admin makes a team and makes Ada its lead; she adds someone else.
    let out = admin
        .ok(&["team", "create", "billing", "--name", "Billing"])
        .await;
    assert!(out.contains("Created team billing"), "{out}");
    admin
        .ok(&[
            "team",
            "member",
            "set",
            "billing",
            "cli-ada@example.test",
            "--role",
            "lead",
        ])
        .await;
    app.token("cli-bob@example.test", false).await;
    let out = ada
        .ok(&["team", "member", "set", "billing", "cli-bob@example.test"])
        .await;
    assert!(out.contains("member of billing"), "{out}");
    let shown = ada.ok(&["team", "show", "billing"]).await;
    assert!(
        shown.contains("cli-ada@example.test") && shown.contains("cli-bob@example.test"),
        "{shown}"
    );
    let listed = ada.json(&["team", "list"]).await;
    let billing = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "billing")
        .cloned()
        .unwrap();
    assert_eq!(
        (billing["members"].clone(), billing["leads"].clone()),
        (json!(2), json!(1))
    );
    // A wrong role is named; nothing changes.
    let out = ada
        .run(&[
            "team",
            "member",
            "set",
            "billing",
            "cli-bob@example.test",
            "--role",
            "boss",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("role"), "{}", stderr(&out));
    // Removed by email address.
    ada.ok(&[
        "team",
        "member",
        "remove",
        "billing",
        "cli-bob@example.test",
    ])
    .await;
    let team = ada.json(&["team", "show", "billing"]).await;
    assert_eq!(team["members"].as_array().unwrap().len(), 1, "{team}");

    // Ada's tokens: a new one works at once, and stops when revoked.
    let made = ada
        .json(&["token", "create", "ci", "--expires-in-days", "30"])
        .await;
    let secret = made["token"].as_str().unwrap().to_owned();
    let ci = User {
        app: &app,
        token: secret,
    };
    ci.ok(&["token", "list"]).await;
    let list = ada.ok(&["token", "list"]).await;
    assert!(
        list.contains("ci") && !list.contains(made["token"].as_str().unwrap()),
        "{list}"
    );
    ada.ok(&["token", "revoke", made["id"].as_str().unwrap()])
        .await;
    assert_eq!(ci.run(&["token", "list"]).await.status.code(), Some(1));

    // Her mail, one kind at a time.
    let prefs = ada.json(&["notifications", "set", "--drift", "off"]).await;
    assert_eq!(prefs["drift"], json!(false), "{prefs}");
    assert_eq!(
        ada.json(&["notifications", "show"]).await["drift"],
        json!(false)
    );
    let out = ada.run(&["notifications", "set"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing to change is a usage error"
    );

    // Admins only: the people, their sessions, the audit, the accounts.
    let users = admin.ok(&["user", "list"]).await;
    assert!(users.contains("cli-ada@example.test"), "{users}");
    assert_eq!(ada.run(&["user", "list"]).await.status.code(), Some(1));
    let ada_id = admin
        .json(&["user", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "cli-ada@example.test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = admin.json(&["user", "revoke-sessions", &ada_id]).await;
    assert_eq!(ended["ended"], json!(0), "{ended}");
    let audit = admin
        .ok(&["audit", "--object-type", "team", "--limit", "1"])
        .await;
    assert!(
        audit.contains("Older: add --cursor"),
        "one entry per page: {audit}"
    );
    let audit = admin.json(&["audit", "--object-id", "billing"]).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"].as_str().unwrap().contains("member")),
        "{audit}"
    );
    assert_eq!(ada.run(&["audit"]).await.status.code(), Some(1));
    admin
        .ok(&[
            "account", "create", "--kind", "sandbox", "--name", "demo", "--region", "local",
        ])
        .await;
    let accounts = ada.ok(&["account", "list"]).await;
    assert!(
        accounts.contains("demo") && accounts.contains("local"),
        "{accounts}"
    );
    let out = admin
        .run(&[
            "account",
            "create",
            "--kind",
            "sandbox",
            "--name",
            "x",
            "--settings",
            "[1]",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--settings"), "{}", stderr(&out));

    // Nothing waits for Ada; the status board in numbers.
    let waiting = ada.ok(&["connection", "approvals"]).await;
    assert!(waiting.contains("Nothing waits"), "{waiting}");
    let status = ada.json(&["status"]).await;
    assert!(status["counts"].is_object(), "{status}");
}

#[tokio::test]
async fn a_connection_is_renewed_from_the_command_line_by_the_requesters_lead() {
    let app = spawn_app().await;
    app.stop_workers().await;
    let (requester, payments_lead, search_lead) = connection_people(&app).await;
    let requested = requester
        .json(&[
            "connection",
            "request",
            "--kind",
            "network-to-network",
            "--from",
            "payments/prod",
            "--to",
            "index",
            "--ports",
            "443",
            "--reason",
            "load test",
            "--expires-in-hours",
            "12",
        ])
        .await;
    let id = requested["id"].as_str().unwrap().to_owned();

    // More than the maximum names the flag's field and the maximum; nothing changes.
    let out = requester
        .run(&["connection", "renew", &id, "--days", "200"])
        .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("90 days"), "{}", stderr(&out));

    // Rita's renewal waits; the other side's lead may not decide it.
    let asked = requester
        .ok(&[
            "connection",
            "renew",
            &id,
            "--days",
            "30",
            "--comment",
            "moved",
        ])
        .await;
    assert!(
        asked.contains("pending: a lead of the requester's team decides"),
        "{asked}"
    );
    let renewal = requester.json(&["connection", "renewals", &id]).await;
    assert_eq!(renewal[0]["status"], "pending", "{renewal}");
    let renewal_id = renewal[0]["id"].as_str().unwrap().to_owned();
    let refused = search_lead
        .run(&["connection", "approve-renewal", &renewal_id])
        .await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("requester's team"),
        "{}",
        stderr(&refused)
    );

    // Her lead approves it; the table shows it decided.
    let approved = payments_lead
        .ok(&[
            "connection",
            "approve-renewal",
            &renewal_id,
            "--comment",
            "ok",
        ])
        .await;
    assert!(approved.contains("approved"), "{approved}");
    let table = requester.ok(&["connection", "renewals", &id]).await;
    assert!(table.starts_with("RENEWAL "), "{table}");
    assert_aligned(&table, "STATUS");
    assert!(
        table.lines().nth(1).unwrap().contains("approved"),
        "{table}"
    );
    let expires: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT expires_at FROM connections WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let in_30_days = chrono::Utc::now() + chrono::Duration::days(30);
    assert!((expires - in_30_days).num_minutes().abs() < 5, "{expires}");

    // A rejection needs its reason.
    let out = payments_lead
        .run(&[
            "connection",
            "reject-renewal",
            &renewal_id,
            "--comment",
            " ",
        ])
        .await;
    assert!(!out.status.success());
}
