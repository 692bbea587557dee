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
    /// Where mail is sent. Without it, mail goes to the outbox only when
    /// `outbox` is on; otherwise a process that sends mail refuses to start.
    pub smtp_url: Option<Secret>,
    /// Mail goes to the outbox shown at `/dev/outbox` (never with SMTP): `up`
    /// without SMTP, or `SWITCHBOARD_OUTBOX=1`.
    pub outbox: bool,
    /// The development sign-in is offered (never with an identity provider):
    /// `up` without one, or `SWITCHBOARD_DEV_SIGN_IN=1`.
    pub dev_sign_in: bool,
    pub mail_from: EmailAddress,
    pub mail_from_name: String,
    pub session_key: Option<Secret>,
    pub log: String,
    pub log_format: LogFormat,
    pub worker_concurrency: usize,
    /// Connections this process keeps to PostgreSQL at most.
    pub database_pool_size: u32,
    /// Finished jobs are deleted this long after they ended.
    pub job_retention_days: i64,
    /// Workers say they are alive this often; a job held by a worker silent
    /// for three of these is taken up by another.
    pub worker_heartbeat_seconds: i64,
    /// How often the monitor compares every active connection with what exists.
    pub monitor_interval_seconds: i64,
    /// `None`: no sign-in through an identity provider (see `dev_sign_in`).
    pub oidc: Option<OidcSettings>,
    /// Members of this identity-provider group are admins.
    pub admin_group: String,
    pub session_idle_seconds: i64,
    pub session_max_seconds: i64,
    /// How long before a connection expires its requester is reminded.
    pub expiry_reminder_hours: i64,
    /// Proxies in front of the web server (e.g. Fly's edge): only a request
    /// from one of them may say, in a forwarded header, whose request it is.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where `file:<name>` webhook secrets are read from (absolute).
    pub webhook_secret_dir: Option<std::path::PathBuf>,
    /// Webhooks may post over plain http.
    pub webhook_allow_http: bool,
    /// Internal hosts and networks webhooks may reach all the same.
    pub webhook_allowed_hosts: crate::domain::webhook::AllowedHosts,
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
pub const DEFAULT_POOL_SIZE: u32 = 20;
/// Connections a process running the workers keeps listening for new jobs
/// (one per queue), besides those its jobs use.
pub const WORKER_LISTENERS: u32 = crate::domain::jobs::QUEUES.len() as u32;

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
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };

        let default_base = format!("http://{bind}");
        let base_text = get("SWITCHBOARD_BASE_URL").unwrap_or(default_base.clone());
        #[allow(
            clippy::expect_used,
            reason = "http://<a socket address> is always a URL"
        )]
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
                    #[allow(clippy::expect_used, reason = "a constant, valid address")]
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

        let database_pool_size = match get("SWITCHBOARD_DATABASE_POOL_SIZE") {
            None => DEFAULT_POOL_SIZE,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (2..=1000).contains(&n) => n,
                _ => {
                    problem(
                        "SWITCHBOARD_DATABASE_POOL_SIZE",
                        format!("{text:?} is not a whole number from 2 to 1000"),
                    );
                    DEFAULT_POOL_SIZE
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
        let mut switch = |name: &'static str| match get(name).as_deref().map(str::trim) {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                problem(name, format!("{other:?} is not 1 or 0"));
                false
            }
        };
        let dev_sign_in = switch("SWITCHBOARD_DEV_SIGN_IN");
        let outbox = switch("SWITCHBOARD_OUTBOX");
        let webhook_allow_http = switch("SWITCHBOARD_WEBHOOK_ALLOW_HTTP");
        if dev_sign_in && get("SWITCHBOARD_OIDC_ISSUER").is_some() {
            problem(
                "SWITCHBOARD_DEV_SIGN_IN",
                "cannot be on while SWITCHBOARD_OIDC_ISSUER is set: with an identity provider, everyone signs in through it".into(),
            );
        }
        if outbox && smtp_url.is_some() {
            problem(
                "SWITCHBOARD_OUTBOX",
                "cannot be on while SWITCHBOARD_SMTP_URL is set: mail goes to the SMTP server"
                    .into(),
            );
        }
        let webhook_secret_dir =
            get("SWITCHBOARD_WEBHOOK_SECRET_DIR").map(std::path::PathBuf::from);
        if webhook_secret_dir
            .as_ref()
            .is_some_and(|d| !d.is_absolute())
        {
            problem(
                "SWITCHBOARD_WEBHOOK_SECRET_DIR",
                "must be an absolute path".into(),
            );
        }
        let webhook_allowed_hosts = crate::domain::webhook::AllowedHosts::parse(
            &get("SWITCHBOARD_WEBHOOK_ALLOWED_HOSTS").unwrap_or_default(),
        )
        .unwrap_or_else(|why| {
            problem("SWITCHBOARD_WEBHOOK_ALLOWED_HOSTS", why);
            Default::default()
        });
        let mut trusted_proxies = Vec::new();
        for part in get("SWITCHBOARD_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            // A bare address is a network of one.
            let parsed = part
                .parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => trusted_proxies.push(net.trunc()),
                Err(_) => problem(
                    "SWITCHBOARD_TRUSTED_PROXIES",
                    format!("{part:?} is not an address or a CIDR such as 172.16.0.0/12"),
                ),
            }
        }
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
        let job_retention_days = minutes("SWITCHBOARD_JOB_RETENTION_DAYS", 7, 3650);

        if problems.is_empty() {
            Ok(Settings {
                database_url,
                bind,
                base_url,
                smtp_url,
                outbox,
                dev_sign_in,
                mail_from,
                mail_from_name,
                session_key,
                log,
                log_format,
                worker_concurrency,
                database_pool_size,
                job_retention_days,
                worker_heartbeat_seconds,
                monitor_interval_seconds,
                oidc,
                admin_group,
                session_idle_seconds,
                session_max_seconds,
                expiry_reminder_hours,
                trusted_proxies,
                webhook_secret_dir,
                webhook_allow_http,
                webhook_allowed_hosts,
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
        self.outbox
    }

    /// The settings as `process` runs with them. Development conveniences exist
    /// only under `up` or an explicit switch: a process that signs people in
    /// needs an identity provider (or `SWITCHBOARD_DEV_SIGN_IN=1`), one that
    /// sends mail needs SMTP (or `SWITCHBOARD_OUTBOX=1`); else it refuses to
    /// start, naming what to set. A missing setting never lets anyone in, nor
    /// hides mail.
    pub fn for_process(mut self, process: Process) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        match process {
            Process::Up => {
                self.dev_sign_in |= self.oidc.is_none();
                self.outbox |= self.smtp_url.is_none();
            }
            Process::Serve | Process::Work | Process::Other => {}
        }
        if let (Process::Serve | Process::Work, None) = (process, &self.database_url) {
            problems.push(ConfigProblem {
                variable: "DATABASE_URL",
                reason: format!(
                    "must be set for `{}` (only `up` and `migrate` start an embedded database)",
                    if process == Process::Serve {
                        "serve"
                    } else {
                        "work"
                    }
                ),
            });
        }
        if matches!(process, Process::Serve) && self.oidc.is_none() && !self.dev_sign_in {
            problems.push(ConfigProblem {
                variable: "SWITCHBOARD_OIDC_ISSUER",
                reason: "must be set for `serve`, with SWITCHBOARD_OIDC_CLIENT_ID and SWITCHBOARD_SESSION_KEY \
                         (or SWITCHBOARD_DEV_SIGN_IN=1 for a development deployment, where anyone signs in as anyone)"
                    .into(),
            });
        }
        if matches!(process, Process::Work) && self.smtp_url.is_none() && !self.outbox {
            problems.push(ConfigProblem {
                variable: "SWITCHBOARD_SMTP_URL",
                reason: "must be set for `work`, which sends the mail \
                         (or SWITCHBOARD_OUTBOX=1 to keep mail in the outbox shown at /dev/outbox)"
                    .into(),
            });
        }
        if matches!(process, Process::Up | Process::Work)
            && self.database_pool_size < WORKER_LISTENERS + 4
        {
            problems.push(ConfigProblem {
                variable: "SWITCHBOARD_DATABASE_POOL_SIZE",
                reason: format!(
                    "must be at least {} for a process that runs the workers ({WORKER_LISTENERS} connections listen for new jobs)",
                    WORKER_LISTENERS + 4
                ),
            });
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError(problems))
        }
    }
}

/// Which process the settings are for: what each needs differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// Web, workers and monitor, with the embedded defaults.
    Up,
    /// The web server: signs people in.
    Serve,
    /// The workers: send the mail.
    Work,
    /// `migrate`, `admin …`: neither.
    Other,
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
mod tests;
