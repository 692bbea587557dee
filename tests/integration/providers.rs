//! One contract every provider keeps, run against each of them (the sandbox, aws
//! against the moto EC2 emulator, dns against PowerDNS, proxy against Caddy and
//! against a Redis route store, linux against network namespaces): approve → active with what the plan says
//! really present; a repeated run builds nothing twice; removal deletes exactly
//! what was built; removing again is harmless. Then what only AWS does: a
//! peering across regions, the transit-gateway path, AWS's refusals in plain words.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::connections::{World, world, world_on};
use crate::helpers::spawn_app;
use crate::moto;
use crate::provisioning::{approve_both, remove_now, until_status};

/// Where the connections of a test are built, and how to look at what exists.
enum Cloud {
    Sandbox,
    Aws {
        ec2: aws_sdk_ec2::Client,
        payments_vpc: String,
        search_vpc: String,
    },
    /// A zone of its own on the PowerDNS server; the record is `www.<zone>`.
    Dns {
        zone: String,
    },
    /// An edge proxy (Caddy, or a Redis route store with a key prefix of its
    /// own) exposing `host` from a network on loopback, whose sandbox account
    /// opens its firewall to the proxy.
    Proxy {
        host: String,
        net: String,
        redis_prefix: Option<String>,
    },
    /// Two network namespaces (payments', search's) of a `linux` account.
    Linux(crate::linux::Lab),
}

struct Subject {
    w: World,
    cloud: Cloud,
}

async fn sandbox() -> Subject {
    Subject {
        w: world(spawn_app().await).await,
        cloud: Cloud::Sandbox,
    }
}

/// A PowerDNS zone, served by a `dns` provider account.
async fn dns() -> Subject {
    let w = world(spawn_app().await).await;
    let zone = crate::dns::new_zone().await;
    let admin = w.app.token("root@example.test", true).await;
    let (status, account) = w
        .call(
            &admin,
            Method::POST,
            "/api/v1/provider-accounts",
            Some(json!({"kind": "dns", "name": "corp-dns", "regions": [],
                        "settings": {"zone": zone, "api_url": crate::dns::api()},
                        "credentials_ref": crate::dns::key_ref()})),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    Subject {
        w,
        cloud: Cloud::Dns { zone },
    }
}

async fn proxy(settings: serde_json::Value, redis_prefix: Option<String>) -> Subject {
    let (w, net) = crate::proxy::proxy_world(settings).await;
    Subject {
        w,
        cloud: Cloud::Proxy {
            host: crate::proxy::new_host(),
            net,
            redis_prefix,
        },
    }
}

async fn redis_key_count(prefix: &str, host: &str) -> usize {
    let client = redis::Client::open(crate::proxy::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXISTS")
        .arg(format!("{prefix}:routes:{host}"))
        .query_async(&mut redis)
        .await
        .unwrap()
}

/// Two VPCs in one region of one AWS account, registered as the teams' networks.
async fn aws(settings: Value) -> Subject {
    let ec2 = moto::ec2("us-east-1");
    let payments_vpc = moto::vpc(&ec2, "10.1.0.0/16").await;
    let search_vpc = moto::vpc(&ec2, "10.2.0.0/16").await;
    let w = world_on(
        spawn_app().await,
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
    .await;
    Subject {
        w,
        cloud: Cloud::Aws {
            ec2,
            payments_vpc,
            search_vpc,
        },
    }
}

impl Subject {
    /// How many things a connection builds here: a link, a route each way and a
    /// rule each way; or one DNS record.
    fn things(&self) -> usize {
        match self.cloud {
            Cloud::Dns { .. } => 1,
            Cloud::Proxy { .. } => 2,
            // An interface, a route and a rule on each side.
            Cloud::Linux(_) => 6,
            _ => 5,
        }
    }

    /// Asks for a connection and has it approved; its id.
    async fn approved(&self) -> String {
        let w = &self.w;
        if let Cloud::Proxy { host, net, .. } = &self.cloud {
            let c = crate::proxy::expose(w, net, host, "/", 8080).await;
            return c["id"].as_str().unwrap().to_owned();
        }
        let Cloud::Dns { zone } = &self.cloud else {
            let id = w.request().await["id"].as_str().unwrap().to_owned();
            approve_both(w, &id).await;
            return id;
        };
        let (status, c) = w
            .call(
                &w.requester,
                Method::POST,
                "/api/v1/connections",
                Some(json!({"kind": "dns-record", "reason": "the shop", "team": "payments",
                            "name": format!("www.{zone}"), "record_type": "A", "value": "192.0.2.10", "ttl": 60})),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_str().unwrap().to_owned();
        let (status, body) = w
            .call(
                &w.payments_lead,
                Method::POST,
                &format!("/api/v1/connections/{id}/approve"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        id
    }

    /// How many of the connection's five things (link, a route each way, a rule
    /// each way) really exist, read from the provider itself.
    async fn built(&self, id: &str) -> usize {
        match &self.cloud {
            Cloud::Sandbox => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM sandbox_resources WHERE connection_id = $1",
                )
                .bind(Uuid::parse_str(id).unwrap())
                .fetch_one(&self.w.app.pool)
                .await
                .unwrap();
                n as usize
            }
            Cloud::Aws {
                ec2,
                payments_vpc,
                search_vpc,
            } => {
                let peerings = moto::peerings(ec2, payments_vpc, search_vpc).await;
                let pcx: Vec<&String> = peerings.iter().map(|(p, _)| p).collect();
                let mut n = peerings.iter().filter(|(_, s)| s == "active").count();
                for (vpc, to) in [(payments_vpc, "10.2.0.0/16"), (search_vpc, "10.1.0.0/16")] {
                    n += moto::routes_to(ec2, vpc, to)
                        .await
                        .iter()
                        .filter(|t| pcx.contains(t))
                        .count();
                }
                for (vpc, from) in [(payments_vpc, "10.2.0.0/16"), (search_vpc, "10.1.0.0/16")] {
                    let want = format!("tcp 443-443 from {from}");
                    n += moto::ingress(ec2, vpc)
                        .await
                        .iter()
                        .filter(|r| **r == want)
                        .count();
                }
                n
            }
            Cloud::Linux(lab) => {
                use crate::linux::Lab;
                let mut n = 0;
                for (ns, peer) in [(&lab.a, "10.62.0.0/24"), (&lab.b, "10.61.0.0/24")] {
                    n += Lab::tunnels(ns).len() + Lab::routes_to(ns, peer);
                    // Each rule is in the input and the forward chain.
                    n += Lab::rules(ns, "switchboard tcp 443") / 2;
                }
                n
            }
            Cloud::Proxy {
                host, redis_prefix, ..
            } => {
                let routes = match redis_prefix {
                    Some(prefix) => redis_key_count(prefix, host).await,
                    None => crate::proxy::caddy_routes_for(host).await.len(),
                };
                let rules: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM sandbox_resources WHERE connection_id = $1",
                )
                .bind(Uuid::parse_str(id).unwrap())
                .fetch_one(&self.w.app.pool)
                .await
                .unwrap();
                routes + rules as usize
            }
            Cloud::Dns { zone } => {
                let res = crate::dns::pdns(Method::GET, &format!("/zones/{zone}."), None).await;
                let zone_now: Value = res.json().await.unwrap();
                let www = format!("www.{zone}.");
                zone_now["rrsets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["name"] == www.as_str() && r["type"] == "A")
                    .count()
            }
        }
    }
}

impl Subject {
    /// Deletes one thing behind Switchboard's back, in the provider itself (a
    /// route, or the record); what observation should then say starts with the
    /// returned words.
    async fn break_one(&self, id: &str) -> String {
        match &self.cloud {
            Cloud::Sandbox => {
                sqlx::query(
                    "DELETE FROM sandbox_resources WHERE id = (
                         SELECT id FROM sandbox_resources WHERE connection_id = $1 AND kind = 'route'
                            AND name LIKE '10.2.0.0/16%')",
                )
                .bind(Uuid::parse_str(id).unwrap())
                .execute(&self.w.app.pool)
                .await
                .unwrap();
                "route 10.2.0.0/16 ".into()
            }
            Cloud::Linux(lab) => {
                let out = std::process::Command::new("ip")
                    .args(["-n", &lab.a, "route", "del", "10.62.0.0/24"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
                "route 10.62.0.0/24 ".into()
            }
            Cloud::Proxy {
                host,
                redis_prefix: Some(prefix),
                ..
            } => {
                let client = redis::Client::open(crate::proxy::redis_url()).unwrap();
                let mut redis = client.get_multiplexed_async_connection().await.unwrap();
                let deleted: usize = redis::cmd("DEL")
                    .arg(format!("{prefix}:routes:{host}"))
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                assert_eq!(deleted, 1);
                format!("proxy route {host}/ ")
            }
            Cloud::Proxy { host, .. } => {
                let ids = crate::proxy::caddy_routes_for(host).await;
                assert_eq!(ids.len(), 1, "{ids:?}");
                crate::proxy::delete_caddy_route(&ids[0]).await;
                format!("proxy route {host}/ ")
            }
            Cloud::Dns { zone } => {
                let rrset =
                    json!({"name": format!("www.{zone}."), "type": "A", "changetype": "DELETE"});
                let res = crate::dns::pdns(
                    Method::PATCH,
                    &format!("/zones/{zone}."),
                    Some(json!({ "rrsets": [rrset] })),
                )
                .await;
                assert_eq!(res.status(), 204);
                format!("A record www.{zone}. ")
            }
            Cloud::Aws {
                ec2, payments_vpc, ..
            } => {
                let tables = ec2
                    .describe_route_tables()
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("vpc-id")
                            .values(payments_vpc)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
                ec2.delete_route()
                    .route_table_id(tables.route_tables()[0].route_table_id().unwrap())
                    .destination_cidr_block("10.2.0.0/16")
                    .send()
                    .await
                    .unwrap();
                "route 10.2.0.0/16 ".into()
            }
        }
    }

    /// What the provider's bulk observation says differs for the connection.
    async fn differences(&self, id: &str) -> Vec<String> {
        let app = &self.w.app;
        let uuid = Uuid::parse_str(id).unwrap();
        let c = switchboard::store::connections::find(&app.pool, uuid)
            .await
            .unwrap()
            .unwrap();
        let plan: switchboard::planner::Plan = serde_json::from_value(c.plan).unwrap();
        let accounts = switchboard::store::provider_accounts::list(&app.pool)
            .await
            .unwrap();
        let registry = switchboard::providers::Registry::build(&app.pool, &accounts);
        let mut found = Vec::new();
        for account in switchboard::providers::accounts_of(&plan) {
            let wanted = switchboard::providers::Wanted {
                connection_id: uuid,
                items: switchboard::providers::items_in(&plan, &account).unwrap(),
            };
            let provider = registry.get(&account).unwrap();
            for seen in provider.observe(&[wanted]).await.unwrap() {
                assert_eq!(seen.connection_id, uuid);
                found.extend(seen.differences);
            }
        }
        found
    }
}

fn steps(c: &Value, action: &str) -> usize {
    c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == action)
        .count()
}

async fn keeps_the_contract(s: Subject) {
    let w = &s.w;
    let n = s.things();
    let id = &s.approved().await;
    let active = until_status(w, id, "active").await;
    assert_eq!(s.built(id).await, n, "{active}");
    assert_eq!(steps(&active, "created"), n, "{active}");

    // A worker that died before marking it active runs again: it finds everything.
    let uuid = Uuid::parse_str(id).unwrap();
    sqlx::query("UPDATE connections SET status = 'provisioning' WHERE id = $1")
        .bind(uuid)
        .execute(&w.app.pool)
        .await
        .unwrap();
    let hash = active["plan_hash"].as_str().unwrap();
    switchboard::services::provisioning::provision(&w.app.ctx, uuid, hash, false)
        .await
        .unwrap();
    let again = until_status(w, id, "active").await;
    assert_eq!(steps(&again, "found"), n, "{again}");
    assert_eq!(s.built(id).await, n, "nothing was built twice");

    // Observation sees what exists: nothing differs, then what was deleted
    // behind Switchboard's back, in plain words; a repair puts it back.
    assert_eq!(s.differences(id).await, Vec::<String>::new());
    let says = s.break_one(id).await;
    assert_eq!(s.built(id).await, n - 1);
    let differences = s.differences(id).await;
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(
        differences[0].starts_with(&says) && differences[0].contains("missing"),
        "{differences:?}"
    );
    switchboard::services::provisioning::repair(&w.app.ctx, uuid, false)
        .await
        .unwrap();
    assert_eq!(s.built(id).await, n);
    assert_eq!(s.differences(id).await, Vec::<String>::new());

    // Removal deletes exactly what was built.
    let gone = remove_now(w, id).await;
    assert_eq!(s.built(id).await, 0);
    assert_eq!(steps(&gone, "deleted"), n, "{gone}");

    // Removing again (a worker that died before marking it deleted) is harmless.
    sqlx::query("UPDATE connections SET status = 'deprovisioning' WHERE id = $1")
        .bind(uuid)
        .execute(&w.app.pool)
        .await
        .unwrap();
    switchboard::services::provisioning::deprovision(&w.app.ctx, uuid, false)
        .await
        .unwrap();
    let twice = until_status(w, id, "deleted").await;
    assert_eq!(
        steps(&twice, "deleted"),
        n,
        "nothing more to delete: {twice}"
    );
}

#[tokio::test]
async fn the_sandbox_keeps_the_provider_contract() {
    keeps_the_contract(sandbox().await).await;
}

#[tokio::test]
async fn dns_keeps_the_provider_contract() {
    keeps_the_contract(dns().await).await;
}

#[tokio::test]
async fn the_caddy_proxy_keeps_the_provider_contract() {
    keeps_the_contract(proxy(crate::proxy::caddy_settings(), None).await).await;
}

#[tokio::test]
async fn the_redis_route_store_keeps_the_provider_contract() {
    let (settings, prefix) = crate::proxy::redis_settings();
    keeps_the_contract(proxy(settings, Some(prefix)).await).await;
}

#[tokio::test]
async fn linux_keeps_the_provider_contract() {
    let Some(lab) = crate::linux::Lab::new("linux_keeps_the_provider_contract") else {
        return;
    };
    let w = crate::linux::lab_world(&lab, false).await;
    keeps_the_contract(Subject {
        w,
        cloud: Cloud::Linux(lab),
    })
    .await;
}

#[tokio::test]
async fn aws_keeps_the_provider_contract() {
    keeps_the_contract(aws(json!({})).await).await;
}

#[tokio::test]
async fn aws_peers_across_regions_and_accepts_in_the_other_region() {
    let east = moto::ec2("us-east-1");
    let west = moto::ec2("us-west-2");
    let payments_vpc = moto::vpc(&east, "10.1.0.0/16").await;
    let search_vpc = moto::vpc(&west, "10.2.0.0/16").await;
    let w = world_on(
        spawn_app().await,
        moto::account("cloud", json!({})),
        |account| {
            [
                ("payments", "10.1.0.0/16", "us-east-1", &payments_vpc),
                ("search", "10.2.0.0/16", "us-west-2", &search_vpc),
            ]
            .map(|(team, cidr, region, vpc)| {
                json!({"name": format!("{team}-prod"), "team": team, "provider_account_id": account["id"],
                       "region": region, "cidr": cidr, "external_id": vpc})
            })
        },
    )
    .await;
    let c = w.request().await;
    assert_eq!(c["mechanism"], "inter-region-peering", "{c}");
    let id = c["id"].as_str().unwrap();
    approve_both(&w, id).await;
    until_status(&w, id, "active").await;
    let peerings = moto::peerings(&east, &payments_vpc, &search_vpc).await;
    assert_eq!(peerings.len(), 1, "{peerings:?}");
    assert_eq!(peerings[0].1, "active");
    let pcx = &peerings[0].0;
    assert_eq!(
        moto::routes_to(&east, &payments_vpc, "10.2.0.0/16").await,
        std::slice::from_ref(pcx)
    );
    assert_eq!(
        moto::routes_to(&west, &search_vpc, "10.1.0.0/16").await,
        std::slice::from_ref(pcx)
    );
    assert!(
        moto::ingress(&west, &search_vpc)
            .await
            .contains(&"tcp 443-443 from 10.1.0.0/16".to_owned())
    );

    remove_now(&w, id).await;
    assert!(
        moto::peerings(&east, &payments_vpc, &search_vpc)
            .await
            .is_empty()
    );
    assert!(
        moto::routes_to(&west, &search_vpc, "10.1.0.0/16")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn aws_attaches_both_networks_to_the_accounts_transit_gateway() {
    let ec2 = moto::ec2("us-east-1");
    let tgw = moto::transit_gateway(&ec2).await;
    let s = aws(json!({ "transit_gateway.us-east-1": tgw })).await;
    let Cloud::Aws {
        payments_vpc,
        search_vpc,
        ..
    } = &s.cloud
    else {
        unreachable!()
    };
    let w = &s.w;
    let c = w.request().await;
    assert_eq!(c["mechanism"], "transit-gateway", "{c}");
    let id = c["id"].as_str().unwrap();
    approve_both(w, id).await;
    let active = until_status(w, id, "active").await;
    let mut attached: Vec<String> = moto::attachments(&ec2, &tgw)
        .await
        .into_iter()
        .map(|(_, vpc)| vpc)
        .collect();
    attached.sort();
    let mut both = vec![payments_vpc.clone(), search_vpc.clone()];
    both.sort();
    assert_eq!(attached, both, "{active}");
    assert_eq!(
        moto::routes_to(&ec2, payments_vpc, "10.2.0.0/16").await,
        std::slice::from_ref(&tgw)
    );
    assert_eq!(
        moto::routes_to(&ec2, search_vpc, "10.1.0.0/16").await,
        std::slice::from_ref(&tgw)
    );

    remove_now(w, id).await;
    assert!(moto::attachments(&ec2, &tgw).await.is_empty());
    assert!(
        moto::routes_to(&ec2, payments_vpc, "10.2.0.0/16")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn what_aws_refuses_fails_at_once_with_its_reason_in_plain_words() {
    let ec2 = moto::ec2("us-east-1");
    let payments_vpc = moto::vpc(&ec2, "10.1.0.0/16").await;
    let search_vpc = moto::vpc(&ec2, "10.2.0.0/16").await;
    let w = world_on(
        spawn_app().await,
        moto::account("cloud", json!({})),
        |account| {
            [
                ("payments", "10.1.0.0/16", payments_vpc.as_str()),
                ("search", "10.2.0.0/16", search_vpc.as_str()),
            ]
            .map(|(team, cidr, vpc)| {
                json!({"name": format!("{team}-prod"), "team": team, "provider_account_id": account["id"],
                       "region": "us-east-1", "cidr": cidr, "external_id": vpc})
            })
        },
    )
    .await;
    // The VPC is deleted behind Switchboard's back after it was registered.
    delete_vpc(&ec2, &payments_vpc).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    approve_both(&w, id).await;
    let failed = until_status(&w, id, "failed").await;
    let why = failed["failure"].as_str().unwrap();
    assert!(
        why.starts_with(&format!(
            "AWS refused to create a peering from {payments_vpc}"
        )) && why.contains("does not exist"),
        "{why}"
    );
    // Failed at once: no retries for what retrying cannot fix.
    assert_eq!(steps(&failed, "retrying"), 0, "{failed}");
}

#[tokio::test]
async fn an_aws_account_without_its_credentials_is_reported_not_crashed_on() {
    let mut account = moto::account("cloud", json!({}));
    account["credentials_ref"] = json!("env:SWITCHBOARD_TEST_NOWHERE");
    let ec2 = moto::ec2("us-east-1");
    let (a, b) = (
        moto::vpc(&ec2, "10.1.0.0/16").await,
        moto::vpc(&ec2, "10.2.0.0/16").await,
    );
    let w = world_on(spawn_app().await, account, |account| {
        [("payments", "10.1.0.0/16", &a), ("search", "10.2.0.0/16", &b)].map(
            |(team, cidr, vpc)| {
                json!({"name": format!("{team}-prod"), "team": team, "provider_account_id": account["id"],
                       "region": "us-east-1", "cidr": cidr, "external_id": vpc})
            },
        )
    })
    .await;
    let admin = w.app.token("root@example.test", true).await;
    let (status, accounts) = w
        .call(&admin, Method::GET, "/api/v1/provider-accounts", None)
        .await;
    assert_eq!(status, 200);
    let problem = accounts[0]["problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("SWITCHBOARD_TEST_NOWHERE_ACCESS_KEY_ID is not set"),
        "{accounts}"
    );
    let c = w.request().await;
    let id = c["id"].as_str().unwrap();
    approve_both(&w, id).await;
    let failed = until_status(&w, id, "failed").await;
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .contains("SWITCHBOARD_TEST_NOWHERE_ACCESS_KEY_ID is not set"),
        "{failed}"
    );
}

/// A TCP relay to moto that holds every chunk a client sends for `delay`: AWS
/// at the speed of a slow link, so a worker can be killed half-way.
pub(crate) async fn slow_link(delay: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let moto = url::Url::parse(&moto::url()).unwrap();
    let upstream = format!(
        "{}:{}",
        moto.host_str().unwrap(),
        moto.port_or_known_default().unwrap()
    );
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = inbound.into_split();
                let (mut moto_read, mut moto_write) = outbound.into_split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(delay).await;
                        if moto_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = moto_write.shutdown().await;
                };
                let down = tokio::io::copy(&mut moto_read, &mut client_write);
                let _ = tokio::join!(up, down);
            });
        }
    });
    format!("http://{address}")
}

/// Worker processes killed with SIGKILL at several points of a build; the next
/// one carries on, and exactly one set of resources exists at the end.
#[tokio::test]
async fn a_worker_killed_mid_build_leaves_exactly_one_peering() {
    use std::time::Duration;
    let link = slow_link(Duration::from_millis(150)).await;
    let s = aws(json!({})).await;
    // Every AWS call of this account goes through the slow link.
    sqlx::query("UPDATE provider_accounts SET settings = jsonb_set(settings, '{endpoint_url}', to_jsonb($1::text))")
        .bind(&link)
        .execute(&s.w.app.pool)
        .await
        .unwrap();
    // Only the worker processes below build.
    s.w.app.stop_workers().await;
    let w = &s.w;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap().to_owned();
    let uuid = Uuid::parse_str(&id).unwrap();
    approve_both(w, &id).await;

    let env = [
        ("DATABASE_URL", w.app.db.url.clone()),
        ("SWITCHBOARD_WORKER_HEARTBEAT_SECONDS", "1".to_owned()),
        ("SWITCHBOARD_OUTBOX", "1".to_owned()),
    ];
    let progress = || async {
        let status: String = sqlx::query_scalar("SELECT status FROM connections WHERE id = $1")
            .bind(uuid)
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
        let steps: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM connection_steps WHERE connection_id = $1 AND action IN ('created', 'found')",
        )
        .bind(uuid)
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
        (status, steps)
    };
    let dir = std::env::temp_dir();
    // Killed while the peering is being made, after it, and among the routes.
    for (at_steps, then_wait) in [(0, 400), (1, 0), (3, 0)] {
        let mut worker = crate::processes::start(&["work"], &env, &dir);
        crate::helpers::eventually(
            Duration::from_secs(60),
            "the worker to reach the kill point",
            || async {
                let (status, steps) = progress().await;
                (status == "provisioning" && steps >= at_steps).then_some(())
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(then_wait)).await;
        worker.kill().unwrap(); // SIGKILL
        worker.wait().unwrap();
        let (status, _) = progress().await;
        assert_eq!(status, "provisioning", "killed before it could finish");
    }
    let mut last = crate::processes::start(&["work"], &env, &dir);
    let active =
        crate::provisioning::until_status_within(w, &id, "active", Duration::from_secs(90)).await;
    let _ = last.kill();
    let _ = last.wait();
    let Cloud::Aws {
        ec2,
        payments_vpc,
        search_vpc,
    } = &s.cloud
    else {
        unreachable!()
    };
    assert_eq!(
        moto::peerings(ec2, payments_vpc, search_vpc).await.len(),
        1,
        "{active}"
    );
    // Each of the five, by name, so a miss says which.
    let found = [
        (
            "routes to 10.2.0.0/16 in payments",
            moto::routes_to(ec2, payments_vpc, "10.2.0.0/16")
                .await
                .join(" "),
        ),
        (
            "routes to 10.1.0.0/16 in search",
            moto::routes_to(ec2, search_vpc, "10.1.0.0/16")
                .await
                .join(" "),
        ),
        (
            "ingress of payments",
            moto::ingress(ec2, payments_vpc).await.join("; "),
        ),
        (
            "ingress of search",
            moto::ingress(ec2, search_vpc).await.join("; "),
        ),
    ];
    assert_eq!(s.built(&id).await, 5, "{found:?}\n{active}");
}

/// Two connections between the same VPCs share the one peering AWS allows (and
/// its routes); removing the first keeps what the second still needs.
#[tokio::test]
async fn aws_connections_share_a_peering_and_removal_keeps_what_another_needs() {
    let s = aws(json!({})).await;
    let Cloud::Aws {
        ec2,
        payments_vpc,
        search_vpc,
    } = &s.cloud
    else {
        unreachable!()
    };
    let w = &s.w;
    let first = w.request().await["id"].as_str().unwrap().to_owned();
    let (status, second) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(json!({"kind": "network-to-network", "reason": "metrics",
                        "source_network_id": w.payments_net, "destination_network_id": w.search_net,
                        "protocol": "tcp", "ports": "9090"})),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    for id in [&first, &second] {
        approve_both(w, id).await;
        until_status(w, id, "active").await;
    }
    assert_eq!(moto::peerings(ec2, payments_vpc, search_vpc).await.len(), 1);

    w.call(
        &w.requester,
        Method::DELETE,
        &format!("/api/v1/connections/{first}"),
        None,
    )
    .await;
    let gone = until_status(w, &first, "deleted").await;
    assert_eq!(
        steps(&gone, "kept"),
        3,
        "the peering and both routes: {gone}"
    );
    assert_eq!(moto::peerings(ec2, payments_vpc, search_vpc).await.len(), 1);
    assert_eq!(
        moto::routes_to(ec2, payments_vpc, "10.2.0.0/16")
            .await
            .len(),
        1
    );
    let ingress = moto::ingress(ec2, search_vpc).await;
    assert!(
        !ingress.contains(&"tcp 443-443 from 10.1.0.0/16".to_owned()),
        "{ingress:?}"
    );
    assert!(
        ingress.contains(&"tcp 9090-9090 from 10.1.0.0/16".to_owned()),
        "{ingress:?}"
    );

    w.call(
        &w.requester,
        Method::DELETE,
        &format!("/api/v1/connections/{second}"),
        None,
    )
    .await;
    until_status(w, &second, "deleted").await;
    assert!(
        moto::peerings(ec2, payments_vpc, search_vpc)
            .await
            .is_empty()
    );
    assert!(
        moto::routes_to(ec2, payments_vpc, "10.2.0.0/16")
            .await
            .is_empty()
    );
    assert!(moto::ingress(ec2, search_vpc).await.is_empty());
}

/// Routes go through the peering of their own two VPCs, even when other VPCs'
/// peerings, made later, are active in the same region (the crash test once
/// found a route pointed at another pair's peering).
#[tokio::test]
async fn aws_routes_go_through_their_own_peering_not_another_pairs() {
    let s = aws(json!({})).await;
    let Cloud::Aws {
        ec2,
        payments_vpc,
        search_vpc,
    } = &s.cloud
    else {
        unreachable!()
    };
    // The two VPCs are already peered (by hand, before Switchboard) ...
    let ours = ec2
        .create_vpc_peering_connection()
        .vpc_id(payments_vpc)
        .peer_vpc_id(search_vpc)
        .send()
        .await
        .unwrap();
    let ours = ours
        .vpc_peering_connection()
        .and_then(|p| p.vpc_peering_connection_id())
        .unwrap()
        .to_owned();
    ec2.accept_vpc_peering_connection()
        .vpc_peering_connection_id(&ours)
        .send()
        .await
        .unwrap();
    // ... and two other VPCs were peered after them.
    let (a, b) = (
        moto::vpc(ec2, "10.8.0.0/16").await,
        moto::vpc(ec2, "10.9.0.0/16").await,
    );
    let theirs = ec2
        .create_vpc_peering_connection()
        .vpc_id(&a)
        .peer_vpc_id(&b)
        .send()
        .await
        .unwrap();
    ec2.accept_vpc_peering_connection()
        .vpc_peering_connection_id(
            theirs
                .vpc_peering_connection()
                .and_then(|p| p.vpc_peering_connection_id())
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let id = s.approved().await;
    let active = until_status(&s.w, &id, "active").await;
    assert_eq!(steps(&active, "found"), 1, "the peering: {active}");
    assert_eq!(
        moto::routes_to(ec2, payments_vpc, "10.2.0.0/16").await,
        [ours.as_str()]
    );
    assert_eq!(
        moto::routes_to(ec2, search_vpc, "10.1.0.0/16").await,
        [ours.as_str()]
    );
}

/// Deletes a VPC made by `moto::vpc` (its subnets first, as EC2 requires).
async fn delete_vpc(ec2: &aws_sdk_ec2::Client, vpc: &str) {
    let subnets = ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(vpc)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for subnet in subnets.subnets() {
        ec2.delete_subnet()
            .subnet_id(subnet.subnet_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    ec2.delete_vpc().vpc_id(vpc).send().await.unwrap();
}

/// A TCP relay to moto that passes everything until a request carrying
/// `action` goes by: moto gets it (and does it), but its answer is withheld
/// and `sent` is told, so the test can kill the worker after AWS made the item
/// and before the worker could record that it did.
async fn withholding_link(action: &'static str) -> (String, std::sync::Arc<tokio::sync::Notify>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let moto = url::Url::parse(&moto::url()).unwrap();
    let upstream = format!(
        "{}:{}",
        moto.host_str().unwrap(),
        moto.port_or_known_default().unwrap()
    );
    let sent = Arc::new(tokio::sync::Notify::new());
    let tripped = Arc::new(AtomicBool::new(false));
    let (notify, trip) = (sent.clone(), tripped.clone());
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let (upstream, notify, trip) = (upstream.clone(), notify.clone(), trip.clone());
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = inbound.into_split();
                let (mut moto_read, mut moto_write) = outbound.into_split();
                let hold = Arc::new(AtomicBool::new(false));
                let hold_up = hold.clone();
                let up = async move {
                    let mut seen = Vec::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&seen);
                        if !trip.load(Ordering::SeqCst)
                            && text.contains(&format!("Action={action}"))
                        {
                            trip.store(true, Ordering::SeqCst);
                            hold_up.store(true, Ordering::SeqCst);
                        }
                        if seen.len() > 256 * 1024 {
                            seen.drain(..seen.len() - 1024);
                        }
                        if moto_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = moto_write.shutdown().await;
                };
                let down = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = moto_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if hold.load(Ordering::SeqCst) {
                            // AWS did it; the worker never hears so.
                            notify.notify_one();
                            std::future::pending::<()>().await;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                tokio::join!(up, down);
            });
        }
    });
    (format!("http://{address}"), sent)
}

/// A worker killed right after AWS made an item, before it recorded the step:
/// the next worker finds the item and finishes; then removing the connection
/// leaves nothing of it in AWS, whichever item it was.
#[tokio::test]
async fn removal_after_a_crash_between_an_aws_call_and_its_step_leaves_nothing() {
    use std::time::Duration;
    for action in [
        "CreateVpcPeeringConnection",
        "CreateRoute",
        "AuthorizeSecurityGroupIngress",
    ] {
        let (link, sent) = withholding_link(action).await;
        let s = aws(json!({})).await;
        let set_endpoint = |url: String| {
            let pool = s.w.app.pool.clone();
            async move {
                sqlx::query("UPDATE provider_accounts SET settings = jsonb_set(settings, '{endpoint_url}', to_jsonb($1::text))")
                    .bind(url)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        };
        set_endpoint(link).await;
        s.w.app.stop_workers().await;
        let w = &s.w;
        let id = w.request().await["id"].as_str().unwrap().to_owned();
        approve_both(w, &id).await;
        let env = [
            ("DATABASE_URL", w.app.db.url.clone()),
            ("SWITCHBOARD_WORKER_HEARTBEAT_SECONDS", "1".to_owned()),
            ("SWITCHBOARD_OUTBOX", "1".to_owned()),
        ];
        let dir = std::env::temp_dir();
        let mut worker = crate::processes::start(&["work"], &env, &dir);
        tokio::time::timeout(Duration::from_secs(60), sent.notified())
            .await
            .unwrap_or_else(|_| panic!("{action} never reached AWS"));
        worker.kill().unwrap(); // SIGKILL: the step is never recorded
        worker.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Straight to AWS again: the next worker builds the rest, then removes it all.
        set_endpoint(moto::url()).await;
        let mut worker = crate::processes::start(&["work"], &env, &dir);
        crate::provisioning::until_status_within(w, &id, "active", Duration::from_secs(60)).await;
        let (status, body) = w
            .call(
                &w.requester,
                Method::DELETE,
                &format!("/api/v1/connections/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 202, "{body}");
        crate::provisioning::until_status_within(w, &id, "deleted", Duration::from_secs(60)).await;
        let _ = worker.kill();
        let _ = worker.wait();

        let Cloud::Aws {
            ec2,
            payments_vpc,
            search_vpc,
        } = &s.cloud
        else {
            unreachable!()
        };
        let live: Vec<_> = moto::peerings(ec2, payments_vpc, search_vpc)
            .await
            .into_iter()
            .filter(|(_, state)| {
                !["deleted", "rejected", "failed", "expired"].contains(&state.as_str())
            })
            .collect();
        assert!(live.is_empty(), "{action}: a peering is left: {live:?}");
        assert!(
            moto::routes_to(ec2, payments_vpc, "10.2.0.0/16")
                .await
                .is_empty(),
            "{action}: a route is left in payments"
        );
        assert!(
            moto::routes_to(ec2, search_vpc, "10.1.0.0/16")
                .await
                .is_empty(),
            "{action}: a route is left in search"
        );
        assert!(
            moto::ingress(ec2, payments_vpc)
                .await
                .iter()
                .all(|r| !r.contains("10.2.0.0/16")),
            "{action}: a rule is left in payments"
        );
        assert!(
            moto::ingress(ec2, search_vpc)
                .await
                .iter()
                .all(|r| !r.contains("10.1.0.0/16")),
            "{action}: a rule is left in search"
        );
    }
}

/// A peering made by hand, which a connection found and used, is not
/// Switchboard's: removing the connection leaves it (and removes what it made).
#[tokio::test]
async fn removal_leaves_a_peering_made_by_hand() {
    let s = aws(json!({})).await;
    let Cloud::Aws {
        ec2,
        payments_vpc,
        search_vpc,
    } = &s.cloud
    else {
        unreachable!()
    };
    let by_hand = ec2
        .create_vpc_peering_connection()
        .vpc_id(payments_vpc)
        .peer_vpc_id(search_vpc)
        .send()
        .await
        .unwrap();
    let pcx = by_hand
        .vpc_peering_connection()
        .unwrap()
        .vpc_peering_connection_id()
        .unwrap()
        .to_owned();
    ec2.accept_vpc_peering_connection()
        .vpc_peering_connection_id(&pcx)
        .send()
        .await
        .unwrap();
    let w = &s.w;
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    approve_both(w, &id).await;
    until_status(w, &id, "active").await;
    crate::provisioning::remove_now(w, &id).await;
    let left = moto::peerings(ec2, payments_vpc, search_vpc).await;
    assert!(
        left.iter().any(|(p, state)| *p == pcx && state == "active"),
        "{left:?}"
    );
    assert!(
        moto::routes_to(ec2, payments_vpc, "10.2.0.0/16")
            .await
            .is_empty(),
        "its routes are gone"
    );
}
