//! Use cases: the one place where state changes. Web, API and job handlers all
//! call these, so HTML and JSON never duplicate logic. Each one asks the policy
//! first (`caller.actor.require(…)`), then changes state and writes the audit
//! event in one transaction.

pub mod accounts;
pub mod address_plan;
mod allocation_queue;
pub mod audit;
pub mod connections;
pub mod housekeeping;
pub mod mail;
pub mod monitor;
pub mod networks;
pub mod notifications;
pub mod provisioning;
pub mod sandbox;
pub mod teams;
pub mod tokens;

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::oidc::Oidc;
use crate::auth::policy::Actor;
use crate::auth::secrets::ServerKey;
use crate::config::Settings;

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
        })
    }
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
