//! Use cases: the one place where state changes. Web, API and job handlers all
//! call these, so HTML and JSON never duplicate logic. Each one asks the policy
//! first (`caller.actor.require(…)`), then changes state and writes the audit
//! event in one transaction.

pub mod accounts;
pub mod address_plan;
mod allocation_queue;
pub mod audit;
pub mod connections;
mod filter;
pub mod guardrails;
pub mod housekeeping;
pub mod idempotency;
pub mod mail;
pub mod monitor;
pub mod networks;
pub mod notifications;
pub mod provisioning;
pub mod reach;
pub mod sandbox;
pub mod teams;
pub mod tokens;

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::oidc::Oidc;
use crate::auth::policy::Actor;
use crate::auth::secrets::ServerKey;
use crate::config::Settings;
use crate::providers::Registry;
use crate::store::provider_accounts::ProviderAccount;

/// What every use case needs: the database, the settings, the server key and,
/// when configured, the identity provider.
#[derive(Clone, Debug)]
pub struct Context {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub key: ServerKey,
    pub oidc: Option<Arc<Oidc>>,
    /// Allocations waiting for a busy pool, made together (shared by clones).
    allocations: Arc<allocation_queue::AllocationQueues>,
    /// The provider modules of every account, built once (shared by clones).
    providers: Arc<Providers>,
    /// Who can reach what, kept between changes (shared by clones).
    reach: Arc<reach::Kept>,
}

impl Context {
    pub fn new(pool: PgPool, settings: Arc<Settings>) -> crate::Result<Self> {
        let key = match &settings.session_key {
            Some(key) => ServerKey::new(key.expose().as_bytes()),
            // Only possible without an identity provider (config refuses it otherwise).
            None => ServerKey::ephemeral(),
        };
        let oidc = match &settings.oidc {
            Some(oidc) => Some(Arc::new(Oidc::new(oidc.clone(), &settings.base_url)?)),
            None => None,
        };
        Ok(Self {
            pool,
            settings,
            key,
            oidc,
            allocations: Arc::default(),
            providers: Arc::default(),
            reach: Arc::default(),
        })
    }

    /// The provider modules of every account, and the accounts they were built
    /// from: built once per process, and again when an account was added or
    /// changed, or after `PROVIDERS_MAX_AGE` (credentials read from files and
    /// the environment may have been rotated).
    pub async fn providers(&self) -> crate::Result<(Arc<Registry>, Arc<Vec<ProviderAccount>>)> {
        let accounts = crate::store::provider_accounts::list(&self.pool).await?;
        let fingerprint = fingerprint(&accounts);
        let mut built = self.providers.built.lock().await;
        if let Some(b) = built.as_ref()
            && b.fingerprint == fingerprint
            && b.at.elapsed() < PROVIDERS_MAX_AGE
        {
            return Ok((b.registry.clone(), b.accounts.clone()));
        }
        let registry = Arc::new(Registry::build(&self.pool, &accounts));
        let accounts = Arc::new(accounts);
        *built = Some(Built {
            fingerprint,
            at: std::time::Instant::now(),
            registry: registry.clone(),
            accounts: accounts.clone(),
        });
        Ok((registry, accounts))
    }
}

/// How long a process keeps its provider modules before building them again.
const PROVIDERS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// The provider modules of a process: HTTP clients, connections and the proxy's
/// route writer live as long as the accounts they serve stay the same.
#[derive(Default)]
pub struct Providers {
    built: tokio::sync::Mutex<Option<Built>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Providers")
    }
}

struct Built {
    fingerprint: u64,
    at: std::time::Instant,
    registry: Arc<Registry>,
    accounts: Arc<Vec<ProviderAccount>>,
}

/// What the modules are built from, hashed: any change builds them again.
fn fingerprint(accounts: &[ProviderAccount]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for a in accounts {
        (
            a.id,
            &a.kind,
            &a.name,
            &a.regions,
            a.settings.to_string(),
            &a.credentials_ref,
        )
            .hash(&mut h);
    }
    h.finish()
}

/// Who is calling a use case, and from which request (for the audit log).
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl Caller {
    pub fn label(&self) -> String {
        format!("{} <{}>", self.actor.name, self.actor.email)
    }
}
