//! Provider modules behind one trait. The core never names a provider: the
//! registry builds one per provider account from its kind, and the planner reads
//! what each kind can build. Adding a provider is adding a module here.

mod sandbox;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use crate::planner::{Mechanism, Plan};
use crate::store::provider_accounts::ProviderAccount;

/// What a provider account of `kind` can build. A kind not listed builds nothing.
pub fn capabilities(kind: &str) -> &'static [Mechanism] {
    use Mechanism as M;
    match kind {
        // The sandbox simulates a cloud, so demos plan like the real thing.
        "aws" | "sandbox" => &[
            M::TransitGateway,
            M::VpcPeering,
            M::InterRegionPeering,
            M::SiteToSiteVpn,
            M::SecurityGroupRule,
        ],
        "linux" => &[M::Wireguard, M::NftablesRule],
        "proxy" => &[M::ProxyRoute],
        "dns" => &[M::DnsRecord],
        _ => &[],
    }
}

/// Kinds whose accounts hold networks (the others serve them: proxies, DNS).
pub fn holds_networks(kind: &str) -> bool {
    matches!(kind, "aws" | "sandbox" | "linux")
}

/// One thing a plan asks a provider account to build, named so that a retry
/// finds what an earlier attempt built (every item is tagged with the connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub kind: String,
    pub name: String,
    pub detail: String,
}

/// Everything of `plan` that lives in `account`, in the order it is built.
pub fn items_in(plan: &Plan, account: &str) -> Vec<Item> {
    let mut items: Vec<Item> = plan
        .resources
        .iter()
        .filter(|r| r.account == account)
        .map(|r| Item {
            kind: r.kind.clone(),
            name: r.name.clone(),
            detail: r.detail.clone(),
        })
        .collect();
    items.extend(
        plan.routes
            .iter()
            .filter(|r| r.account == account)
            .map(|r| Item {
                kind: "route".into(),
                name: format!("{} → {}", r.destination, r.via),
                detail: format!("in the route tables of {}", r.network),
            }),
    );
    items.extend(plan.rules.iter().filter(|r| r.account == account).map(|r| {
        let what = if r.protocol == "any" && r.ports == "all ports" {
            "all traffic".to_owned()
        } else {
            format!("{} {}", r.protocol, r.ports)
        };
        Item {
            kind: "firewall rule".into(),
            name: format!("{what} from {}", r.allow_from),
            detail: format!("into {}", r.network),
        }
    }));
    items
}

/// The provider accounts a plan touches, in order of first appearance.
pub fn accounts_of(plan: &Plan) -> Vec<String> {
    let mut accounts: Vec<String> = Vec::new();
    let named = plan
        .resources
        .iter()
        .map(|r| &r.account)
        .chain(plan.routes.iter().map(|r| &r.account))
        .chain(plan.rules.iter().map(|r| &r.account));
    for account in named {
        if !accounts.contains(account) {
            accounts.push(account.clone());
        }
    }
    accounts
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `created`, `found` (an earlier attempt built it) or `deleted`.
    pub action: &'static str,
    pub item: Item,
    pub provider_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth trying again later (timeouts, throttling, a flaky link).
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help (bad credentials, quota, invalid parameters).
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Builds one item of a connection; idempotent: what exists is found, not
    /// built twice.
    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError>;
    /// Removes everything it built for the connection, newest first; idempotent.
    async fn destroy(&self, connection_id: Uuid) -> Result<Vec<Step>, ProviderError>;
}

/// The providers of every account, built from the database; an account that
/// cannot be served says why instead of stopping anything else.
pub struct Registry {
    providers: HashMap<String, Result<Arc<dyn Provider>, String>>,
}

impl Registry {
    pub fn build(pool: &PgPool, accounts: &[ProviderAccount]) -> Self {
        let providers = accounts
            .iter()
            .map(|a| (a.name.clone(), provider_for(pool, a)))
            .collect();
        Registry { providers }
    }

    /// The provider of an account, or why there is none (a permanent failure).
    pub fn get(&self, account: &str) -> Result<Arc<dyn Provider>, ProviderError> {
        match self.providers.get(account) {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(why)) => Err(ProviderError::Permanent(why.clone())),
            None => Err(ProviderError::Permanent(format!(
                "no provider account is called {account:?} any more"
            ))),
        }
    }
}

fn provider_for(pool: &PgPool, account: &ProviderAccount) -> Result<Arc<dyn Provider>, String> {
    match account.kind.as_str() {
        "sandbox" => Ok(Arc::new(sandbox::Sandbox::new(pool.clone(), account)?)),
        other => Err(format!(
            "provider account {} is of kind {other}, which this version of Switchboard cannot provision yet",
            account.name
        )),
    }
}
