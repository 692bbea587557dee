//! What a team's webhook may be: where its signing secret may be read from, and
//! where it may post. A lead sets both, so neither may reach into the workers:
//! a secret reference outside the webhook namespace would let them sign a
//! predictable body with `DATABASE_URL` and guess it offline; a URL on an
//! internal address would let them probe the network (blind SSRF).

use std::net::IpAddr;

use ipnet::IpNet;

/// The prefix of the environment variables a webhook may name.
pub const ENV_PREFIX: &str = "SWITCHBOARD_WEBHOOK_SECRET_";

/// Where a webhook's secret is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:SWITCHBOARD_WEBHOOK_SECRET_<NAME>`.
    Env(String),
    /// `file:<name>`: a file directly in the configured secrets directory.
    File(String),
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let allowed = format!(
            "must be env:{ENV_PREFIX}<NAME> (NAME of letters, digits and _) or file:<name> \
             (a file in the directory SWITCHBOARD_WEBHOOK_SECRET_DIR); the secret itself is never stored"
        );
        if let Some(var) = text.strip_prefix("env:") {
            let name = var.strip_prefix(ENV_PREFIX).unwrap_or_default();
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return Ok(SecretRef::Env(var.to_owned()));
            }
        } else if let Some(file) = text.strip_prefix("file:")
            && !file.is_empty()
            && !file.starts_with('.')
            && file
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Ok(SecretRef::File(file.to_owned()));
        }
        Err(allowed)
    }
}

/// Why a webhook may not post to `ip`, unless an admin allowed it.
pub fn internal_address(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        // ::ffff:10.0.0.1 is 10.0.0.1.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let within = |cidr: &str| {
        cidr.parse::<IpNet>()
            .map(|net| net.contains(&ip))
            .unwrap_or(false)
    };
    match ip {
        _ if ip.is_loopback() => Some("a loopback address"),
        _ if ip.is_unspecified() => Some("an unspecified address"),
        _ if ip.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v4) if v4.is_private() => Some("a private address"),
        IpAddr::V4(v4) if v4.is_link_local() => {
            Some("a link-local address (cloud metadata services live there)")
        }
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(_) if within("100.64.0.0/10") => Some("a carrier-grade NAT address"),
        IpAddr::V4(_) if within("0.0.0.0/8") || within("240.0.0.0/4") => Some("a reserved address"),
        IpAddr::V6(_) if within("fc00::/7") => Some("a private (unique local) address"),
        IpAddr::V6(_) if within("fe80::/10") => Some("a link-local address"),
        IpAddr::V6(_) if within("fd00:ec2::254/128") => Some("a cloud metadata address"),
        _ => None,
    }
}

/// What an admin allowed webhooks to reach although it is internal: host
/// names and networks (`SWITCHBOARD_WEBHOOK_ALLOWED_HOSTS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    pub names: Vec<String>,
    pub networks: Vec<IpNet>,
}

impl AllowedHosts {
    /// `hooks.internal, 10.20.0.0/16, 127.0.0.1`; what is neither a network nor
    /// an address is a host name.
    pub fn parse(text: &str) -> Result<AllowedHosts, String> {
        let mut allowed = AllowedHosts::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Ok(net) = part.parse::<IpNet>() {
                allowed.networks.push(net.trunc());
            } else if let Ok(ip) = part.parse::<IpAddr>() {
                allowed.networks.push(IpNet::from(ip));
            } else if part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            {
                allowed.names.push(part.to_ascii_lowercase());
            } else {
                return Err(format!("{part:?} is not a host name, an address or a CIDR"));
            }
        }
        Ok(allowed)
    }

    /// May a webhook for `host` post to `ip`? Whatever is not internal, and
    /// internal addresses an admin named (by the host or the network).
    pub fn permits(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let Some(why) = internal_address(ip) else {
            return Ok(());
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.names.contains(&host) || self.networks.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        Err(format!(
            "{host} resolves to {ip}, {why}: webhooks may not reach internal addresses \
             unless SWITCHBOARD_WEBHOOK_ALLOWED_HOSTS names them"
        ))
    }
}

/// A webhook URL's scheme and host, or why it is refused.
pub fn check_url(text: &str, allow_http: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|_| "must be an https URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(
                "must be https (plain http only when SWITCHBOARD_WEBHOOK_ALLOW_HTTP=1)".into(),
            );
        }
        _ => return Err("must be an https URL".into()),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user or password (sign with the secret instead)".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_only_from_the_webhook_namespace() {
        assert_eq!(
            SecretRef::parse("env:SWITCHBOARD_WEBHOOK_SECRET_NETWORK"),
            Ok(SecretRef::Env("SWITCHBOARD_WEBHOOK_SECRET_NETWORK".into()))
        );
        assert_eq!(
            SecretRef::parse("file:network-team"),
            Ok(SecretRef::File("network-team".into()))
        );
        for oracle in [
            "env:DATABASE_URL",
            "env:SWITCHBOARD_SESSION_KEY",
            "env:SWITCHBOARD_WEBHOOK_SECRET_",
            "env:SWITCHBOARD_WEBHOOK_SECRET_a-b",
            "file:/etc/passwd",
            "file:../../etc/passwd",
            "file:.hidden",
            "file:a/b",
            "hunter2",
        ] {
            assert!(SecretRef::parse(oracle).is_err(), "{oracle}");
        }
    }

    #[test]
    fn internal_addresses_are_named() {
        for (ip, internal) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.20.0.1", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("::1", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:127.0.0.1", true),
            ("203.0.113.10", false),
            ("93.184.216.34", false),
            ("2001:db8::1", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(internal_address(ip).is_some(), internal, "{ip}");
        }
    }

    #[test]
    fn admins_may_allow_internal_hosts_by_name_or_network() {
        let allowed = AllowedHosts::parse("hooks.corp.internal, 10.20.0.0/16, 127.0.0.1").unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        assert!(
            allowed
                .permits("hooks.corp.internal", ip("10.9.9.9"))
                .is_ok()
        );
        assert!(
            allowed
                .permits("HOOKS.corp.internal.", ip("10.9.9.9"))
                .is_ok()
        );
        assert!(allowed.permits("other.internal", ip("10.20.1.1")).is_ok());
        assert!(allowed.permits("localhost", ip("127.0.0.1")).is_ok());
        let refused = allowed.permits("evil.example", ip("10.9.9.9")).unwrap_err();
        assert!(refused.contains("a private address"), "{refused}");
        assert!(
            AllowedHosts::default()
                .permits("x", ip("169.254.169.254"))
                .is_err()
        );
        assert!(
            AllowedHosts::default()
                .permits("x", ip("203.0.113.1"))
                .is_ok()
        );
        assert!(AllowedHosts::parse("a b").is_err());
    }

    #[test]
    fn urls_are_https_unless_allowed() {
        assert!(check_url("https://chat.example.com/hooks", false).is_ok());
        assert!(check_url("http://chat.example.com/hooks", false).is_err());
        assert!(check_url("http://chat.example.com/hooks", true).is_ok());
        assert!(check_url("ftp://x", true).is_err());
        assert!(check_url("https://user:pw@x.example", false).is_err());
        assert!(check_url("not a url", false).is_err());
    }
}
