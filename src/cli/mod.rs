//! The command-line client: every verb (`switchboard pool …`, `network …`,
//! `connection …`, `team …`, `token …`, `audit`…) calls `/api/v1` with an API
//! token. It needs no server configuration, only where the portal is and a
//! token (flags, environment, or `~/.config/switchboard/config.toml`).

mod accounts;
mod audit;
mod connections;
mod guardrails;
mod networks;
mod output;
mod pools;
mod reach;
mod sandbox;
mod teams;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where the portal is and how to print; shared by every client verb.
#[derive(Args)]
pub struct ClientArgs {
    /// The portal's URL (client verbs) [default: `server` in the config file, else http://127.0.0.1:8080]
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_URL",
        value_name = "URL",
        help_heading = "Client options"
    )]
    server: Option<String>,
    /// How client verbs print results: aligned columns, or the API's JSON
    #[arg(long, global = true, value_enum, default_value_t = Output::Table, help_heading = "Client options")]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

/// The client verbs.
#[derive(Subcommand)]
pub enum Command {
    /// The address plan: pools, allocations and free space (client of /api/v1)
    #[command(subcommand)]
    Pool(pools::PoolCommand),
    /// Teams' networks and their prefixes (client of /api/v1)
    #[command(subcommand)]
    Network(networks::NetworkCommand),
    /// Connection requests: ask, see the plan, approve, reject, cancel (client of /api/v1)
    #[command(subcommand)]
    Connection(connections::ConnectionCommand),
    /// Counts of the connections you can see, by state (the status board in numbers)
    Status,
    /// Teams, their members and webhook (client of /api/v1)
    #[command(subcommand)]
    Team(teams::TeamCommand),
    /// Your API tokens (client of /api/v1)
    #[command(subcommand)]
    Token(accounts::TokenCommand),
    /// Which emails you get (client of /api/v1)
    #[command(subcommand)]
    Notifications(accounts::NotificationsCommand),
    /// People who have signed in, and their sessions (admins; client of /api/v1)
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// Provider accounts: where networks live (client of /api/v1)
    #[command(subcommand)]
    Account(accounts::AccountCommand),
    /// The audit log: who changed what, newest first (admins; client of /api/v1)
    Audit(audit::AuditArgs),
    /// Which open connections let traffic from FROM reach TO[:PORT] (client of /api/v1)
    Reach(reach::ReachArgs),
    /// The guardrails every request is checked against: show, versions, save (admins) (client of /api/v1)
    #[command(subcommand)]
    Guardrails(guardrails::GuardrailsCommand),
    /// The sandbox's simulated cloud: change or delete a resource behind Switchboard's back (admins; client of /api/v1)
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
}

/// Runs a client verb; prints the result to stdout and any error to stderr.
pub fn run(args: ClientArgs, command: Command) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("could not start the async runtime: {e}")))
        .and_then(|rt| {
            rt.block_on(async {
                let client = Client::configure(args)?;
                let text = match command {
                    Command::Pool(command) => pools::run(&client, command).await?,
                    Command::Network(command) => networks::run(&client, command).await?,
                    Command::Connection(command) => connections::run(&client, command).await?,
                    Command::Sandbox(command) => sandbox::run(&client, command).await?,
                    Command::Status => connections::status(&client).await?,
                    Command::Team(command) => teams::run(&client, command).await?,
                    Command::Token(command) => accounts::tokens(&client, command).await?,
                    Command::Notifications(command) => {
                        accounts::notifications(&client, command).await?
                    }
                    Command::User(command) => accounts::users(&client, command).await?,
                    Command::Account(command) => {
                        accounts::provider_accounts(&client, command).await?
                    }
                    Command::Audit(args) => audit::run(&client, args).await?,
                    Command::Guardrails(command) => guardrails::run(&client, command).await?,
                    Command::Reach(args) => reach::run(&client, args).await?,
                };
                print(&text)
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e}");
            e.exit_code()
        }
    }
}

fn print(text: &str) -> Result<(), Error> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // `switchboard pool list | head` is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Failed(format!("could not write the output: {e}")))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
enum Error {
    /// The command line or the client's configuration is wrong (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The portal refused, could not be reached, or did not find something (exit code 1).
    #[error("{0}")]
    Failed(String),
}

impl Error {
    fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::from(2),
            Error::Failed(_) => ExitCode::FAILURE,
        }
    }
}

/// `server = "…"` and `token = "…"`, both optional.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
}

/// `$SWITCHBOARD_CONFIG`, else `$XDG_CONFIG_HOME/switchboard/config.toml`, else
/// `~/.config/switchboard/config.toml`. Only an explicitly named file must exist.
fn config_path() -> Option<(PathBuf, bool)> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = var("SWITCHBOARD_CONFIG") {
        return Some((path.into(), true));
    }
    let dir = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some((dir.join("switchboard").join("config.toml"), false))
}

fn read_config() -> Result<ConfigFile, Error> {
    let Some((path, required)) = config_path() else {
        return Ok(ConfigFile::default());
    };
    let shown = path.display();
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(ConfigFile::default());
        }
        Err(e) => return Err(Error::Usage(format!("cannot read {shown}: {e}"))),
    };
    // Like ssh with a private key: a token others can read is a leaked token.
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{shown} has permissions {mode:04o}, which lets other users read it: it may hold an \
             API token, so it is refused; run: chmod 600 {shown}"
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Usage(format!("cannot read {shown}: {e}")))?;
    // toml's full error quotes the offending line, which may be the token: give only
    // the line number and the reason.
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start].lines().count().max(1))
            .unwrap_or(1);
        Error::Usage(format!(
            "{shown}, line {line}: {} (the file takes server = \"…\" and token = \"…\")",
            e.message()
        ))
    })
}

/// The portal's address when neither the flag, the environment nor the config file gives one.
fn default_server() -> String {
    format!("http://{}", crate::config::DEFAULT_BIND)
}

/// An authenticated HTTP client of one portal's `/api/v1`: the typed client
/// (`api`), and the same connection for verbs that print the API's JSON as it came.
struct Client {
    api: crate::client::Client,
    http: reqwest::Client,
    /// The portal's URL without a trailing slash, as given (for messages).
    server: String,
    token: String,
    output: Output,
}

impl Client {
    fn configure(args: ClientArgs) -> Result<Self, Error> {
        let file = read_config()?;
        let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let server = nonempty(args.server)
            .or(nonempty(file.server))
            .unwrap_or_else(default_server);
        let server = server.trim().trim_end_matches('/').to_owned();
        match url::Url::parse(&server) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => {
                return Err(Error::Usage(format!(
                    "--server: {server:?} is not an http:// or https:// URL, e.g. http://127.0.0.1:8080"
                )));
            }
        }
        let token = nonempty(std::env::var("SWITCHBOARD_TOKEN").ok())
            .or(nonempty(file.token))
            .ok_or_else(|| {
                let file = config_path().map_or_else(
                    || "~/.config/switchboard/config.toml".to_owned(),
                    |(path, _)| path.display().to_string(),
                );
                Error::Usage(format!(
                    "no API token: set SWITCHBOARD_TOKEN or put token = \"sbp_…\" in {file} (mode 600). \
                     Get one on the portal's /me page or with `switchboard admin create-token`"
                ))
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // The API never redirects; following one could send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Failed(format!("could not set up HTTP: {e}")))?;
        let api = crate::client::Client::new(&server, &token)
            .map_err(|e| Error::Usage(format!("--server: {e}")))?;
        Ok(Self {
            api,
            http,
            server,
            token: token.trim().to_owned(),
            output: args.output,
        })
    }

    fn json_output(&self) -> bool {
        self.output == Output::Json
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Reply, Error> {
        self.send(self.request(reqwest::Method::GET, path).query(query))
            .await
    }

    /// Every page of a list, followed to the end, as one JSON array.
    async fn get_all(&self, path: &str, query: &[(&str, String)]) -> Result<Reply, Error> {
        let mut items: Vec<serde_json::Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = query.to_vec();
            query.push(("limit", crate::domain::page::MAX_LIMIT.to_string()));
            if let Some(c) = cursor.take() {
                query.push(("cursor", c));
            }
            let reply = self.get(path, &query).await?;
            items.extend(reply.parse::<Vec<serde_json::Value>>()?);
            match reply.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let body = serde_json::to_vec(&items)
            .map_err(|e| Error::Failed(format!("could not gather the pages: {e}")))?;
        Ok(Reply {
            body,
            next_cursor: None,
        })
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<Reply, Error> {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    async fn put(&self, path: &str, body: &serde_json::Value) -> Result<Reply, Error> {
        self.send(self.request(reqwest::Method::PUT, path).json(body))
            .await
    }

    async fn patch(&self, path: &str, body: &serde_json::Value) -> Result<Reply, Error> {
        self.send(self.request(reqwest::Method::PATCH, path).json(body))
            .await
    }

    async fn delete(&self, path: &str) -> Result<Reply, Error> {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.server))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Sends a request; a non-2xx answer becomes the API's problem, said plainly.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, Error> {
        let unreachable = |e: reqwest::Error| {
            if e.is_timeout() {
                Error::Failed(format!(
                    "the portal at {} did not answer in time",
                    self.server
                ))
            } else {
                Error::Failed(format!(
                    "could not reach the portal at {} ({}); set --server or SWITCHBOARD_URL",
                    self.server,
                    innermost(&e)
                ))
            }
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let next_cursor = response
            .headers()
            .get("next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(unreachable)?.to_vec();
        if status.is_success() {
            return Ok(Reply { body, next_cursor });
        }
        Err(Error::Failed(problem_message(status, &body, &self.server)))
    }
}

/// A typed call's failure, said as the CLI says the API's errors.
impl From<crate::client::ClientError> for Error {
    fn from(e: crate::client::ClientError) -> Self {
        use crate::client::ClientError;
        match e {
            ClientError::Setup(message) => Error::Usage(message),
            ClientError::Unreachable { message, timed_out } => Error::Failed(if timed_out {
                message
            } else {
                format!("{message}; set --server or SWITCHBOARD_URL")
            }),
            ClientError::Api { status, problem } => {
                let body = serde_json::json!({
                    "detail": problem.detail,
                    "request_id": problem.request_id,
                    "errors": problem.errors.clone().unwrap_or_default(),
                });
                Error::Failed(problem_message(status, body.to_string().as_bytes(), ""))
            }
            unexpected @ ClientError::Unexpected { .. } => Error::Failed(unexpected.to_string()),
        }
    }
}

/// The innermost cause: "connection refused" rather than "error sending request".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The API's `application/problem+json` (see `web::errors`).
#[derive(Deserialize)]
struct Problem {
    detail: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    errors: Vec<FieldProblem>,
}

#[derive(Deserialize)]
struct FieldProblem {
    field: String,
    reason: String,
}

fn problem_message(status: reqwest::StatusCode, body: &[u8], server: &str) -> String {
    let Ok(problem) = serde_json::from_slice::<Problem>(body) else {
        return format!("the portal at {server} answered {status} (not a Switchboard API error)");
    };
    if !problem.errors.is_empty() {
        let fields: Vec<String> = problem
            .errors
            .iter()
            .map(|e| match flag_for(&e.field) {
                Some(flag) => format!("{} ({flag}): {}", e.field, e.reason),
                None => format!("{}: {}", e.field, e.reason),
            })
            .collect();
        return format!("invalid request: {}", fields.join("; "));
    }
    match status.as_u16() {
        400 | 422 => format!("invalid request: {}", problem.detail),
        500.. => format!("{} (request id {})", problem.detail, problem.request_id),
        _ => problem.detail,
    }
}

/// The flag that sets an API field, where the names differ.
fn flag_for(field: &str) -> Option<&'static str> {
    Some(match field {
        "prefix_length" => "--size",
        "default_prefix_length" => "--default-prefix-length",
        "parent_id" => "--parent",
        "labels" => "--label",
        "idempotency_key" => "--idempotency-key",
        "reservation_ttl" => "--reserve-seconds",
        "provider_account_id" => "--account",
        "pool_id" => "--pool",
        "tags" => "--tag",
        "external_id" => "--external-id",
        // Connection requests (`connection request`, `approve`, `reject`, `list`).
        "source_network_id" => "--from",
        "source_cidr" => "--from-cidr",
        "destination_network_id" => "--to",
        "target_address" => "--address",
        "target_port" => "--port",
        "record_type" => "--type",
        "expires_in_hours" => "--expires-in-hours",
        "plan_hash" => "--plan-hash",
        // Where the flag is the field's name, say so too.
        "kind" => "--kind",
        "reason" => "--reason",
        "protocol" => "--protocol",
        "ports" => "--ports",
        "hostname" => "--hostname",
        "path" => "--path",
        "team" => "--team",
        "name" => "--name",
        "value" => "--value",
        "ttl" => "--ttl",
        "comment" => "--comment",
        "status" => "--status",
        _ => return None,
    })
}

/// A successful answer's body, and the next page's cursor for a list.
struct Reply {
    body: Vec<u8>,
    next_cursor: Option<String>,
}

impl Reply {
    fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Failed(format!("the portal's answer was not understood: {e}")))
    }

    /// The API's JSON as it came, indented (empty for an answer without a body).
    fn pretty(&self) -> String {
        if self.body.is_empty() {
            String::new()
        } else {
            output::indent_json(&String::from_utf8_lossy(&self.body))
        }
    }
}

/// The typed answer as JSON, or the short text.
fn typed_answer<T: serde::Serialize>(
    client: &Client,
    value: &T,
    text: String,
) -> Result<String, Error> {
    if client.json_output() {
        serde_json::to_string_pretty(value)
            .map(|json| json + "\n")
            .map_err(|e| Error::Failed(format!("could not print the answer: {e}")))
    } else {
        Ok(text)
    }
}

/// The wire name of a v1 enum value (`pending_approval`, `network-to-network`).
fn wire_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Parses `key=value` (for `--label`, `--tag`).
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("{text:?} is not key=value")),
    }
}
