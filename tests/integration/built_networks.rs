//! Networks Switchboard builds, against moto: a network created from the
//! address plan becomes a VPC with that range, one subnet per zone and the
//! team's tags; it can be connected once ready; deleting it is refused while a
//! connection uses it and otherwise removes the VPC; a VPC deleted by hand is
//! drift, emailed once; a worker killed mid-build leaves one VPC; an account
//! may ask for the lead's approval first.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::{World, world_on};
use crate::helpers::{Options, eventually, maildev_messages, spawn_app_with};
use crate::moto;

fn monitored() -> Options {
    Options {
        smtp: true,
        scheduler: true,
        env: vec![("SWITCHBOARD_MONITOR_INTERVAL", "1".into())],
        ..Options::default()
    }
}

/// The world of two teams with a registered VPC each in a moto account.
pub(crate) async fn cloud(options: Options, settings: Value) -> World {
    let ec2 = moto::ec2("us-east-1");
    let payments_vpc = moto::vpc(&ec2, "10.1.0.0/16").await;
    let search_vpc = moto::vpc(&ec2, "10.2.0.0/16").await;
    world_on(
        spawn_app_with(options).await,
        moto::account("cloud", settings),
        |account| {
            [
                ("payments", "10.1.0.0/16", &payments_vpc),
                ("search", "10.2.0.0/16", &search_vpc),
            ]
            .map(|(team, cidr, vpc)| {
                json!({"name": format!("{team}-prod"), "team": team, "provider_account_id": account["id"],
                       "region": "us-east-1", "cidr": cidr, "external_id": vpc})
            })
        },
    )
    .await
}

/// Asks for a new /20 network of payments from the plan, as the team's member.
async fn new_network(w: &World, name: &str) -> Value {
    let (_, network) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/networks/{}", w.payments_net),
            None,
        )
        .await;
    let (_, pools) = w
        .call(&w.requester, Method::GET, "/api/v1/pools", None)
        .await;
    let corp = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "corp")
        .unwrap()["id"]
        .clone();
    let (status, created) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/networks",
            Some(json!({"name": name, "team": "payments", "region": network["region"], "pool_id": corp,
                        "prefix_length": 20, "provider_account_id": network["provider_account_id"]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn network(w: &World, id: &str) -> (u16, Value) {
    w.call(
        &w.requester,
        Method::GET,
        &format!("/api/v1/networks/{id}"),
        None,
    )
    .await
}

async fn until_network(w: &World, id: &str, want: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (_, n) = network(w, id).await;
        if n["status"] == want {
            return n;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the network is not {want} after 60 s: {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The VPCs moto holds with the network's tag.
async fn tagged_vpcs(ec2: &aws_sdk_ec2::Client, network_id: &str) -> Vec<aws_sdk_ec2::types::Vpc> {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("tag:switchboard:network")
        .values(network_id)
        .build();
    ec2.describe_vpcs()
        .filters(filter)
        .send()
        .await
        .unwrap()
        .vpcs()
        .to_vec()
}

/// (zone, range) of a VPC's subnets, sorted.
async fn subnets(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Vec<(String, String)> {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("vpc-id")
        .values(vpc)
        .build();
    let found = ec2.describe_subnets().filters(filter).send().await.unwrap();
    let mut all: Vec<(String, String)> = found
        .subnets()
        .iter()
        .map(|s| {
            (
                s.availability_zone().unwrap_or_default().to_owned(),
                s.cidr_block().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

/// Deletes a VPC and its subnets, as someone in the AWS console would.
async fn delete_by_hand(ec2: &aws_sdk_ec2::Client, vpc: &str) {
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("vpc-id")
        .values(vpc)
        .build();
    let found = ec2.describe_subnets().filters(filter).send().await.unwrap();
    for s in found.subnets() {
        ec2.delete_subnet()
            .subnet_id(s.subnet_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    ec2.delete_vpc().vpc_id(vpc).send().await.unwrap();
}

#[tokio::test]
async fn a_network_from_the_plan_is_built_as_a_tagged_vpc_connected_watched_and_removed() {
    let w = cloud(monitored(), json!({})).await;
    let ec2 = moto::ec2("us-east-1");
    let created = new_network(&w, "payments-new").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let prefix = created["prefixes"][0]["cidr"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "building", "{created}");
    let summary = created["build"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("one /22 subnet in each of us-east-1a, us-east-1b, us-east-1c"),
        "{summary}"
    );
    // Not connectable until it exists.
    let ask = |source: &str| {
        json!({"kind": "network-to-network", "reason": "payments-new calls search",
               "source_network_id": source, "destination_network_id": w.search_net,
               "protocol": "tcp", "ports": "443"})
    };

    let ready = until_network(&w, &id, "ready").await;
    let vpc = ready["external_id"].as_str().unwrap().to_owned();
    assert!(vpc.starts_with("vpc-"), "{ready}");
    assert_eq!(
        ready["ownership"]["state"], "proved",
        "owned by construction"
    );

    // In moto: that range, the team's tags, one subnet per zone.
    let found = tagged_vpcs(&ec2, &id).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].vpc_id(), Some(vpc.as_str()));
    assert_eq!(found[0].cidr_block(), Some(prefix.as_str()));
    let team_tag = found[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("switchboard:team"))
        .and_then(|t| t.value());
    assert_eq!(team_tag, Some("payments"));
    let net: ipnet::Ipv4Net = prefix.parse().unwrap();
    let expected: Vec<(String, String)> = net
        .subnets(22)
        .unwrap()
        .take(3)
        .zip(["us-east-1a", "us-east-1b", "us-east-1c"])
        .map(|(cidr, zone)| (zone.to_owned(), cidr.to_string()))
        .collect();
    assert_eq!(subnets(&ec2, &vpc).await, expected);
    let (_, steps) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/networks/{id}/steps"),
            None,
        )
        .await;
    assert_eq!(steps[0]["action"], "created", "{steps}");
    assert_eq!(steps[0]["provider_id"], vpc.as_str());

    // Once ready, it is an end like any other: the plan names its VPC.
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(ask(&id)),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert!(c["plan"].to_string().contains(&vpc), "{c}");
    let connection = c["id"].as_str().unwrap().to_owned();

    // Deleting it is refused while the request uses it, naming the request.
    let (status, refused) = w
        .call(
            &w.requester,
            Method::DELETE,
            &format!("/api/v1/networks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains(&connection),
        "{refused}"
    );
    let (status, _) = w
        .call(
            &w.requester,
            Method::POST,
            &format!("/api/v1/connections/{connection}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Then deleting removes the VPC and its subnets, and gives the range back.
    let (status, removing) = w
        .call(
            &w.requester,
            Method::DELETE,
            &format!("/api/v1/networks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{removing}");
    assert_eq!(removing["status"], "removing");
    eventually(
        Duration::from_secs(60),
        "the network to be gone",
        || async { (network(&w, &id).await.0 == 404).then_some(()) },
    )
    .await;
    assert!(
        tagged_vpcs(&ec2, &id).await.is_empty(),
        "the VPC is removed"
    );
    assert!(subnets(&ec2, &vpc).await.is_empty(), "its subnets too");
    let again = new_network(&w, "payments-again").await;
    assert_eq!(
        again["prefixes"][0]["cidr"], prefix,
        "the range went back to the plan"
    );

    // A built VPC deleted by hand is drift, emailed to the team's lead once.
    let id = again["id"].as_str().unwrap().to_owned();
    let vpc = until_network(&w, &id, "ready").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    delete_by_hand(&ec2, &vpc).await;
    until_network(&w, &id, "drifted").await;
    // A sweep between the subnets' and the VPC's deletion sees the subnets
    // missing first; the next one sees the VPC gone.
    let gone = json!([format!("the VPC {vpc} no longer exists")]);
    eventually(Duration::from_secs(30), "the VPC seen gone", || async {
        (network(&w, &id).await.1["build"]["differences"] == gone).then_some(())
    })
    .await;
    let subject = "Network payments-again: drifted from what was built";
    let mail = eventually(Duration::from_secs(30), "the drift email", || async {
        maildev_messages(&w.payments_lead_email)
            .await
            .into_iter()
            .find(|m| m["subject"] == subject)
    })
    .await;
    let text = mail["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("the VPC {vpc} no longer exists")),
        "{text}"
    );
    assert!(text.contains(&format!("/networks/{id}")), "{text}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let told = maildev_messages(&w.payments_lead_email)
        .await
        .into_iter()
        .filter(|m| m["subject"] == subject)
        .count();
    assert_eq!(told, 1, "one email per episode");
}

/// Worker processes SIGKILLed while the VPC is being made, and right after:
/// the next one carries on and exactly one VPC (with its three subnets) exists.
#[tokio::test]
async fn a_worker_killed_mid_build_leaves_exactly_one_vpc() {
    // Slow enough that each kill point lasts longer than one look at moto.
    let link = crate::providers::slow_link(Duration::from_millis(1500)).await;
    let w = cloud(Options::default(), json!({})).await;
    sqlx::query("UPDATE provider_accounts SET settings = jsonb_set(settings, '{endpoint_url}', to_jsonb($1::text))")
        .bind(&link)
        .execute(&w.app.pool)
        .await
        .unwrap();
    w.app.stop_workers().await;
    let created = new_network(&w, "payments-killed").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let ec2 = moto::ec2("us-east-1");
    let env = [
        ("DATABASE_URL", w.app.db.url.clone()),
        ("SWITCHBOARD_WORKER_HEARTBEAT_SECONDS", "1".to_owned()),
        ("SWITCHBOARD_OUTBOX", "1".to_owned()),
    ];
    let dir = std::env::temp_dir();
    // Killed as soon as AWS made the VPC (before its subnets), then after its
    // first subnet: each time with the network still building.
    for subnets_made in [0usize, 1] {
        let mut worker = crate::processes::start(&["work"], &env, &dir);
        eventually(Duration::from_secs(60), "the kill point", || async {
            let vpcs = tagged_vpcs(&ec2, &id).await;
            let vpc = vpcs.first()?.vpc_id()?.to_owned();
            (subnets(&ec2, &vpc).await.len() >= subnets_made).then_some(())
        })
        .await;
        worker.kill().unwrap(); // SIGKILL
        worker.wait().unwrap();
        let (_, n) = network(&w, &id).await;
        assert_eq!(
            n["status"], "building",
            "killed before it could finish: {n}"
        );
    }
    let mut last = crate::processes::start(&["work"], &env, &dir);
    let ready = eventually(Duration::from_secs(90), "ready", || async {
        let (_, n) = network(&w, &id).await;
        (n["status"] == "ready").then_some(n)
    })
    .await;
    let _ = last.kill();
    let _ = last.wait();
    let vpcs = tagged_vpcs(&ec2, &id).await;
    assert_eq!(vpcs.len(), 1, "{ready}");
    assert_eq!(vpcs[0].vpc_id(), ready["external_id"].as_str());
    assert_eq!(
        subnets(&ec2, ready["external_id"].as_str().unwrap())
            .await
            .len(),
        3
    );
}

/// An account that asks for the lead's approval: the plan waits, the lead is
/// emailed, a member cannot approve, a stale hash is refused, the lead's
/// approval builds it; a rejection gives the range back.
#[tokio::test]
async fn a_lead_approves_the_plan_of_a_network_before_it_is_built() {
    let w = cloud(
        Options {
            smtp: true,
            ..Options::default()
        },
        json!({"network_approval": "lead"}),
    )
    .await;
    let created = new_network(&w, "payments-approved").await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "awaiting_approval", "{created}");
    let hash = created["build"]["plan_hash"].as_str().unwrap().to_owned();
    let mail = eventually(Duration::from_secs(30), "the lead's email", || async {
        maildev_messages(&w.payments_lead_email)
            .await
            .into_iter()
            .find(|m| m["subject"] == "Network payments-approved: waiting for your approval")
    })
    .await;
    assert!(
        mail["text"].as_str().unwrap().contains("one /22 subnet"),
        "{mail}"
    );

    let approve = |token: &str, hash: &str| {
        let (token, hash, path) = (
            token.to_owned(),
            hash.to_owned(),
            format!("/api/v1/networks/{id}/approve"),
        );
        let w = &w;
        async move {
            w.call(
                &token,
                Method::POST,
                &path,
                Some(json!({"plan_hash": hash})),
            )
            .await
        }
    };
    let (status, refused) = approve(&w.requester, &hash).await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = approve(&w.search_lead, &hash).await;
    assert_eq!(status, 403, "another team's lead: {refused}");
    let (status, refused) = approve(&w.payments_lead, "n1:0000").await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(network(&w, &id).await.1["status"], "awaiting_approval");
    let (status, approved) = approve(&w.payments_lead, &hash).await;
    assert_eq!(status, 200, "{approved}");
    let ready = until_network(&w, &id, "ready").await;
    assert!(ready["build"]["approved_at"].is_string(), "{ready}");

    // A rejected one is deleted, its creator told why.
    let other = new_network(&w, "payments-rejected").await;
    let other_id = other["id"].as_str().unwrap();
    let (status, refused) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &format!("/api/v1/networks/{other_id}/reject"),
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, _) = w
        .call(
            &w.payments_lead,
            Method::POST,
            &format!("/api/v1/networks/{other_id}/reject"),
            Some(json!({"reason": "use payments-approved"})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(network(&w, other_id).await.0, 404);
    let never_built = tagged_vpcs(&moto::ec2("us-east-1"), other_id).await;
    assert!(never_built.is_empty());
}

/// A network whose job was lost is given a new one by the housekeeping pass;
/// one whose job used up its attempts is failed, saying what the last one said.
#[tokio::test]
async fn networks_nothing_works_on_are_put_back_in_motion() {
    let w = crate::connections::world(crate::helpers::spawn_app().await).await;
    w.app.stop_workers().await;
    let lost = new_network(&w, "payments-lost").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let spent = new_network(&w, "payments-spent").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pool = &w.app.pool;
    let jobs = |id: &str| {
        let id = id.to_owned();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM apalis.jobs WHERE job_type = 'switchboard.build_network'
                    AND convert_from(job, 'UTF8')::jsonb ->> 'network_id' = $1 AND status = 'Pending'",
            )
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
        }
    };
    sqlx::query(
        "DELETE FROM apalis.jobs WHERE convert_from(job, 'UTF8')::jsonb ->> 'network_id' = $1",
    )
    .bind(&lost)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE apalis.jobs SET status = 'Failed', attempts = max_attempts,
                last_result = '{\"Err\": \"AWS could not be reached\"}'::jsonb
          WHERE convert_from(job, 'UTF8')::jsonb ->> 'network_id' = $1",
    )
    .bind(&spent)
    .execute(pool)
    .await
    .unwrap();
    // Quiet for long enough.
    sqlx::query("UPDATE networks SET updated_at = now() - interval '10 minutes'")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(jobs(&lost).await, 0);
    let resumed = switchboard::services::networks::resume_unattended_networks(&w.app.ctx)
        .await
        .unwrap();
    assert_eq!(resumed, (1, 1));
    assert_eq!(jobs(&lost).await, 1, "the lost one has a job again");
    let (_, spent) = network(&w, &spent).await;
    assert_eq!(spent["status"], "failed", "{spent}");
    let why = spent["build"]["failure"].as_str().unwrap();
    assert!(why.contains("AWS could not be reached"), "{why}");
}

fn netns() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Linux: a network from the plan is a namespace of its own with the range's
/// first address; deleted by hand it is drift; deleting the network removes it.
#[tokio::test]
async fn a_network_from_the_plan_is_built_as_a_linux_namespace() {
    if std::env::var("LINUX_LAB").as_deref() != Ok("1") {
        eprintln!("SKIPPED: needs root and iproute2; tests/run sets LINUX_LAB=1 where they are");
        return;
    }
    let w = crate::connections::world_on(
        spawn_app_with(monitored()).await,
        json!({"kind": "linux", "name": "dc-build", "regions": ["local"]}),
        |account| {
            [("payments", "10.1.0.0/16"), ("search", "10.2.0.0/16")].map(|(team, cidr)| {
                json!({"name": format!("{team}-dc"), "team": team, "provider_account_id": account["id"],
                       "region": "local", "cidr": cidr})
            })
        },
    )
    .await;
    let created = new_network(&w, "payments-ns").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let prefix: ipnet::Ipv4Net = created["prefixes"][0]["cidr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ready = until_network(&w, &id, "ready").await;
    let ns = ready["external_id"].as_str().unwrap().to_owned();
    assert!(ns.starts_with("sb-"), "{ready}");
    assert!(netns().contains(&ns), "the namespace exists");
    let first = format!("{}/{}", prefix.hosts().next().unwrap(), prefix.prefix_len());
    let out = std::process::Command::new("ip")
        .args(["-n", &ns, "-o", "addr", "show", "dev", "sbnet"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&first),
        "{out:?}"
    );

    // Deleted by hand: drift, named.
    assert!(
        std::process::Command::new("ip")
            .args(["netns", "del", &ns])
            .status()
            .unwrap()
            .success()
    );
    let drifted = until_network(&w, &id, "drifted").await;
    assert!(
        drifted["build"]["differences"][0]
            .as_str()
            .unwrap()
            .contains(&format!(
                "the namespace {ns} of payments-ns no longer exists"
            )),
        "{drifted}"
    );

    // Another one, deleted through Switchboard: its namespace goes with it.
    let other = new_network(&w, "payments-ns2").await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let other_ns = until_network(&w, &other_id, "ready").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(netns().contains(&other_ns));
    let (status, _) = w
        .call(
            &w.requester,
            Method::DELETE,
            &format!("/api/v1/networks/{other_id}"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(60), "the network gone", || async {
        (network(&w, &other_id).await.0 == 404).then_some(())
    })
    .await;
    assert!(!netns().contains(&other_ns), "its namespace is removed");
}

/// A bridge on this host standing for a linux account's underlay, with the
/// lab's second namespace joined to it at 192.168.91.250; removed when dropped.
struct UnderlayBridge {
    name: String,
}

impl UnderlayBridge {
    fn new(lab: &crate::linux::Lab) -> UnderlayBridge {
        use crate::linux::sh;
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let bridge = UnderlayBridge {
            name: format!("sbbr{tag}"),
        };
        let (outside, inside) = (format!("sbl{tag}"), format!("sbl{tag}i"));
        sh(&["ip", "link", "add", "name", &bridge.name, "type", "bridge"]);
        sh(&["ip", "link", "set", &bridge.name, "up"]);
        sh(&[
            "ip", "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &lab.b,
        ]);
        sh(&["ip", "link", "set", &outside, "master", &bridge.name, "up"]);
        sh(&[
            "ip",
            "-n",
            &lab.b,
            "addr",
            "add",
            "192.168.91.250/24",
            "dev",
            &inside,
        ]);
        sh(&["ip", "-n", &lab.b, "link", "set", &inside, "up"]);
        bridge
    }
}

impl Drop for UnderlayBridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
    }
}

/// Linux: a namespace built on demand joins its account's underlay bridge at
/// the first free address of the underlay range, and a WireGuard connection
/// links it to the lab's namespace on the same bridge: the approved port
/// passes, another does not; removing the connection and then the network
/// leaves nothing on the host.
#[tokio::test]
async fn a_namespace_built_on_demand_is_linked_by_a_wireguard_connection() {
    let Some(lab) = crate::linux::Lab::new("a_namespace_built_on_demand_is_linked") else {
        return;
    };
    let bridge = UnderlayBridge::new(&lab);
    let settings = json!({
        "underlay_bridge": bridge.name,
        "underlay_range": "192.168.91.0/24",
        format!("endpoint.{}", lab.b): "192.168.91.250",
    });
    let w = world_on(
        spawn_app_with(monitored()).await,
        json!({"kind": "linux", "name": "dc", "regions": ["local"], "settings": settings}),
        |account| {
            [
                ("payments", "10.61.0.0/24", &lab.a),
                ("search", "10.62.0.0/24", &lab.b),
            ]
            .map(|(team, cidr, ns)| {
                json!({"name": format!("{team}-dc"), "team": team, "provider_account_id": account["id"],
                       "region": "local", "cidr": cidr, "external_id": ns})
            })
        },
    )
    .await;

    let created = new_network(&w, "payments-ns").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let ready = until_network(&w, &id, "ready").await;
    let ns = ready["external_id"].as_str().unwrap().to_owned();
    let summary = ready["build"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "its tunnels reached at 192.168.91.2 on the bridge {}",
            bridge.name
        )),
        "{summary}"
    );
    let out = std::process::Command::new("ip")
        .args(["-n", &ns, "-o", "addr", "show", "dev", "sbunder"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("192.168.91.2/24"),
        "{out:?}"
    );

    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(
                json!({"kind": "network-to-network", "reason": "the new service calls search",
                        "source_network_id": id, "destination_network_id": w.search_net,
                        "protocol": "tcp", "ports": "443"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["mechanism"], "wireguard", "{c}");
    let cid = c["id"].as_str().unwrap().to_owned();
    crate::provisioning::approve_both(&w, &cid).await;
    crate::provisioning::until_status_within(&w, &cid, "active", Duration::from_secs(90)).await;
    assert!(
        crate::linux::reaches_from(&ns, 443).await,
        "the approved port passes the tunnel from the built namespace"
    );
    assert!(
        !crate::linux::reaches_from(&ns, 8022).await,
        "a port nobody approved does not"
    );

    // Its underlay address taken away by hand: drift, named.
    crate::linux::sh(&[
        "ip",
        "-n",
        &ns,
        "addr",
        "del",
        "192.168.91.2/24",
        "dev",
        "sbunder",
    ]);
    let drifted = until_network(&w, &id, "drifted").await;
    assert!(
        drifted["build"]["differences"]
            .to_string()
            .contains(&format!(
                "sbunder in {ns} no longer has its underlay address 192.168.91.2/24"
            )),
        "{drifted}"
    );

    crate::provisioning::remove_now(&w, &cid).await;
    let (status, _) = w
        .call(
            &w.requester,
            Method::DELETE,
            &format!("/api/v1/networks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(60), "the network gone", || async {
        (network(&w, &id).await.0 == 404).then_some(())
    })
    .await;
    assert!(!netns().contains(&ns), "its namespace is removed");
    // A probe running in the namespace keeps it (and its pair) a moment longer.
    eventually(
        Duration::from_secs(10),
        "only the lab's own end left on the bridge",
        || async {
            let host = std::process::Command::new("ip")
                .args(["-o", "link", "show", "master", &bridge.name])
                .output()
                .unwrap();
            (String::from_utf8_lossy(&host.stdout).lines().count() == 1).then_some(())
        },
    )
    .await;
}
