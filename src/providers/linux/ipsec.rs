//! The on-prem end of a cloud's site-to-site VPN: IKEv2 with pre-shared keys,
//! run by strongSwan's charon in the network's namespace. This kernel has no
//! ESP transforms, so charon carries the traffic itself (`kernel-libipsec`,
//! through its TUN device `ipsec0`), one charon per namespace.
//!
//! Each charon runs in a mount namespace of its own whose `/run` is
//! `/run/switchboard/ipsec/<namespace>`: its pid file, its control socket
//! (vici) and its settings live there, so several never collide. The
//! tunnels' definitions (no secrets) are files under `conns/` there; the
//! pre-shared keys, which the cloud hands over on each run, go straight to
//! charon's memory over vici and are never written anywhere.
//!
//! Working, not just configured: a tunnel is built once its IKE and ESP
//! security associations are up, and the monitor reports a tunnel whose
//! security associations are not.

use std::collections::HashMap;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::site::Site;
use super::{
    CHAINS, close_tunnel_device, delete_rules, drop_table_if_unused, list, run, tunnel_prefixes,
};
use crate::providers::{Build, Item, ProviderError, Step, fnv1a};

/// The TUN device through which charon carries a namespace's tunnels.
pub(super) const DEVICE: &str = "ipsec0";

/// Where Debian and others put charon.
const CHARON: [&str; 3] = [
    "/usr/lib/ipsec/charon",
    "/usr/libexec/ipsec/charon",
    "/usr/lib/strongswan/charon",
];

/// How long `apply` waits for a tunnel's security associations.
const FIRST_SA: u32 = 15;

/// What AWS's tunnels accept (IKEv2, AES, SHA-2 or SHA-1, DH group 14).
const PROPOSALS: &str = "aes128-sha256-modp2048,aes256-sha256-modp2048,aes128-sha1-modp2048";

fn dir(ns: &str) -> String {
    format!("/run/switchboard/ipsec/{ns}")
}

fn socket(ns: &str) -> String {
    format!("{}/charon.vici", dir(ns))
}

/// The tunnels of an item are named `<base>-1`, `<base>-2`…
fn base(ns: &str, item: &Item) -> String {
    format!("sb{:08x}", fnv1a(format!("{ns}|{}", item.name).as_bytes()))
}

fn drop_comment(base: &str) -> String {
    format!("switchboard tunnel {base}")
}

/// IPsec ends run in namespaces of the workers' host only (charon's files and
/// control socket are local).
fn local_namespace(site: &Site) -> Result<&str, ProviderError> {
    site.local_namespace().ok_or_else(|| {
        ProviderError::Permanent(format!(
            "{site} is reached over SSH, and this version of Switchboard runs the on-prem end of a cloud VPN only in namespaces of the workers' host"
        ))
    })
}

/// AWS's end of each tunnel and its key, as the cloud's VPN handed them over;
/// tunnels to the same address are one.
fn handed(item: &Item) -> Result<Vec<(String, String)>, ProviderError> {
    let given = match &item.build {
        Build::IpsecTunnel { tunnels, .. } => tunnels.as_slice(),
        _ => &[],
    };
    let mut tunnels: Vec<(String, String)> = Vec::new();
    for given in given {
        let (address, key) = (given.address.as_str(), given.psk.as_str());
        if address.parse::<std::net::IpAddr>().is_err() {
            return Err(ProviderError::Permanent(format!(
                "the cloud gave {address:?} as a tunnel address, which is not an IP address"
            )));
        }
        if !tunnels.iter().any(|(a, _)| a == address) {
            tunnels.push((address.to_owned(), key.to_owned()));
        }
    }
    if tunnels.is_empty() {
        return Err(ProviderError::Permanent(format!(
            "{}: the cloud's VPN handed over no tunnels to connect to",
            item.name
        )));
    }
    Ok(tunnels)
}

async fn swanctl(ns: &str, args: &[&str]) -> Result<String, ProviderError> {
    let uri = format!("unix://{}", socket(ns));
    let mut all = args.to_vec();
    all.extend(["--uri", &uri]);
    run("swanctl", &all, None).await
}

async fn running(ns: &str) -> bool {
    swanctl(ns, &["--stats"]).await.is_ok()
}

/// Starts the namespace's charon unless it runs.
async fn ensure_charon(ns: &str) -> Result<(), ProviderError> {
    if running(ns).await {
        return Ok(());
    }
    let charon = CHARON
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| {
            ProviderError::Permanent(
                "strongSwan's charon is not installed on this host: the on-prem end of a cloud VPN needs strongswan-charon, strongswan-swanctl and libcharon-extra-plugins (kernel-libipsec)".into(),
            )
        })?;
    let dir = dir(ns);
    let io = |e: std::io::Error| ProviderError::Permanent(format!("{dir}: {e}"));
    tokio::fs::create_dir_all(format!("{dir}/conns"))
        .await
        .map_err(io)?;
    // Paths as charon sees them, with this directory as its /run.
    let settings = "charon {\n\
        \x20 load = random nonce aes sha1 sha2 hmac gmp pem pkcs1 x509 revocation constraints pubkey kdf curve25519 kernel-libipsec kernel-netlink socket-default vici updown\n\
        \x20 install_routes = no\n\
        \x20 plugins {\n    vici {\n      socket = unix:///run/charon.vici\n    }\n  }\n\
        \x20 filelog {\n    log {\n      path = /run/charon.log\n      default = 1\n    }\n  }\n\
        }\n";
    tokio::fs::write(format!("{dir}/strongswan.conf"), settings)
        .await
        .map_err(io)?;
    // A pid file left by a charon that died would stop the new one.
    let _ = tokio::fs::remove_file(format!("{dir}/charon.pid")).await;
    run(
        "setsid",
        &[
            "-f",
            "ip",
            "netns",
            "exec",
            ns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind \"$1\" /run && STRONGSWAN_CONF=/run/strongswan.conf exec \"$2\" >/dev/null 2>&1",
            "sh",
            &dir,
            charon,
        ],
        None,
    )
    .await?;
    for _ in 0..50 {
        if running(ns).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(ProviderError::Transient(format!(
        "strongSwan's charon did not start in the namespace {ns} within 10 s (see {dir}/charon.log)"
    )))
}

/// A tunnel's definition, for `swanctl --load-conns`: no secret in it.
fn definition(name: &str, local: &str, remote: &str, own: &[IpNet], theirs: &[IpNet]) -> String {
    format!(
        "connections {{\n  {name} {{\n    version = 2\n    local_addrs = {local}\n    remote_addrs = {remote}\n    proposals = {PROPOSALS}\n    rekey_time = 7h\n    dpd_delay = 10s\n    local {{\n      auth = psk\n      id = {local}\n    }}\n    remote {{\n      auth = psk\n      id = {remote}\n    }}\n    children {{\n      {name} {{\n        local_ts = {}\n        remote_ts = {}\n        esp_proposals = {PROPOSALS}\n        rekey_time = 45m\n        dpd_action = restart\n        close_action = start\n      }}\n    }}\n  }}\n}}\n",
        list(own),
        list(theirs)
    )
}

/// Loads every tunnel definition of the namespace (what is not among them
/// is unloaded).
async fn load_definitions(ns: &str) -> Result<(), ProviderError> {
    let dir = dir(ns);
    let main = format!("{dir}/swanctl.conf");
    tokio::fs::write(&main, format!("include {dir}/conns/*.conf\n"))
        .await
        .map_err(|e| ProviderError::Permanent(format!("{main}: {e}")))?;
    swanctl(ns, &["--load-conns", "--file", &main]).await?;
    Ok(())
}

/// Security associations by tunnel name: (IKE established, ESP installed).
fn parse_sas(text: &str) -> HashMap<String, (bool, bool)> {
    let mut sas: HashMap<String, (bool, bool)> = HashMap::new();
    let mut current = None;
    for line in text.lines() {
        let indented = line.starts_with(' ');
        let mut words = line.split_whitespace();
        let Some(name) = words.next().and_then(|w| w.strip_suffix(':')) else {
            continue;
        };
        let fields: Vec<&str> = line.split(", ").collect();
        if !indented && fields.len() > 1 {
            let established = fields.contains(&"ESTABLISHED");
            let entry = sas.entry(name.to_owned()).or_default();
            entry.0 |= established;
            current = Some(name.to_owned());
        } else if indented
            && line.contains(", reqid ")
            && let Some(ike) = &current
        {
            let installed = fields.contains(&"INSTALLED");
            sas.entry(ike.clone()).or_default().1 |= installed && ike == name;
        }
    }
    sas
}

/// The tunnel names charon has loaded.
fn parse_conns(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(": ").map(|(name, _)| name.to_owned()))
        .collect()
}

/// Builds the item's tunnels: definitions, keys, security associations, and
/// the rule that closes `ipsec0` to all but what a firewall item opens.
pub(super) async fn apply(site: &Site, local: &str, item: &Item) -> Result<Step, ProviderError> {
    let ns = local_namespace(site)?;
    let (own, theirs) = tunnel_prefixes(item)?;
    let base = base(ns, item);
    // Each tunnel with its name: `<base>-1`, `<base>-2`…
    let tunnels: Vec<(String, String, String)> = handed(item)?
        .into_iter()
        .enumerate()
        .map(|(n, (remote, key))| (format!("{base}-{}", n + 1), remote, key))
        .collect();
    ensure_charon(ns).await?;
    let mut action = "found";
    for (name, remote, _) in &tunnels {
        let path = format!("{}/conns/{name}.conf", dir(ns));
        let wanted = definition(name, local, remote, &own, &theirs);
        if tokio::fs::read_to_string(&path).await.ok().as_deref() != Some(wanted.as_str()) {
            tokio::fs::write(&path, wanted)
                .await
                .map_err(|e| ProviderError::Permanent(format!("{path}: {e}")))?;
            action = "created";
        }
    }
    load_definitions(ns).await?;
    for (name, remote, key) in &tunnels {
        vici::load_shared(&socket(ns), name, &[local, remote], key).await?;
    }
    close_tunnel_device(site, &own, DEVICE, &drop_comment(&base)).await?;
    // Built means working: each tunnel's security associations are up.
    let sas = parse_sas(&swanctl(ns, &["--list-sas"]).await?);
    for (name, remote, _) in &tunnels {
        if sas.get(name) == Some(&(true, true)) {
            continue;
        }
        action = "created";
        let timeout = FIRST_SA.to_string();
        let started = swanctl(
            ns,
            &[
                "--initiate",
                "--ike",
                name,
                "--child",
                name,
                "--timeout",
                &timeout,
            ],
        )
        .await;
        if started.is_err() {
            return Err(ProviderError::Transient(format!(
                "the IPsec tunnel {name} from {local} to {remote} did not come up within {FIRST_SA} s: check that UDP 500 and 4500 pass between them and that the VPN's pre-shared key is current"
            )));
        }
    }
    Ok(Step::new(
        action,
        item,
        Some(format!(
            "{base} to {} in {ns}",
            tunnels
                .iter()
                .map(|(_, a, _)| a.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    ))
}

/// What a namespace's charon has: the tunnels loaded and their security
/// associations; `None` when no charon answers.
pub(super) struct Daemon {
    conns: Vec<String>,
    sas: HashMap<String, (bool, bool)>,
}

pub(super) async fn read(site: &Site) -> Option<Daemon> {
    let ns = site.local_namespace()?;
    let conns = swanctl(ns, &["--list-conns"]).await.ok()?;
    let sas = swanctl(ns, &["--list-sas"]).await.ok()?;
    Some(Daemon {
        conns: parse_conns(&conns),
        sas: parse_sas(&sas),
    })
}

/// How an item's tunnels differ from what is wanted, in plain words.
pub(super) fn differences(
    ns: &str,
    item: &Item,
    daemon: Option<&Daemon>,
    rules: &[(String, u64, String)],
) -> Vec<String> {
    let Some(daemon) = daemon else {
        return vec![format!(
            "the IPsec daemon (strongSwan's charon) of {ns} is not running"
        )];
    };
    let base = base(ns, item);
    let ours: Vec<&String> = daemon
        .conns
        .iter()
        .filter(|c| c.strip_prefix(&base).is_some_and(|n| n.starts_with('-')))
        .collect();
    let mut out = Vec::new();
    if ours.is_empty() {
        out.push(format!(
            "the IPsec tunnels {base} of {} are not loaded in {ns}",
            item.name
        ));
    }
    for name in ours {
        match daemon.sas.get(name) {
            Some((true, true)) => {}
            Some((true, false)) => out.push(format!(
                "IPsec tunnel {name} in {ns} is connected but carries nothing (no ESP security association)"
            )),
            _ => out.push(format!("IPsec tunnel {name} in {ns} is not established")),
        }
    }
    let comment = drop_comment(&base);
    let closed = CHAINS
        .iter()
        .all(|chain| rules.iter().any(|(c, _, m)| c == chain && *m == comment));
    if !closed {
        out.push(format!(
            "the nftables rule closing {DEVICE} to all but what is opened is missing from {ns}"
        ));
    }
    out
}

/// Takes the item's tunnels down and away; the namespace's charon stops with
/// its last tunnel. Whether there was anything to remove.
pub(super) async fn remove(site: &Site, item: &Item) -> Result<bool, ProviderError> {
    let Some(ns) = site.local_namespace() else {
        return Ok(false);
    };
    let base = base(ns, item);
    let mut removed = delete_rules(site, &drop_comment(&base)).await?;
    let conns = format!("{}/conns", dir(ns));
    let up = running(ns).await;
    let mut left = 0;
    if let Ok(mut files) = tokio::fs::read_dir(&conns).await {
        while let Ok(Some(file)) = files.next_entry().await {
            let name = file.file_name().to_string_lossy().into_owned();
            let Some(tunnel) = name.strip_suffix(".conf") else {
                continue;
            };
            if !tunnel.starts_with(&format!("{base}-")) {
                left += 1;
                continue;
            }
            let _ = tokio::fs::remove_file(file.path()).await;
            if up {
                let _ = swanctl(ns, &["--terminate", "--ike", tunnel, "--timeout", "5"]).await;
                let _ = vici::unload_shared(&socket(ns), tunnel).await;
            }
            removed = true;
        }
    }
    if !up {
        return Ok(removed);
    }
    if left > 0 {
        load_definitions(ns).await?;
        return Ok(removed);
    }
    // The last tunnel: charon and its directory go too.
    if let Ok(pid) = tokio::fs::read_to_string(format!("{}/charon.pid", dir(ns))).await {
        run("kill", &[pid.trim()], None).await?;
        for _ in 0..50 {
            if !running(ns).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = tokio::fs::remove_dir_all(dir(ns)).await;
    drop_table_if_unused(site).await?;
    Ok(true)
}

/// Just enough of strongSwan's vici protocol to hand charon a pre-shared key
/// (and take it back) without writing it to a file: swanctl can only load
/// every key at once, from files.
mod vici {
    use super::*;

    const REQUEST: u8 = 0;
    const RESPONSE: u8 = 1;
    const KEY_VALUE: u8 = 3;
    const LIST_START: u8 = 4;
    const LIST_ITEM: u8 = 5;
    const LIST_END: u8 = 6;

    pub(super) fn key_value(buf: &mut Vec<u8>, key: &str, value: &str) {
        buf.push(KEY_VALUE);
        buf.push(key.len() as u8);
        buf.extend(key.as_bytes());
        buf.extend((value.len() as u16).to_be_bytes());
        buf.extend(value.as_bytes());
    }

    /// One request; charon's answer as its key/value pairs.
    async fn call(
        socket: &str,
        command: &str,
        message: &[u8],
    ) -> Result<HashMap<String, String>, ProviderError> {
        let failed = |e: std::io::Error| {
            ProviderError::Transient(format!("charon's control socket {socket}: {e}"))
        };
        let mut stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(failed)?;
        let mut packet = vec![REQUEST, command.len() as u8];
        packet.extend(command.as_bytes());
        packet.extend(message);
        let mut framed = (packet.len() as u32).to_be_bytes().to_vec();
        framed.extend(packet);
        stream.write_all(&framed).await.map_err(failed)?;
        let length = stream.read_u32().await.map_err(failed)? as usize;
        let mut answer = vec![0; length];
        stream.read_exact(&mut answer).await.map_err(failed)?;
        if answer.first() != Some(&RESPONSE) {
            return Err(ProviderError::Permanent(format!(
                "charon does not know the command {command}"
            )));
        }
        Ok(pairs(&answer[1..]))
    }

    /// The top-level key/value pairs of a message (lists and sections skipped).
    pub(super) fn pairs(message: &[u8]) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let mut i = 0;
        let byte = |i: usize| message.get(i).copied().map(usize::from);
        while let Some(kind) = byte(i) {
            i += 1;
            match kind as u8 {
                1 | LIST_START => i += 1 + byte(i).unwrap_or(0),
                2 | LIST_END => {}
                KEY_VALUE => {
                    let Some(k) = byte(i) else { break };
                    let key =
                        String::from_utf8_lossy(message.get(i + 1..i + 1 + k).unwrap_or_default());
                    i += 1 + k;
                    let v = byte(i).unwrap_or(0) << 8 | byte(i + 1).unwrap_or(0);
                    let value =
                        String::from_utf8_lossy(message.get(i + 2..i + 2 + v).unwrap_or_default());
                    i += 2 + v;
                    out.insert(key.into_owned(), value.into_owned());
                }
                LIST_ITEM => i += 2 + (byte(i).unwrap_or(0) << 8 | byte(i + 1).unwrap_or(0)),
                _ => break,
            }
        }
        out
    }

    fn answered(answer: HashMap<String, String>, what: &str) -> Result<(), ProviderError> {
        if answer.get("success").map(String::as_str) == Some("yes") {
            Ok(())
        } else {
            Err(ProviderError::Permanent(format!(
                "charon refused to {what}: {}",
                answer
                    .get("errmsg")
                    .map_or("no reason given", String::as_str)
            )))
        }
    }

    /// Gives charon the pre-shared key between `owners` under `id`,
    /// replacing an earlier one of that id.
    pub(super) async fn load_shared(
        socket: &str,
        id: &str,
        owners: &[&str],
        key: &str,
    ) -> Result<(), ProviderError> {
        let mut message = Vec::new();
        key_value(&mut message, "id", id);
        key_value(&mut message, "type", "IKE");
        key_value(&mut message, "data", key);
        message.push(LIST_START);
        message.push("owners".len() as u8);
        message.extend(b"owners");
        for owner in owners {
            message.push(LIST_ITEM);
            message.extend((owner.len() as u16).to_be_bytes());
            message.extend(owner.as_bytes());
        }
        message.push(LIST_END);
        let answer = call(socket, "load-shared", &message).await?;
        answered(answer, &format!("take the key of {id}"))
    }

    pub(super) async fn unload_shared(socket: &str, id: &str) -> Result<(), ProviderError> {
        let mut message = Vec::new();
        key_value(&mut message, "id", id);
        let answer = call(socket, "unload-shared", &message).await?;
        answered(answer, &format!("drop the key of {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_associations_are_read_from_swanctl() {
        let text = "\
sb1-1: #2, ESTABLISHED, IKEv2, 09860947db4836be_i* 56b310e942206dab_r
  local  '192.168.88.1' @ 192.168.88.1[4500]
  remote '52.2.144.13' @ 52.2.144.13[4500]
  sb1-1: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-128/HMAC_SHA2_256_128
    local  10.71.0.0/16
sb1-2: #3, CONNECTING, IKEv2, 1234_i 0000_r
";
        let sas = parse_sas(text);
        assert_eq!(sas.get("sb1-1"), Some(&(true, true)));
        assert_eq!(sas.get("sb1-2"), Some(&(false, false)));
        assert_eq!(
            parse_conns("sb1-1: IKEv2, no reauthentication\n  local: 1.2.3.4\nsb2-1: IKEv2\n"),
            ["sb1-1", "sb2-1"]
        );
    }

    #[test]
    fn tunnels_to_one_address_are_one_and_none_is_an_error() {
        let item = |given: &[(&str, &str)]| Item {
            label: "IPsec tunnel".into(),
            name: "dc--pay/dc".into(),
            detail: String::new(),
            build: Build::IpsecTunnel {
                network: Default::default(),
                peer: Default::default(),
                prefixes: Vec::new(),
                peer_prefixes: Vec::new(),
                tunnels: given
                    .iter()
                    .map(|(address, psk)| crate::providers::Tunnel {
                        address: (*address).to_owned(),
                        psk: (*psk).to_owned(),
                    })
                    .collect(),
            },
        };
        let both = item(&[("52.2.144.13", "k1"), ("52.2.144.13", "k1")]);
        assert_eq!(handed(&both).unwrap().len(), 1);
        assert!(handed(&item(&[])).is_err());
        assert!(handed(&item(&[("x; rm", "k")])).is_err());
    }

    #[test]
    fn vici_messages_are_framed_and_read_back() {
        let mut message = Vec::new();
        vici::key_value(&mut message, "success", "no");
        vici::key_value(&mut message, "errmsg", "bad id");
        assert_eq!(message[..4], [3, 7, b's', b'u']);
        let pairs = vici::pairs(&message);
        assert_eq!(pairs["success"], "no");
        assert_eq!(pairs["errmsg"], "bad id");
    }
}
