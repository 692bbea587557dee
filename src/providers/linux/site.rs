//! Where a network's commands run. A network's `external_id` says it:
//!
//! - `dc1`: the network namespace `dc1` on the workers' host;
//! - `ssh://root@gw1.example.net`: a host reached over SSH (its own network
//!   stack), optionally with a port (`:2222`);
//! - `ssh://root@gw1.example.net/dc1`: the namespace `dc1` on that host.
//!
//! Over SSH, host keys are always checked (`StrictHostKeyChecking=yes`, never
//! trust on first use): the account's `ssh_known_hosts` setting names the
//! known-hosts file, its `ssh_identity` the private key file (else ssh's own
//! defaults). Switchboard never reads the key; ssh does. Every name is
//! checked before it reaches a command line, and each argument is quoted for
//! the remote shell.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::providers::{Item, Network, ProviderError};
use crate::store::provider_accounts::ProviderAccount;

/// How one linux account reaches its hosts over SSH.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct SshOptions {
    identity: Option<String>,
    known_hosts: Option<String>,
}

impl SshOptions {
    pub(super) fn of(account: &ProviderAccount) -> SshOptions {
        SshOptions {
            identity: account.setting("ssh_identity").map(str::to_owned),
            known_hosts: account.setting("ssh_known_hosts").map(str::to_owned),
        }
    }
}

/// A host reached over SSH.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Ssh {
    /// `user@host`
    target: String,
    port: u16,
    options: SshOptions,
}

/// A network's place: its host (this one, or one over SSH) and its namespace
/// there (none: the host's own network stack).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Site {
    /// The network's external_id, as messages name it and names derive from it.
    pub(super) id: String,
    pub(super) ssh: Option<Ssh>,
    pub(super) ns: Option<String>,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

fn namespace_name(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 64
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Site {
    /// The site of `network` (an item's own or its peer), checked before any
    /// command runs.
    pub(super) fn of(
        item: &Item,
        network: Option<&Network>,
        options: &SshOptions,
    ) -> Result<Site, ProviderError> {
        let id = network.and_then(|n| n.id.as_deref()).ok_or_else(|| {
            ProviderError::Permanent(format!(
                "{} has no network id for {}: register the network with its namespace (or ssh://user@host[/namespace]) as external_id",
                item.name,
                network.map_or("its network", |n| n.name.as_str())
            ))
        })?;
        Site::parse(id, options)
    }

    pub(super) fn parse(id: &str, options: &SshOptions) -> Result<Site, ProviderError> {
        let bad = |why: &str| {
            ProviderError::Permanent(format!(
                "{id:?} is not a place the linux provider knows: {why}"
            ))
        };
        let Some(rest) = id.strip_prefix("ssh://") else {
            return if namespace_name(id) {
                Ok(Site {
                    id: id.to_owned(),
                    ssh: None,
                    ns: Some(id.to_owned()),
                })
            } else {
                Err(bad(
                    "a namespace name has letters, digits, - _ . (or write ssh://user@host[:port][/namespace])",
                ))
            };
        };
        let (authority, ns) = match rest.split_once('/') {
            Some((a, ns)) if !ns.is_empty() => (a, Some(ns)),
            Some((a, _)) => (a, None),
            None => (rest, None),
        };
        let (user, host) = authority
            .split_once('@')
            .ok_or_else(|| bad("it needs a user, as in ssh://root@host"))?;
        let (host, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("the port is not a number"))?),
            None => (host, 22),
        };
        let user_ok = !user.is_empty()
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let host_ok = !host.is_empty()
            && !host.starts_with('-')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
        if !user_ok || !host_ok {
            return Err(bad("the user and host have letters, digits, - and . only"));
        }
        if ns.is_some_and(|ns| !namespace_name(ns)) {
            return Err(bad("a namespace name has letters, digits, - _ ."));
        }
        Ok(Site {
            id: id.to_owned(),
            ssh: Some(Ssh {
                target: format!("{user}@{host}"),
                port,
                options: options.clone(),
            }),
            ns: ns.map(str::to_owned),
        })
    }

    /// The place written one way: `ns`, `host[:port]` or `host[:port]/ns`
    /// (no user; port 22 left out; the host in lower case).
    pub(super) fn key(&self) -> String {
        let host = self.ssh.as_ref().map(|ssh| {
            let host = ssh
                .target
                .split_once('@')
                .map_or(ssh.target.as_str(), |(_, h)| h)
                .to_ascii_lowercase();
            if ssh.port == 22 {
                host
            } else {
                format!("{host}:{}", ssh.port)
            }
        });
        match (host, &self.ns) {
            (Some(host), Some(ns)) => format!("{host}/{ns}"),
            (Some(host), None) => host,
            (None, Some(ns)) => ns.clone(),
            (None, None) => self.id.clone(),
        }
    }

    /// The namespace on the workers' host, for what runs only there.
    pub(super) fn local_namespace(&self) -> Option<&str> {
        match (&self.ssh, &self.ns) {
            (None, Some(ns)) => Some(ns),
            _ => None,
        }
    }

    /// Runs a command on the site's host (not inside its namespace).
    pub(super) async fn on_host(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, ProviderError> {
        let Some(ssh) = &self.ssh else {
            return run(program, args, stdin).await;
        };
        let command = std::iter::once(program)
            .chain(args.iter().copied())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        let port = ssh.port.to_string();
        let mut all = vec![
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
            "-p",
            &port,
        ];
        let known;
        if let Some(file) = &ssh.options.known_hosts {
            known = format!("UserKnownHostsFile={file}");
            all.extend(["-o", &known]);
        }
        if let Some(key) = &ssh.options.identity {
            all.extend(["-i", key]);
        }
        all.extend([ssh.target.as_str(), "--", &command]);
        run("ssh", &all, stdin).await
    }

    /// Runs a command in the site's network namespace.
    pub(super) async fn exec(
        &self,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, ProviderError> {
        match &self.ns {
            Some(ns) => {
                let mut all = vec!["netns", "exec", ns];
                all.extend_from_slice(args);
                self.on_host("ip", &all, stdin).await
            }
            None => self.on_host(args[0], &args[1..], stdin).await,
        }
    }

    /// `ip` for the site's namespace.
    pub(super) async fn ip(&self, args: &[&str]) -> Result<String, ProviderError> {
        let mut all = Vec::new();
        if let Some(ns) = &self.ns {
            all.extend(["-n", ns.as_str()]);
        }
        all.extend_from_slice(args);
        self.on_host("ip", &all, None).await
    }

    /// `exec` as a shell prefix, for a line run by `sh -c`.
    pub(super) fn in_namespace_prefix(&self) -> String {
        self.ns
            .as_ref()
            .map(|ns| format!("ip netns exec {ns} "))
            .unwrap_or_default()
    }

    /// The host part, for reading what is host-wide (WireGuard's sockets).
    pub(super) fn host(&self) -> Site {
        Site {
            id: self
                .ssh
                .as_ref()
                .map_or("this host".to_owned(), |s| s.target.clone()),
            ssh: self.ssh.clone(),
            ns: None,
        }
    }
}

/// One argument for the remote shell, single-quoted.
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Runs a command; its output, or what it said on failure. ssh failing to
/// reach its host (exit 255) is worth trying again.
pub(super) async fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, ProviderError> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        ProviderError::Permanent(format!(
            "{program} could not be run on this host ({e}): the linux provider needs iproute2, nftables, wireguard-tools and wireguard-go (and openssh-client for hosts over SSH)"
        ))
    })?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .await
            .map_err(|e| ProviderError::Transient(format!("{program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| ProviderError::Transient(format!("{program}: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    // The command as run: keys only ever travel on stdin, never here.
    let text = format!(
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let said = String::from_utf8_lossy(&out.stderr);
    if program == "ssh" && said.contains("Host key verification failed") {
        // Not worth retrying: a person must check the host and its key.
        let host = args
            .iter()
            .position(|a| *a == "--")
            .and_then(|i| args.get(i.checked_sub(1)?))
            .copied()
            .unwrap_or("the host");
        Err(ProviderError::Permanent(format!(
            "{host} did not show a host key listed in the account's ssh_known_hosts: check the host, then add its key there"
        )))
    } else if program == "ssh" && out.status.code() == Some(255) {
        Err(ProviderError::Transient(text))
    } else {
        Err(ProviderError::Permanent(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_namespaces_hosts_over_ssh_or_namespaces_on_them() {
        let o = SshOptions::default();
        let local = Site::parse("dc1", &o).unwrap();
        assert_eq!(
            (local.ssh.is_none(), local.ns.as_deref()),
            (true, Some("dc1"))
        );
        let host = Site::parse("ssh://root@gw1.example.net", &o).unwrap();
        let ssh = host.ssh.as_ref().unwrap();
        assert_eq!(
            (ssh.target.as_str(), ssh.port),
            ("root@gw1.example.net", 22)
        );
        assert_eq!(host.ns, None);
        let on_host = Site::parse("ssh://ops@10.0.0.5:2222/dc1", &o).unwrap();
        assert_eq!(on_host.ssh.as_ref().unwrap().port, 2222);
        assert_eq!(on_host.ns.as_deref(), Some("dc1"));
        assert_eq!(on_host.local_namespace(), None);
        // One place, however it is written: the key no two networks may share.
        assert_eq!(local.key(), "dc1");
        assert_eq!(host.key(), "gw1.example.net");
        assert_eq!(
            Site::parse("ssh://admin@GW1.example.net:22", &o)
                .unwrap()
                .key(),
            "gw1.example.net"
        );
        assert_eq!(on_host.key(), "10.0.0.5:2222/dc1");
        for bad in [
            "a; rm -rf /",
            "ssh://gw1",
            "ssh://root@-oProxyCommand=x",
            "ssh://root@gw1/$(id)",
            "ssh://root@gw1:port",
        ] {
            assert!(Site::parse(bad, &o).is_err(), "{bad}");
        }
    }

    #[test]
    fn arguments_are_quoted_for_the_remote_shell() {
        assert_eq!(quote("10.0.0.0/24"), "10.0.0.0/24");
        assert_eq!(quote("{ 443 }"), "'{ 443 }'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
