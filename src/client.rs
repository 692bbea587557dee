//! A typed client of `/api/v1`: one method per operation, over the types the
//! server itself answers with (`api::v1`), so a field cannot drift between
//! them. The CLI is built on it; another Rust program can be too:
//!
//! ```no_run
//! # async fn example() -> Result<(), switchboard::client::ClientError> {
//! use switchboard::client::{Client, ConnectionQuery, PageRequest};
//! let portal = Client::new("https://switchboard.example.com", "sbp_…")?;
//! let active = ConnectionQuery { status: Some("active".into()), ..Default::default() };
//! for c in portal.all_connections(&active).await? {
//!     println!("{} {}", c.id, c.summary);
//! }
//! let first = portal.list_connections(&active, &PageRequest::default()).await?;
//! println!("{} on the first page", first.items.len());
//! # Ok(()) }
//! ```

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use crate::api::v1::audit::AuditEventOut;
pub use crate::api::v1::connections::{
    ConnectionOut, DecisionIn, DriftOut, EventOut, PlanOut, RepairModeIn, StatusOut,
};
pub use crate::api::v1::guardrails::{GuardrailsIn, GuardrailsOut, SavedGuardrailsOut};
pub use crate::api::v1::me::Me;
pub use crate::api::v1::model::{ConnectionRequest, Plan};
pub use crate::api::v1::networks::{
    AccountOut, NetworkChangeIn, NetworkOut, NewAccountIn, NewNetworkIn, OwnershipRefusalIn,
};
pub use crate::api::v1::notifications::{PreferencesIo, WebhookIo};
pub use crate::api::v1::pools::{
    AllocationOut, AvailableOut, NewAllocationIn, NewPoolIn, PoolDetailOut, PoolOut, QuotaIn,
};
pub use crate::api::v1::reach::{FlowOut, ReachOut};
pub use crate::api::v1::sandbox::{SandboxChangeIn, SandboxResourceOut};
pub use crate::api::v1::teams::{MemberIn, MemberOut, NewTeamIn, TeamDetailOut, TeamOut};
pub use crate::api::v1::tokens::{NewTokenIn, NewTokenOut, TokenOut};
pub use crate::api::v1::users::{SessionsEndedOut, UserOut};
pub use crate::api::v1::{FieldProblem, Problem};

mod connections;
mod guardrails;

/// Why a call did not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server or the token could not be used as given.
    #[error("{0}")]
    Setup(String),
    /// No answer: the portal could not be reached, or did not answer in time.
    #[error("{message}")]
    Unreachable { message: String, timed_out: bool },
    /// The portal answered with an error: its problem document.
    #[error("{}", .problem.detail)]
    Api {
        status: StatusCode,
        problem: Box<Problem>,
    },
    /// An answer that is not what the operation returns.
    #[error(
        "the portal at {server} answered {status} with something that is not Switchboard's API: {reason}"
    )]
    Unexpected {
        server: String,
        status: StatusCode,
        reason: String,
    },
}

/// Which page to ask for: `limit` 1 to 500 (the server's 50 when `None`), from
/// the `cursor` a previous page handed out.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One page of a list, and the cursor of the next one (`None` on the last).
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The filters of `GET /api/v1/connections`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConnectionQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
}

/// The filters of `GET /api/v1/networks`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetworkQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

/// The filters of `GET /api/v1/allocations`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AllocationQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// The filters of `GET /api/v1/audit`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// No filter.
#[derive(Serialize)]
struct Nothing {}

/// An authenticated client of one portal.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The portal's URL without a trailing slash.
    server: String,
    token: String,
}

impl Client {
    /// `server` is the portal's http(s) URL; `token` an API token (`sbp_…`).
    pub fn new(server: &str, token: &str) -> Result<Self, ClientError> {
        let server = server.trim().trim_end_matches('/').to_owned();
        match url::Url::parse(&server) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => {
                return Err(ClientError::Setup(format!(
                    "{server:?} is not an http:// or https:// URL, e.g. http://127.0.0.1:8080"
                )));
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // The API never redirects; following one could send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(format!("could not set up HTTP: {e}")))?;
        Ok(Self {
            http,
            server,
            token: token.trim().to_owned(),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    // --- accounts and tokens ---

    pub async fn me(&self) -> Result<Me, ClientError> {
        self.get("/me").await
    }

    pub async fn list_tokens(&self, page: &PageRequest) -> Result<Page<TokenOut>, ClientError> {
        self.page("/tokens", &Nothing {}, page).await
    }

    /// The answer holds the secret, shown this once.
    pub async fn create_token(
        &self,
        token: &NewTokenIn,
        idempotency_key: Option<&str>,
    ) -> Result<NewTokenOut, ClientError> {
        self.create("/tokens", token, idempotency_key).await
    }

    pub async fn revoke_token(&self, id: Uuid) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/tokens/{id}")).await
    }

    pub async fn notification_preferences(&self) -> Result<PreferencesIo, ClientError> {
        self.get("/me/notifications").await
    }

    pub async fn set_notification_preferences(
        &self,
        preferences: &PreferencesIo,
    ) -> Result<PreferencesIo, ClientError> {
        self.send(Method::PUT, "/me/notifications", Some(preferences), None)
            .await
    }

    /// Every page of `list_tokens`.
    pub async fn all_tokens(&self) -> Result<Vec<TokenOut>, ClientError> {
        self.all("/tokens", &Nothing {}).await
    }

    pub async fn list_users(&self, page: &PageRequest) -> Result<Page<UserOut>, ClientError> {
        self.page("/users", &Nothing {}, page).await
    }

    /// Every page of `list_users`.
    pub async fn all_users(&self) -> Result<Vec<UserOut>, ClientError> {
        self.all("/users", &Nothing {}).await
    }

    /// Ends every browser session of a user; their API tokens keep working.
    pub async fn revoke_sessions(&self, user: Uuid) -> Result<SessionsEndedOut, ClientError> {
        self.send(
            Method::DELETE,
            &format!("/users/{user}/sessions"),
            None::<&Nothing>,
            None,
        )
        .await
    }

    pub async fn list_audit_events(
        &self,
        filter: &AuditQuery,
        page: &PageRequest,
    ) -> Result<Page<AuditEventOut>, ClientError> {
        self.page("/audit", filter, page).await
    }

    // --- teams ---

    pub async fn list_teams(&self, page: &PageRequest) -> Result<Page<TeamOut>, ClientError> {
        self.page("/teams", &Nothing {}, page).await
    }

    /// Every page of `list_teams`.
    pub async fn all_teams(&self) -> Result<Vec<TeamOut>, ClientError> {
        self.all("/teams", &Nothing {}).await
    }

    pub async fn create_team(&self, team: &NewTeamIn) -> Result<TeamDetailOut, ClientError> {
        self.create("/teams", team, None).await
    }

    /// Adds a person with a role, or changes a member's role.
    pub async fn set_team_member(
        &self,
        slug: &str,
        member: &MemberIn,
    ) -> Result<MemberOut, ClientError> {
        let path = format!("/teams/{}/members", segment(slug));
        self.create(&path, member, None).await
    }

    pub async fn remove_team_member(&self, slug: &str, user: Uuid) -> Result<(), ClientError> {
        let path = format!("/teams/{}/members/{user}", segment(slug));
        self.empty(Method::DELETE, &path).await
    }

    pub async fn get_team(&self, slug: &str) -> Result<TeamDetailOut, ClientError> {
        self.get(&format!("/teams/{}", segment(slug))).await
    }

    pub async fn team_webhook(&self, slug: &str) -> Result<WebhookIo, ClientError> {
        self.get(&format!("/teams/{}/webhook", segment(slug))).await
    }

    pub async fn set_team_webhook(
        &self,
        slug: &str,
        webhook: &WebhookIo,
    ) -> Result<WebhookIo, ClientError> {
        let path = format!("/teams/{}/webhook", segment(slug));
        self.send(Method::PUT, &path, Some(webhook), None).await
    }

    pub async fn delete_team_webhook(&self, slug: &str) -> Result<(), ClientError> {
        let path = format!("/teams/{}/webhook", segment(slug));
        self.empty(Method::DELETE, &path).await
    }

    // --- the address plan ---

    pub async fn list_pools(&self, page: &PageRequest) -> Result<Page<PoolOut>, ClientError> {
        self.page("/pools", &Nothing {}, page).await
    }

    pub async fn create_pool(
        &self,
        pool: &NewPoolIn,
        idempotency_key: Option<&str>,
    ) -> Result<PoolOut, ClientError> {
        self.create("/pools", pool, idempotency_key).await
    }

    pub async fn get_pool(&self, id: Uuid) -> Result<PoolDetailOut, ClientError> {
        self.get(&format!("/pools/{id}")).await
    }

    pub async fn available(
        &self,
        pool: Uuid,
        prefix_length: u8,
    ) -> Result<AvailableOut, ClientError> {
        self.get(&format!(
            "/pools/{pool}/available?prefix_length={prefix_length}"
        ))
        .await
    }

    /// Takes a block; the same idempotency key again answers the same block.
    pub async fn allocate(
        &self,
        pool: Uuid,
        allocation: &NewAllocationIn,
    ) -> Result<AllocationOut, ClientError> {
        self.create(&format!("/pools/{pool}/allocations"), allocation, None)
            .await
    }

    /// Gives a block back; `force` (admins) even when a network uses it.
    pub async fn release(&self, allocation: Uuid, force: bool) -> Result<(), ClientError> {
        let query = if force { "?force=true" } else { "" };
        self.empty(Method::DELETE, &format!("/allocations/{allocation}{query}"))
            .await
    }

    pub async fn list_allocations(
        &self,
        filter: &AllocationQuery,
        page: &PageRequest,
    ) -> Result<Page<AllocationOut>, ClientError> {
        self.page("/allocations", filter, page).await
    }

    pub async fn set_quota(
        &self,
        pool: Uuid,
        team: &str,
        quota: &QuotaIn,
    ) -> Result<(), ClientError> {
        let path = format!("/pools/{pool}/quotas/{}", segment(team));
        self.send_empty(Method::PUT, &path, Some(quota)).await
    }

    // --- provider accounts and networks ---

    pub async fn list_provider_accounts(
        &self,
        page: &PageRequest,
    ) -> Result<Page<AccountOut>, ClientError> {
        self.page("/provider-accounts", &Nothing {}, page).await
    }

    /// Every page of `list_provider_accounts`.
    pub async fn all_provider_accounts(&self) -> Result<Vec<AccountOut>, ClientError> {
        self.all("/provider-accounts", &Nothing {}).await
    }

    pub async fn create_provider_account(
        &self,
        account: &NewAccountIn,
    ) -> Result<AccountOut, ClientError> {
        self.create("/provider-accounts", account, None).await
    }

    pub async fn list_networks(
        &self,
        filter: &NetworkQuery,
        page: &PageRequest,
    ) -> Result<Page<NetworkOut>, ClientError> {
        self.page("/networks", filter, page).await
    }

    pub async fn all_networks(
        &self,
        filter: &NetworkQuery,
    ) -> Result<Vec<NetworkOut>, ClientError> {
        self.all("/networks", filter).await
    }

    pub async fn create_network(
        &self,
        network: &NewNetworkIn,
        idempotency_key: Option<&str>,
    ) -> Result<NetworkOut, ClientError> {
        self.create("/networks", network, idempotency_key).await
    }

    pub async fn get_network(&self, id: Uuid) -> Result<NetworkOut, ClientError> {
        self.get(&format!("/networks/{id}")).await
    }

    pub async fn update_network(
        &self,
        id: Uuid,
        change: &NetworkChangeIn,
    ) -> Result<NetworkOut, ClientError> {
        self.send(
            Method::PATCH,
            &format!("/networks/{id}"),
            Some(change),
            None,
        )
        .await
    }

    pub async fn delete_network(&self, id: Uuid) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/networks/{id}")).await
    }

    pub async fn list_registrations(
        &self,
        page: &PageRequest,
    ) -> Result<Page<NetworkOut>, ClientError> {
        self.page("/registrations", &Nothing {}, page).await
    }

    pub async fn confirm_ownership(&self, network: Uuid) -> Result<NetworkOut, ClientError> {
        let path = format!("/networks/{network}/ownership/confirm");
        self.send(Method::POST, &path, None::<&Nothing>, None).await
    }

    pub async fn refuse_ownership(
        &self,
        network: Uuid,
        refusal: &OwnershipRefusalIn,
    ) -> Result<NetworkOut, ClientError> {
        let path = format!("/networks/{network}/ownership/refuse");
        self.send(Method::POST, &path, Some(refusal), None).await
    }

    pub async fn check_ownership(&self, network: Uuid) -> Result<NetworkOut, ClientError> {
        let path = format!("/networks/{network}/ownership/check");
        self.send(Method::POST, &path, None::<&Nothing>, None).await
    }

    // --- the sandbox (admins) ---

    pub async fn list_sandbox_resources(
        &self,
        connection: Option<Uuid>,
        page: &PageRequest,
    ) -> Result<Page<SandboxResourceOut>, ClientError> {
        #[derive(Serialize)]
        struct ByConnection {
            #[serde(skip_serializing_if = "Option::is_none")]
            connection_id: Option<Uuid>,
        }
        let filter = ByConnection {
            connection_id: connection,
        };
        self.page("/sandbox/resources", &filter, page).await
    }

    pub async fn change_sandbox_resource(
        &self,
        id: &str,
        change: &SandboxChangeIn,
    ) -> Result<SandboxResourceOut, ClientError> {
        let path = format!("/sandbox/resources/{}", segment(id));
        self.send(Method::PATCH, &path, Some(change), None).await
    }

    pub async fn delete_sandbox_resource(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/sandbox/resources/{}", segment(id));
        self.empty(Method::DELETE, &path).await
    }

    // --- the transport ---

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path, None::<&Nothing>, None).await
    }

    async fn create<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, path, Some(body), idempotency_key)
            .await
    }

    async fn empty(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.send_empty(method, path, None::<&Nothing>).await
    }

    async fn send_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        self.call(method, path, body, None).await.map(drop)
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let (status, _, bytes) = self.call(method, path, body, idempotency_key).await?;
        self.decode(status, &bytes)
    }

    async fn page<F: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        filter: &F,
        page: &PageRequest,
    ) -> Result<Page<T>, ClientError> {
        let query = serde_urlencoded_query(filter, page);
        let path = format!("{path}?{query}");
        let (status, headers, bytes) = self
            .call(Method::GET, &path, None::<&Nothing>, None)
            .await?;
        let next_cursor = headers
            .get("next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Page {
            items: self.decode(status, &bytes)?,
            next_cursor,
        })
    }

    async fn all<F: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        filter: &F,
    ) -> Result<Vec<T>, ClientError> {
        let mut items = Vec::new();
        let mut page = PageRequest {
            limit: Some(crate::domain::page::MAX_LIMIT),
            cursor: None,
        };
        loop {
            let got: Page<T> = self.page(path, filter, &page).await?;
            items.extend(got.items);
            match got.next_cursor {
                Some(next) => page.cursor = Some(next),
                None => return Ok(items),
            }
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        status: StatusCode,
        bytes: &[u8],
    ) -> Result<T, ClientError> {
        // An answer without a body (204) reads as JSON null.
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { bytes };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Unexpected {
            server: self.server.clone(),
            status,
            reason: e.to_string(),
        })
    }

    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.server))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            message: if e.is_timeout() {
                format!("the portal at {} did not answer in time", self.server)
            } else {
                format!(
                    "could not reach the portal at {} ({})",
                    self.server,
                    innermost(&e)
                )
            },
            timed_out: e.is_timeout(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(unreachable)?.to_vec();
        if status.is_success() {
            return Ok((status, headers, bytes));
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(problem) => Err(ClientError::Api {
                status,
                problem: Box::new(problem),
            }),
            Err(e) => Err(ClientError::Unexpected {
                server: self.server.clone(),
                status,
                reason: e.to_string(),
            }),
        }
    }
}

/// A filter and a page as a query string.
fn serde_urlencoded_query<F: Serialize>(filter: &F, page: &PageRequest) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(filter) {
        for (name, value) in fields {
            match value {
                serde_json::Value::String(s) => query.append_pair(&name, &s),
                serde_json::Value::Null => &mut query,
                other => query.append_pair(&name, &other.to_string()),
            };
        }
    }
    if let Some(limit) = page.limit {
        query.append_pair("limit", &limit.to_string());
    }
    if let Some(cursor) = &page.cursor {
        query.append_pair("cursor", cursor);
    }
    query.finish()
}

/// A path segment, percent-encoded (a slug or a sandbox id is text).
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The innermost cause: "connection refused" rather than "error sending request".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
