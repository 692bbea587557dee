//! The `linux` provider against real network stacks: two network namespaces
//! joined by a veth pair (the underlay), each with an address of its own network
//! on loopback. A Switchboard-built WireGuard tunnel (wireguard-go) carries TCP
//! on the approved port only; a tunnel removed by hand is drift and is repaired;
//! removing the connection removes the tunnel.
//!
//! These need root and /dev/net/tun. tests/run sets LINUX_LAB=1 when the
//! machine has them (and installs the tools); elsewhere the tests say why they
//! did not run and pass without checking anything.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::connections::{World, world_on};
use crate::helpers::{Options, eventually, spawn_app, spawn_app_with};
use crate::provisioning::{
    approve_both, remove_now, repair_now, until_status, until_status_within,
};

/// Two namespaces with a service listening on 10.62.0.1 (ports 443 and 8022) in
/// the second; removed when dropped.
pub(crate) struct Lab {
    pub a: String,
    pub b: String,
    /// The second namespace's end of the underlay.
    veth_b: String,
    server: Option<Child>,
}

fn add_address(ns: &str, cidr: &str, device: &str) {
    sh(&["ip", "-n", ns, "addr", "add", cidr, "dev", device]);
}

pub(crate) fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    /// The lab, or `None` (saying why) where this machine cannot make one.
    pub(crate) fn new(test: &str) -> Option<Lab> {
        if std::env::var("LINUX_LAB").as_deref() != Ok("1") {
            eprintln!(
                "SKIPPED {test}: needs root, /dev/net/tun, iproute2, nftables and wireguard-go; tests/run sets LINUX_LAB=1 where they are"
            );
            return None;
        }
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let (a, b) = (format!("sbt{tag}a"), format!("sbt{tag}b"));
        let (va, vb) = (format!("v{tag}a"), format!("v{tag}b"));
        let mut lab = Lab {
            a: a.clone(),
            b: b.clone(),
            veth_b: vb.clone(),
            server: None,
        };
        sh(&["ip", "netns", "add", &a]);
        sh(&["ip", "netns", "add", &b]);
        sh(&[
            "ip", "link", "add", &va, "type", "veth", "peer", "name", &vb,
        ]);
        for (ns, veth, underlay, own) in [
            (&a, &va, "192.168.77.1/30", "10.61.0.1/32"),
            (&b, &vb, "192.168.77.2/30", "10.62.0.1/32"),
        ] {
            sh(&["ip", "link", "set", veth, "netns", ns]);
            sh(&["ip", "-n", ns, "addr", "add", underlay, "dev", veth]);
            sh(&["ip", "-n", ns, "link", "set", veth, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "addr", "add", own, "dev", "lo"]);
        }
        lab.server = Some(
            Command::new("ip")
                .args(["netns", "exec", &b, "python3", "-c"])
                .arg(
                    "import socket, threading\n\
                     def serve(port):\n\
                     \x20   s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                     \x20   s.bind(('10.62.0.1', port)); s.listen()\n\
                     \x20   while True:\n\
                     \x20       c, _ = s.accept(); c.sendall(b'hello on %d' % port); c.close()\n\
                     for p in (443, 8022): threading.Thread(target=serve, args=(p,), daemon=True).start()\n\
                     threading.Event().wait()\n",
                )
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        Some(lab)
    }

    /// Whether a TCP connection from the first namespace to 10.62.0.1:`port`
    /// gets the service's greeting.
    pub(crate) async fn reaches(&self, port: u16) -> bool {
        reaches_from(&self.a, port).await
    }

    /// The names of the WireGuard interfaces Switchboard made in `ns`.
    pub(crate) fn tunnels(ns: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .filter(|n| n.starts_with("sb"))
            .collect()
    }

    /// The number of routes to `prefix` through a Switchboard interface in `ns`.
    pub(crate) fn routes_to(ns: &str, prefix: &str) -> usize {
        let out = Command::new("ip")
            .args(["-n", ns, "route", "show", prefix])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" dev sb"))
            .count()
    }

    /// The number of nftables rules in `ns` whose comment starts with `comment`.
    pub(crate) fn rules(ns: &str, comment: &str) -> usize {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!("comment \"{comment}")))
            .count()
    }
}

/// Whether a TCP connection from the namespace `ns` to the lab's service at
/// 10.62.0.1:`port` gets its greeting.
pub(crate) async fn reaches_from(ns: &str, port: u16) -> bool {
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c"])
        .arg(format!(
            "import socket\ns = socket.socket(); s.settimeout(2)\n\
             try:\n    s.connect(('10.62.0.1', {port})); print(s.recv(32).decode())\n\
             except Exception as e: print('no', e)\n"
        ))
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == format!("hello on {port}")
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        for ns in [&self.a, &self.b] {
            // A charon Switchboard started for a VPN, should a test stop half-way.
            let ipsec = format!("/run/switchboard/ipsec/{ns}");
            if let Ok(pid) = std::fs::read_to_string(format!("{ipsec}/charon.pid")) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
            let _ = std::fs::remove_dir_all(ipsec);
            // A tunnel's wireguard-go ends when its control socket goes.
            for tunnel in Lab::tunnels(ns) {
                let _ = std::fs::remove_file(format!("/var/run/wireguard/{tunnel}.sock"));
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The tunnel's far end (in the lab's second namespace, which the monitor
/// knows as `known_as`) deleted by hand: closed, drift naming it, and a lead's
/// repair brings it back. The far end's interface name.
async fn far_end_removed_is_drift_and_repaired(
    lab: &Lab,
    w: &World,
    id: &str,
    known_as: &str,
) -> Vec<String> {
    let far = Lab::tunnels(&lab.b);
    assert_eq!(far.len(), 1, "{far:?}");
    sh(&["ip", "-n", &lab.b, "link", "del", &far[0]]);
    assert!(!lab.reaches(443).await);
    // A sweep under way while the link went can see the link but not its key;
    // the next one names what is missing.
    let missing = format!("WireGuard interface {} is missing from {known_as}", far[0]);
    let drifted = until_status(w, id, "drifted").await;
    eventually(Duration::from_secs(30), &missing, || async {
        let (_, c) = w
            .call(
                &w.requester,
                Method::GET,
                &format!("/api/v1/connections/{id}"),
                None,
            )
            .await;
        (c["status"] == "drifted" && c["observed"]["details"].to_string().contains(&missing))
            .then_some(())
    })
    .await;
    assert!(drifted["observed"]["since"].is_string(), "{drifted}");
    repair_now(w, &w.payments_lead, id).await;
    until_status(w, id, "active").await;
    eventually(Duration::from_secs(20), "the tunnel back", || async {
        lab.reaches(443).await.then_some(())
    })
    .await;
    far
}

/// A lab network: payments' is the lab's first namespace's range
/// (10.61.0.0/24), search's the second's (10.62.0.0/24), wherever they live.
fn network(
    name: &str,
    account: &serde_json::Value,
    region: &str,
    external_id: &str,
) -> serde_json::Value {
    let (team, cidr) = if name.starts_with("payments") {
        ("payments", "10.61.0.0/24")
    } else {
        ("search", "10.62.0.0/24")
    };
    json!({"name": name, "team": team, "provider_account_id": account["id"],
           "region": region, "cidr": cidr, "external_id": external_id})
}

/// Payments' network is the lab's first namespace (10.61.0.0/24), search's the
/// second (10.62.0.0/24), both in one `linux` account; with `monitor`, the
/// portal sweeps every second.
pub(crate) async fn lab_world(lab: &Lab, monitor: bool) -> World {
    lab_world_every(lab, monitor.then_some(1)).await
}

/// The lab's world, with the monitor sweeping every `seconds` when given.
async fn lab_world_every(lab: &Lab, seconds: Option<u32>) -> World {
    let settings = json!({
        format!("endpoint.{}", lab.a): "192.168.77.1",
        format!("endpoint.{}", lab.b): "192.168.77.2",
    });
    let app = if let Some(seconds) = seconds {
        spawn_app_with(Options {
            scheduler: true,
            smtp: true,
            env: vec![("SWITCHBOARD_MONITOR_INTERVAL", seconds.to_string())],
            ..Options::default()
        })
        .await
    } else {
        spawn_app().await
    };
    world_on(
        app,
        json!({"kind": "linux", "name": "dc", "regions": ["local"], "settings": settings}),
        |account| {
            [
                ("payments", "10.61.0.0/24", &lab.a),
                ("search", "10.62.0.0/24", &lab.b),
            ]
            .map(|(team, _, ns)| network(&format!("{team}-dc"), account, "local", ns))
        },
    )
    .await
}

/// Proof, not only configuration: the monitor's probe from the source
/// namespace verifies the approved port; an nftables rule added by hand that
/// drops it (Switchboard's own rules untouched) makes the connection drift
/// within two intervals, its owners emailed what was tried, and it matches
/// (and is verified) again once the rule is gone.
#[tokio::test]
async fn a_hand_made_drop_of_the_approved_port_is_found_by_the_probe() {
    let Some(lab) = Lab::new("a_hand_made_drop_of_the_approved_port_is_found_by_the_probe") else {
        return;
    };
    // A sweep must outlast a silent probe (3 s).
    let w = lab_world_every(&lab, Some(5)).await;
    let id = w.request().await["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status_within(&w, &id, "active", Duration::from_secs(90)).await;
    let verified = eventually(Duration::from_secs(20), "a verified probe", || async {
        let (_, c) = w
            .call(
                &w.requester,
                Method::GET,
                &format!("/api/v1/connections/{id}"),
                None,
            )
            .await;
        c["observed"]["verified_at"].is_string().then_some(c)
    })
    .await;
    let how = verified["observed"]["verified"].as_str().unwrap();
    assert!(
        how.contains(&format!("from {} to 10.62.0.1:443 was accepted", lab.a)),
        "{how}"
    );

    let own_rules = Lab::rules(&lab.b, "switchboard");
    assert!(own_rules > 0);
    for line in [
        "add table inet handmade",
        "add chain inet handmade input { type filter hook input priority -10 ; }",
        "add rule inet handmade input tcp dport 443 drop",
    ] {
        let mut args = vec!["netns", "exec", &lab.b, "nft"];
        args.extend(line.split(' '));
        let mut all = vec!["ip"];
        all.extend(args);
        sh(&all);
    }
    let started = std::time::Instant::now();
    // Within two intervals.
    let drifted = until_status_within(&w, &id, "drifted", Duration::from_secs(10)).await;
    eprintln!("unreachable after {:?}", started.elapsed());
    assert_eq!(drifted["observed"]["state"], "unreachable", "{drifted}");
    let details = drifted["observed"]["details"].to_string();
    assert!(
        details.contains("the approved traffic does not pass")
            && details.contains("10.62.0.1:443 got no answer"),
        "{drifted}"
    );
    assert_eq!(
        Lab::rules(&lab.b, "switchboard"),
        own_rules,
        "Switchboard's own rules are untouched"
    );
    eventually(Duration::from_secs(20), "the lead emailed", || async {
        crate::helpers::maildev_messages(&w.payments_lead_email)
            .await
            .into_iter()
            .find(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("does not pass"))
            })
    })
    .await;

    sh(&[
        "ip", "netns", "exec", &lab.b, "nft", "delete", "table", "inet", "handmade",
    ]);
    until_status_within(&w, &id, "active", Duration::from_secs(20)).await;
    let (_, again) = w
        .call(
            &w.requester,
            Method::GET,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await;
    assert!(
        again["observed"]["verified_at"].as_str() > verified["observed"]["verified_at"].as_str(),
        "verified again: {again}"
    );
    remove_now(&w, &id).await;
}

#[tokio::test]
async fn a_wireguard_tunnel_carries_only_the_approved_port_and_is_repaired_after_drift() {
    let Some(lab) = Lab::new("a_wireguard_tunnel_carries_only_the_approved_port") else {
        return;
    };
    let w = lab_world(&lab, true).await;
    assert!(!lab.reaches(443).await, "no path before the tunnel");

    let c = w.request().await; // payments → search, tcp 443
    assert_eq!(c["mechanism"], "wireguard", "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status(&w, &id, "active").await;
    // Active means working: both ends have completed a handshake, before any
    // traffic of the test's own.
    for ns in [&lab.a, &lab.b] {
        let tunnels = Lab::tunnels(ns);
        assert_eq!(tunnels.len(), 1, "{ns}: {tunnels:?}");
        for interface in tunnels {
            let out = Command::new("wg")
                .args(["show", &interface, "latest-handshakes"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let at: u64 = text
                .split_whitespace()
                .nth(1)
                .unwrap_or("0")
                .parse()
                .unwrap();
            assert!(at > 0, "{interface} in {ns} has had no handshake: {text:?}");
        }
    }
    assert!(
        lab.reaches(443).await,
        "the approved port passes the tunnel"
    );
    assert!(!lab.reaches(8022).await, "another port does not");
    // The private keys are nowhere in the database.
    let dump: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(plan::text || coalesce(observed_detail::text, ''), ''), '') FROM connections",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert!(!dump.contains("private"), "{dump}");

    // The tunnel's far end removed by hand: drift, then a repair with new keys.
    let far = far_end_removed_is_drift_and_repaired(&lab, &w, &id, &lab.b).await;

    // The rule opening port 443 removed by hand: closed, drift, repaired.
    let listing = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.b,
            "nft",
            "-a",
            "list",
            "chain",
            "inet",
            "switchboard",
            "input",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let handle = listing
        .lines()
        .find(|l| l.contains("comment \"switchboard tcp 443"))
        .and_then(|l| l.rsplit("# handle ").next())
        .unwrap_or_else(|| panic!("{listing}"))
        .trim()
        .to_owned();
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.b,
        "nft",
        "delete",
        "rule",
        "inet",
        "switchboard",
        "input",
        "handle",
        &handle,
    ]);
    assert!(!lab.reaches(443).await, "closed without its rule");
    let drifted = until_status(&w, &id, "drifted").await;
    assert!(
        drifted["observed"]["details"]
            .to_string()
            .contains(&format!(
                "nftables rule tcp 443 from 10.61.0.0/24 is missing from {}",
                lab.b
            )),
        "{drifted}"
    );
    repair_now(&w, &w.search_lead, &id).await;
    until_status(&w, &id, "active").await;
    assert!(lab.reaches(443).await, "open again");
    assert!(!lab.reaches(8022).await, "and only that port");

    // Removal takes the tunnel, its routes and its rules away.
    remove_now(&w, &id).await;
    assert!(!lab.reaches(443).await);
    for ns in [&lab.a, &lab.b] {
        assert!(Lab::tunnels(ns).is_empty(), "{ns}");
        assert_eq!(Lab::rules(ns, "switchboard"), 0, "{ns}");
    }
    // Nor is a wireguard-go of theirs left running.
    let left = Command::new("pgrep")
        .args(["-f", &format!("wireguard-go {}", far[0])])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "{left:?}");
}

/// A tunnel whose ends stop hearing each other (the underlay drops UDP) is
/// drift once no session is left, and matches again by itself once they can
/// talk: WireGuard's keepalive brings the session back, nothing to repair.
/// Takes a little over three minutes (a session lasts 180 s).
#[tokio::test]
async fn a_tunnel_whose_ends_stop_hearing_each_other_is_drift_until_they_do_again() {
    let Some(lab) = Lab::new("a_tunnel_whose_ends_stop_hearing_each_other") else {
        return;
    };
    let w = lab_world(&lab, true).await;
    let c = w.request().await;
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status(&w, &id, "active").await;
    assert!(lab.reaches(443).await);

    // The far namespace drops every UDP packet, both ways: the tunnel's
    // packets no longer arrive, but nothing of Switchboard's is touched.
    for command in [
        "add table inet lab",
        "add chain inet lab input { type filter hook input priority -10; }",
        "add chain inet lab output { type filter hook output priority -10; }",
        "add rule inet lab input meta l4proto udp drop",
        "add rule inet lab output meta l4proto udp drop",
    ] {
        let mut args = vec!["ip", "netns", "exec", &lab.b, "nft"];
        args.extend(command.split(' '));
        sh(&args);
    }
    assert!(!lab.reaches(443).await, "the tunnel carries nothing");
    let drifted = until_status_within(&w, &id, "drifted", Duration::from_secs(260)).await;
    let details = drifted["observed"]["details"].to_string();
    assert!(
        details.contains("has had no handshake with") && details.contains("a session lasts 180 s"),
        "{drifted}"
    );

    // The underlay works again: the session comes back, and so does the
    // connection, without a repair.
    sh(&[
        "ip", "netns", "exec", &lab.b, "nft", "delete", "table", "inet", "lab",
    ]);
    until_status_within(&w, &id, "active", Duration::from_secs(90)).await;
    assert!(lab.reaches(443).await, "traffic passes again");

    remove_now(&w, &id).await;
}

/// The lab's second namespace playing AWS's end of a site-to-site VPN: a
/// strongSwan responder at the tunnel address AWS (moto) gives, with the key
/// AWS gives, carrying the VPC's range (10.62.0.0/24, where the lab's service
/// listens). Stopped when dropped.
struct AwsEnd {
    charon: Child,
    dir: std::path::PathBuf,
}

impl AwsEnd {
    fn start(lab: &Lab, outside: &str, key: &str) -> AwsEnd {
        let dir = std::env::temp_dir().join(format!("sbt-aws-end-{}", lab.b));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("strongswan.conf"),
            "charon {\n load = random nonce aes sha1 sha2 hmac gmp pem pkcs1 x509 revocation constraints pubkey kdf curve25519 kernel-libipsec kernel-netlink socket-default vici updown\n plugins {\n  vici {\n   socket = unix:///run/charon.vici\n  }\n }\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("swanctl.conf"),
            format!(
                "connections {{\n aws {{\n  version = 2\n  local_addrs = {outside}\n  remote_addrs = 192.168.77.1\n  proposals = aes128-sha256-modp2048\n  local {{\n   auth = psk\n   id = {outside}\n  }}\n  remote {{\n   auth = psk\n   id = 192.168.77.1\n  }}\n  children {{\n   aws {{\n    local_ts = 10.62.0.0/24\n    remote_ts = 10.61.0.0/24\n    esp_proposals = aes128-sha256-modp2048\n   }}\n  }}\n }}\n}}\nsecrets {{\n ike-aws {{\n  id-1 = {outside}\n  id-2 = 192.168.77.1\n  secret = \"{key}\"\n }}\n}}\n"
            ),
        )
        .unwrap();
        // AWS's tunnel address is on the far namespace's underlay.
        add_address(&lab.b, &format!("{outside}/32"), &lab.veth_b);
        sh(&[
            "ip",
            "-n",
            &lab.a,
            "route",
            "add",
            &format!("{outside}/32"),
            "via",
            "192.168.77.2",
        ]);
        let mut charon = Command::new("ip")
            .args(["netns", "exec", &lab.b, "unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$1\" /run && STRONGSWAN_CONF=/run/strongswan.conf exec /usr/lib/ipsec/charon")
            .arg("sh")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let uri = format!("unix://{}/charon.vici", dir.display());
        for _ in 0..50 {
            let loaded = Command::new("swanctl")
                .args(["--load-all", "--file"])
                .arg(dir.join("swanctl.conf"))
                .args(["--uri", &uri])
                .output()
                .unwrap();
            if loaded.status.success() {
                return AwsEnd { charon, dir };
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = charon.kill();
        let _ = charon.wait();
        panic!("the lab's AWS end did not start");
    }
}

impl Drop for AwsEnd {
    fn drop(&mut self) {
        let _ = self.charon.kill();
        let _ = self.charon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a TCP connection from the far namespace (the VPC) to the on-prem
/// service on 10.61.0.1:`port` gets its greeting.
async fn cloud_reaches(lab: &Lab, port: u16) -> bool {
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", &lab.b, "python3", "-c"])
        .arg(format!(
            "import socket\ns = socket.socket(); s.settimeout(2)\n\
             try:\n    s.connect(('10.61.0.1', {port})); print(s.recv(32).decode())\n\
             except Exception as e: print('no', e)\n"
        ))
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == format!("on-prem {port}")
}

/// An on-prem network (the lab's first namespace) and a VPC in moto whose
/// range the lab's second namespace plays. Switchboard builds the VPN in AWS
/// (customer gateway, VPN on the transit gateway, static routes) and the
/// on-prem IPsec end with the tunnel address and key AWS gives; traffic from
/// the VPC passes on the approved port only; a tunnel taken down by hand is
/// drift and is repaired; removal takes both ends away.
#[tokio::test]
async fn an_on_prem_network_reaches_a_vpc_through_the_clouds_vpn() {
    let Some(lab) = Lab::new("an_on_prem_network_reaches_a_vpc_through_the_clouds_vpn") else {
        return;
    };
    let ec2 = crate::moto::ec2("us-east-1");
    let tgw = crate::moto::transit_gateway(&ec2).await;
    let vpc = crate::moto::vpc(&ec2, "10.62.0.0/24").await;
    let app = spawn_app_with(Options {
        scheduler: true,
        env: vec![("SWITCHBOARD_MONITOR_INTERVAL", "1".into())],
        ..Options::default()
    })
    .await;
    let admin = app.token("root@example.test", true).await;
    let (status, dc) = crate::helpers::api_call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "linux", "name": "dc", "regions": ["local"],
                    "settings": {format!("endpoint.{}", lab.a): "192.168.77.1"}})),
    )
    .await;
    assert_eq!(status, 201, "{dc}");
    let w = world_on(
        app,
        crate::moto::account("cloud", json!({"transit_gateway.us-east-1": tgw})),
        |cloud| {
            [
                network("payments-dc", &dc, "local", &lab.a),
                network("search-vpc", cloud, "us-east-1", &vpc),
            ]
        },
    )
    .await;
    let mut server = Command::new("ip")
        .args(["netns", "exec", &lab.a, "python3", "-c"])
        .arg(
            "import socket, threading\n\
             def serve(port):\n\
             \x20   s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             \x20   s.bind(('10.61.0.1', port)); s.listen()\n\
             \x20   while True:\n\
             \x20       c, _ = s.accept(); c.sendall(b'on-prem %d' % port); c.close()\n\
             for p in (443, 8022): threading.Thread(target=serve, args=(p,), daemon=True).start()\n\
             threading.Event().wait()\n",
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    assert!(!cloud_reaches(&lab, 443).await, "no path before the VPN");
    let c = w.request().await; // payments (on-prem) ↔ search (VPC), tcp 443
    assert_eq!(c["mechanism"], "site-to-site-vpn", "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    // The lab plays AWS's end once AWS has made the VPN and its tunnels.
    let (outside, key) = eventually(Duration::from_secs(30), "the VPN in AWS", || async {
        let found = ec2.describe_vpn_connections().send().await.ok()?;
        let vpn = found
            .vpn_connections()
            .iter()
            .find(|v| {
                v.transit_gateway_id() == Some(tgw.as_str())
                    && v.state().is_some_and(|s| s.as_str() == "available")
            })?
            .clone();
        let config = vpn.customer_gateway_configuration()?.to_owned();
        let pick = |text: &str, tag: &str| {
            let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
            let end = start + text[start..].find(&format!("</{tag}>"))?;
            Some(text[start..end].trim().to_owned())
        };
        let aws_side = pick(&config, "vpn_gateway")?;
        Some((
            pick(&aws_side, "ip_address")?,
            pick(&config, "pre_shared_key")?,
        ))
    })
    .await;
    let _aws = AwsEnd::start(&lab, &outside, &key);
    let active = until_status_within(&w, &id, "active", Duration::from_secs(120)).await;
    assert!(
        active["steps"].to_string().contains("IPsec tunnel"),
        "{active}"
    );
    assert!(
        cloud_reaches(&lab, 443).await,
        "the approved port passes the VPN"
    );
    assert!(!cloud_reaches(&lab, 8022).await, "another port does not");
    // In AWS: a customer gateway at the on-prem endpoint, and the on-prem range
    // routed to the VPN in the transit gateway's table.
    let gateways = ec2.describe_customer_gateways().send().await.unwrap();
    assert!(
        gateways
            .customer_gateways()
            .iter()
            .any(|g| g.ip_address() == Some("192.168.77.1") && g.state() == Some("available")),
        "{gateways:?}"
    );
    // The key is nowhere Switchboard keeps anything: not in the database, not
    // in charon's directory.
    let dump: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(plan::text || coalesce(observed_detail::text, ''), ''), '') FROM connections",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    let steps: String =
        sqlx::query_scalar("SELECT coalesce(string_agg(t::text, ''), '') FROM connection_steps t")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert!(!dump.contains(&key) && !steps.contains(&key));
    let ipsec_dir = format!("/run/switchboard/ipsec/{}", lab.a);
    let grep = Command::new("grep")
        .args(["-rl", &key, &ipsec_dir])
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty(), "{grep:?}");

    // The tunnel taken down by hand: drift, then a repair brings it back.
    let uri = format!("unix://{ipsec_dir}/charon.vici");
    let sas = Command::new("swanctl")
        .args(["--list-sas", "--uri", &uri])
        .output()
        .unwrap();
    let tunnel = String::from_utf8_lossy(&sas.stdout)
        .lines()
        .find(|l| l.contains("ESTABLISHED"))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("{sas:?}"))
        .to_owned();
    sh(&["swanctl", "--terminate", "--ike", &tunnel, "--uri", &uri]);
    assert!(!cloud_reaches(&lab, 443).await);
    let drifted = until_status(&w, &id, "drifted").await;
    assert!(
        drifted["observed"]["details"]
            .to_string()
            .contains(&format!(
                "IPsec tunnel {tunnel} in {} is not established",
                lab.a
            )),
        "{drifted}"
    );
    repair_now(&w, &w.payments_lead, &id).await;
    until_status(&w, &id, "active").await;
    assert!(cloud_reaches(&lab, 443).await, "through the VPN again");

    // AWS's side changed by hand: the on-prem range no longer routed to the
    // VPN in the transit gateway's table is drift too, and is repaired.
    let gateways = ec2
        .describe_transit_gateways()
        .transit_gateway_ids(&tgw)
        .send()
        .await
        .unwrap();
    let table = gateways.transit_gateways()[0]
        .options()
        .and_then(|o| o.association_default_route_table_id())
        .unwrap()
        .to_owned();
    ec2.delete_transit_gateway_route()
        .transit_gateway_route_table_id(&table)
        .destination_cidr_block("10.61.0.0/24")
        .send()
        .await
        .unwrap();
    let drifted = until_status(&w, &id, "drifted").await;
    let details = drifted["observed"]["details"].to_string();
    assert!(
        details.contains("route 10.61.0.0/24 → VPN vpn-")
            && details.contains(&format!("is missing from {table}")),
        "{drifted}"
    );
    repair_now(&w, &w.search_lead, &id).await;
    until_status(&w, &id, "active").await;
    let routes = ec2
        .search_transit_gateway_routes()
        .transit_gateway_route_table_id(&table)
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("type")
                .values("static")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        routes
            .routes()
            .iter()
            .any(|r| r.destination_cidr_block() == Some("10.61.0.0/24")),
        "{routes:?}"
    );

    // Removal: the VPN is deleted in AWS, and the on-prem end is gone.
    remove_now(&w, &id).await;
    let vpns = ec2.describe_vpn_connections().send().await.unwrap();
    assert!(
        vpns.vpn_connections()
            .iter()
            .filter(|v| v.transit_gateway_id() == Some(tgw.as_str()))
            .all(|v| v.state().is_some_and(|s| s.as_str() == "deleted")),
        "{vpns:?}"
    );
    assert!(
        !std::path::Path::new(&ipsec_dir).exists(),
        "charon's directory is gone"
    );
    assert_eq!(Lab::rules(&lab.a, "switchboard"), 0);
    let _ = server.kill();
    let _ = server.wait();
}

/// The lab's second namespace as a host reached over SSH: an sshd of the
/// test's own in it, on an address the workers' host reaches through a veth
/// pair, with a host key the test pins and a client key the account names.
struct SshHost {
    sshd: Child,
    dir: std::path::PathBuf,
    veth: String,
    /// The account settings that reach it.
    settings: serde_json::Value,
}

/// Where the workers' host reaches the SSH host (one such test at a time).
const SSH_HOST: &str = "192.168.78.2";

impl SshHost {
    fn start(lab: &Lab) -> SshHost {
        let dir = std::env::temp_dir().join(format!("sbt-ssh-{}", lab.b));
        std::fs::create_dir_all(&dir).unwrap();
        for key in ["host_key", "client_key"] {
            let _ = std::fs::remove_file(dir.join(key));
            sh(&[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                dir.join(key).to_str().unwrap(),
            ]);
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        std::fs::write(
            dir.join("known_hosts"),
            format!("{SSH_HOST} {}\n", host_key.join(" ")),
        )
        .unwrap();
        // Not "s…": a tag starting with "b" would make it look like a tunnel
        // ("sb…") to Lab::tunnels.
        let veth = format!("h{}", &lab.b[3..11]);
        let far = format!("{veth}b");
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &far,
        ]);
        sh(&["ip", "link", "set", &far, "netns", &lab.b]);
        sh(&["ip", "addr", "add", "192.168.78.1/30", "dev", &veth]);
        sh(&["ip", "link", "set", &veth, "up"]);
        add_address(&lab.b, &format!("{SSH_HOST}/30"), &far);
        sh(&["ip", "-n", &lab.b, "link", "set", &far, "up"]);
        std::fs::create_dir_all("/run/sshd").unwrap();
        let path = |f: &str| dir.join(f).to_str().unwrap().to_owned();
        let sshd = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.b,
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
                "/dev/null",
                "-h",
            ])
            .arg(path("host_key"))
            .args(["-o", &format!("ListenAddress={SSH_HOST}")])
            .args([
                "-o",
                "PermitRootLogin=prohibit-password",
                "-o",
                "StrictModes=no",
                "-o",
                "UsePAM=no",
            ])
            .args([
                "-o",
                &format!("AuthorizedKeysFile={}", path("authorized_keys")),
            ])
            .args(["-o", &format!("PidFile={}", path("sshd.pid"))])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let settings = json!({
            format!("endpoint.{}", lab.a): "192.168.77.1",
            format!("endpoint.ssh://root@{SSH_HOST}"): "192.168.77.2",
            "ssh_identity": path("client_key"),
            "ssh_known_hosts": path("known_hosts"),
        });
        let host = SshHost {
            sshd,
            dir,
            veth,
            settings,
        };
        for _ in 0..50 {
            if std::net::TcpStream::connect_timeout(
                &format!("{SSH_HOST}:22").parse().unwrap(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return host;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the lab's sshd did not start");
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A network that is a host reached over SSH (`ssh://root@…`, its own network
/// stack) linked to a local namespace: the same WireGuard tunnel, rules and
/// observation as between namespaces, every command on the far host run over
/// SSH with its host key checked.
#[tokio::test]
async fn a_host_reached_over_ssh_is_linked_observed_and_repaired_like_a_namespace() {
    let Some(lab) = Lab::new("a_host_reached_over_ssh_is_linked_observed_and_repaired") else {
        return;
    };
    let host = SshHost::start(&lab);
    let remote = format!("ssh://root@{SSH_HOST}");
    let app = spawn_app_with(Options {
        scheduler: true,
        // Each sweep asks the host over SSH: a round trip or two.
        env: vec![("SWITCHBOARD_MONITOR_INTERVAL", "2".into())],
        ..Options::default()
    })
    .await;
    let w = world_on(
        app,
        json!({"kind": "linux", "name": "dc", "regions": ["local"], "settings": host.settings}),
        |account| {
            [
                network("payments-dc", account, "local", &lab.a),
                network("search-host", account, "local", &remote),
            ]
        },
    )
    .await;
    let c = w.request().await;
    assert_eq!(c["mechanism"], "wireguard", "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    until_status(&w, &id, "active").await;
    assert!(lab.reaches(443).await, "the approved port reaches the host");
    assert!(!lab.reaches(8022).await, "another port does not");
    // Its end removed by hand on the host: drift named by the host, repaired.
    far_end_removed_is_drift_and_repaired(&lab, &w, &id, &remote).await;

    remove_now(&w, &id).await;
    assert!(Lab::tunnels(&lab.b).is_empty());
    assert_eq!(Lab::rules(&lab.b, "switchboard"), 0);

    // The same host through an account that has not pinned its key: nothing
    // is run there, and the failure says what to check.
    let admin = w.app.token("root@example.test", true).await;
    let unpinned = host.dir.join("no_known_hosts");
    std::fs::write(&unpinned, "").unwrap();
    let mut settings = host.settings.clone();
    settings["ssh_known_hosts"] = json!(unpinned.to_str().unwrap());
    settings[format!("endpoint.ssh://root@{SSH_HOST}:22")] = json!("192.168.77.2");
    let (status, account) = crate::helpers::api_call(
        &w.app,
        &admin,
        Method::POST,
        "/api/v1/provider-accounts",
        Some(json!({"kind": "linux", "name": "dc-unpinned", "regions": ["local"], "settings": settings})),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let other = crate::connections::network_from(
        &w.app,
        &admin,
        json!({"name": "search-unpinned", "team": "search", "provider_account_id": account["id"],
               "region": "local", "cidr": "10.64.0.0/24", "external_id": format!("{remote}:22")}),
    )
    .await;
    let (status, c) = w
        .call(
            &w.requester,
            Method::POST,
            "/api/v1/connections",
            Some(json!({"kind": "network-to-network", "reason": "unpinned", "source_network_id": w.payments_net,
                        "destination_network_id": other, "protocol": "tcp", "ports": "443"})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    approve_both(&w, &id).await;
    let failed = until_status(&w, &id, "failed").await;
    assert!(
        failed["failure"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!(
                "root@{SSH_HOST} did not show a host key listed in the account's ssh_known_hosts"
            )),
        "{failed}"
    );
    assert!(
        Lab::tunnels(&lab.b).is_empty(),
        "nothing was made on the host"
    );
}
