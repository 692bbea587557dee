//! Settings from the environment (12-factor), validated once at start.
//!
//! Every problem is collected so an operator sees all bad variables at once.

use std::fmt;
use std::net::SocketAddr;

use url::Url;

use crate::domain::email::EmailAddress;

/// A value that must never reach logs or pages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The identity provider, when one is configured.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer: Url,
    pub client_id: String,
    /// `None` for a public client (PKCE only).
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// `None` means "use the embedded PostgreSQL cluster under ./var/pg" (`up` only).
    pub database_url: Option<Secret>,
    pub bind: SocketAddr,
    pub base_url: Url,
    /// `None` means mail goes to the outbox shown at `/dev/outbox`.
    pub smtp_url: Option<Secret>,
    pub mail_from: EmailAddress,
    pub mail_from_name: String,
    pub session_key: Option<Secret>,
    pub log: String,
    pub log_format: LogFormat,
    pub worker_concurrency: usize,
    /// Workers say they are alive this often; a job held by a worker silent
    /// for three of these is taken up by another.
    pub worker_heartbeat_seconds: i64,
    /// How often the monitor compares every active connection with what exists.
    pub monitor_interval_seconds: i64,
    /// `None`: the development sign-in is offered instead.
    pub oidc: Option<OidcSettings>,
    /// Members of this identity-provider group are admins.
    pub admin_group: String,
    pub session_idle_seconds: i64,
    pub session_max_seconds: i64,
    /// How long before a connection expires its requester is reminded.
    pub expiry_reminder_hours: i64,
}

/// One bad variable and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for p in &self.0 {
            writeln!(f, "  {}: {}", p.variable, p.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_LOG: &str = "info,sqlx=warn";
pub const MIN_SESSION_KEY_LEN: usize = 64;

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();
        let mut problem = |variable: &'static str, reason: String| {
            problems.push(ConfigProblem { variable, reason })
        };

        let database_url = get("DATABASE_URL").map(Secret::new);
        if let Some(url) = &database_url {
            match Url::parse(url.expose()) {
                Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => {}
                Ok(u) => problem(
                    "DATABASE_URL",
                    format!(
                        "scheme must be postgres:// or postgresql://, not {}://",
                        u.scheme()
                    ),
                ),
                // The URL may hold a password: never echo it.
                Err(e) => problem("DATABASE_URL", format!("not a valid URL ({e})")),
            }
        }

        let bind_text = get("SWITCHBOARD_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind = match bind_text.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                problem(
                    "SWITCHBOARD_BIND",
                    format!(
                        "{bind_text:?} is not an address:port such as 127.0.0.1:8080 or [::]:8080"
                    ),
                );
                DEFAULT_BIND.parse().expect("default bind address is valid")
            }
        };

        let default_base = format!("http://{bind}");
        let base_text = get("SWITCHBOARD_BASE_URL").unwrap_or(default_base.clone());
        let base_url = match Url::parse(&base_text) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                problem(
                    "SWITCHBOARD_BASE_URL",
                    format!("scheme must be http or https, not {}", u.scheme()),
                );
                None
            }
            Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                problem(
                    "SWITCHBOARD_BASE_URL",
                    "must not contain a query or fragment".to_owned(),
                );
                None
            }
            Ok(u) if u.host_str().is_none() => {
                problem("SWITCHBOARD_BASE_URL", "must name a host".to_owned());
                None
            }
            Ok(u) => Some(u),
            Err(e) => {
                problem(
                    "SWITCHBOARD_BASE_URL",
                    format!("{base_text:?} is not a URL ({e})"),
                );
                None
            }
        }
        .unwrap_or_else(|| Url::parse(&default_base).expect("default base URL is valid"));

        let smtp_url = get("SWITCHBOARD_SMTP_URL").map(Secret::new);
        if let Some(url) = &smtp_url {
            match Url::parse(url.expose()) {
                Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some() => {}
                Ok(_) => problem(
                    "SWITCHBOARD_SMTP_URL",
                    "must look like smtp://host:port or smtps://user:password@host".to_owned(),
                ),
                Err(e) => problem("SWITCHBOARD_SMTP_URL", format!("not a valid URL ({e})")),
            }
        }

        let from_text = get("SWITCHBOARD_MAIL_FROM")
            .unwrap_or_else(|| "Switchboard <switchboard@localhost>".into());
        let (mail_from_name, mail_from) = match parse_mailbox(&from_text) {
            Ok(pair) => pair,
            Err(reason) => {
                problem("SWITCHBOARD_MAIL_FROM", reason);
                (
                    "Switchboard".into(),
                    EmailAddress::parse("switchboard@localhost").expect("default sender is valid"),
                )
            }
        };

        let session_key = get("SWITCHBOARD_SESSION_KEY").map(Secret::new);
        if let Some(key) = &session_key
            && key.expose().len() < MIN_SESSION_KEY_LEN
        {
            problem(
                "SWITCHBOARD_SESSION_KEY",
                format!(
                    "must be at least {MIN_SESSION_KEY_LEN} characters (it is {}); generate one with `openssl rand -hex 32`",
                    key.expose().len()
                ),
            );
        }

        let log = get("SWITCHBOARD_LOG").unwrap_or_else(|| DEFAULT_LOG.to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
            problem("SWITCHBOARD_LOG", format!("not a valid log filter ({e})"));
        }

        let log_format = match get("SWITCHBOARD_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                problem(
                    "SWITCHBOARD_LOG_FORMAT",
                    format!("{other:?} is not one of: pretty, json"),
                );
                LogFormat::Pretty
            }
        };

        let worker_concurrency = match get("SWITCHBOARD_WORKER_CONCURRENCY") {
            None => 8,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => {
                    problem(
                        "SWITCHBOARD_WORKER_CONCURRENCY",
                        format!("{text:?} is not a whole number from 1 to 1024"),
                    );
                    8
                }
            },
        };

        let oidc = match get("SWITCHBOARD_OIDC_ISSUER") {
            None => None,
            Some(text) => {
                let issuer = match Url::parse(&text) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                    _ => {
                        problem(
                            "SWITCHBOARD_OIDC_ISSUER",
                            format!("{text:?} is not an http(s) URL"),
                        );
                        None
                    }
                };
                let client_id = get("SWITCHBOARD_OIDC_CLIENT_ID");
                if client_id.is_none() {
                    problem(
                        "SWITCHBOARD_OIDC_CLIENT_ID",
                        "must be set when SWITCHBOARD_OIDC_ISSUER is".to_owned(),
                    );
                }
                if session_key.is_none() {
                    problem(
                        "SWITCHBOARD_SESSION_KEY",
                        "must be set when SWITCHBOARD_OIDC_ISSUER is (all web processes share it)"
                            .to_owned(),
                    );
                }
                let scopes = get("SWITCHBOARD_OIDC_SCOPES")
                    .unwrap_or_else(|| "openid email profile".into())
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>();
                match (issuer, client_id) {
                    (Some(issuer), Some(client_id)) => Some(OidcSettings {
                        issuer,
                        client_id,
                        client_secret: get("SWITCHBOARD_OIDC_CLIENT_SECRET").map(Secret::new),
                        scopes,
                        groups_claim: get("SWITCHBOARD_OIDC_GROUPS_CLAIM")
                            .unwrap_or_else(|| "groups".into()),
                    }),
                    _ => None,
                }
            }
        };
        let admin_group =
            get("SWITCHBOARD_ADMIN_GROUP").unwrap_or_else(|| "switchboard-admins".into());
        let mut minutes = |name: &'static str, default: i64, max: i64| -> i64 {
            match get(name) {
                None => default,
                Some(text) => match text.parse::<i64>() {
                    Ok(n) if (1..=max).contains(&n) => n,
                    _ => {
                        problem(
                            name,
                            format!("{text:?} is not a whole number from 1 to {max}"),
                        );
                        default
                    }
                },
            }
        };
        let session_idle_seconds = minutes("SWITCHBOARD_SESSION_IDLE_MINUTES", 480, 10_080) * 60;
        let session_max_seconds = minutes("SWITCHBOARD_SESSION_MAX_HOURS", 24, 720) * 3600;
        let expiry_reminder_hours = minutes("SWITCHBOARD_EXPIRY_REMINDER_HOURS", 24, 720);
        let worker_heartbeat_seconds = minutes("SWITCHBOARD_WORKER_HEARTBEAT_SECONDS", 10, 300);
        let monitor_interval_seconds = minutes("SWITCHBOARD_MONITOR_INTERVAL", 60, 86_400);

        if problems.is_empty() {
            Ok(Settings {
                database_url,
                bind,
                base_url,
                smtp_url,
                mail_from,
                mail_from_name,
                session_key,
                log,
                log_format,
                worker_concurrency,
                worker_heartbeat_seconds,
                monitor_interval_seconds,
                oidc,
                admin_group,
                session_idle_seconds,
                session_max_seconds,
                expiry_reminder_hours,
            })
        } else {
            Err(ConfigError(problems))
        }
    }

    /// The absolute URL of a path on this portal, for links in emails.
    pub fn absolute_url(&self, path: &str) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    pub fn mail_goes_to_outbox(&self) -> bool {
        self.smtp_url.is_none()
    }
}

/// `Name <addr@host>` or a bare `addr@host`.
fn parse_mailbox(text: &str) -> Result<(String, EmailAddress), String> {
    let text = text.trim();
    let (name, addr) = match (text.find('<'), text.ends_with('>')) {
        (Some(open), true) => (text[..open].trim(), &text[open + 1..text.len() - 1]),
        (None, false) => ("", text),
        _ => return Err(format!("{text:?} is not `Name <address>` or an address")),
    };
    let address = EmailAddress::parse(addr).map_err(|reason| format!("{addr:?}: {reason}"))?;
    let name = if name.is_empty() { "Switchboard" } else { name };
    Ok((name.trim_matches('"').to_owned(), address))
}

/// Reads a secret from where its reference says (`env:NAME` or `file:/path`,
/// trailing whitespace dropped); the secret itself is never stored or logged.
pub fn read_secret(reference: &str) -> Result<String, String> {
    if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
    } else if let Some(path) = reference.strip_prefix("file:") {
        std::fs::read_to_string(path)
            .map(|s| s.trim_end().to_owned())
            .map_err(|e| format!("cannot read {path}: {e}"))
    } else {
        Err("a secret reference must be env:NAME or file:/path".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_variables() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.base_url.as_str(), "http://127.0.0.1:8080/");
        assert!(s.database_url.is_none());
        assert!(s.mail_goes_to_outbox());
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert_eq!(s.mail_from.as_str(), "switchboard@localhost");
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let err = settings(&[
            ("SWITCHBOARD_BIND", "nowhere"),
            ("SWITCHBOARD_LOG_FORMAT", "xml"),
            ("SWITCHBOARD_SESSION_KEY", "short"),
            ("DATABASE_URL", "mysql://x@y/z"),
            ("SWITCHBOARD_SMTP_URL", "http://mail"),
            ("SWITCHBOARD_MAIL_FROM", "not an address"),
            ("SWITCHBOARD_BASE_URL", "ftp://x"),
            ("SWITCHBOARD_LOG", "=[="),
        ])
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|p| p.variable).collect();
        assert_eq!(
            vars,
            [
                "DATABASE_URL",
                "SWITCHBOARD_BIND",
                "SWITCHBOARD_BASE_URL",
                "SWITCHBOARD_SMTP_URL",
                "SWITCHBOARD_MAIL_FROM",
                "SWITCHBOARD_SESSION_KEY",
                "SWITCHBOARD_LOG",
                "SWITCHBOARD_LOG_FORMAT",
            ]
        );
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        let err = settings(&[
            ("DATABASE_URL", "postgres://u:hunter2@[bad"),
            ("SWITCHBOARD_SESSION_KEY", "hunter2"),
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let ok = settings(&[("SWITCHBOARD_SMTP_URL", "smtp://u:hunter2@mail:25")]).unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
    }

    #[test]
    fn mail_from_accepts_name_and_address() {
        let s = settings(&[("SWITCHBOARD_MAIL_FROM", "Net Team <net@example.com>")]).unwrap();
        assert_eq!(s.mail_from_name, "Net Team");
        assert_eq!(s.mail_from.as_str(), "net@example.com");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = settings(&[("DATABASE_URL", ""), ("SWITCHBOARD_BIND", " ")]).unwrap();
        assert!(s.database_url.is_none());
        assert_eq!(s.bind.to_string(), DEFAULT_BIND);
    }
}
