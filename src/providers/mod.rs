//! Provider modules behind one trait. The core never names a provider: the
//! registry builds one per provider account from its kind, and the planner reads
//! what each kind can build. Adding a provider is adding a module here.

mod aws;
mod dns;
mod linux;
mod proxy;
pub mod sandbox;

use std::collections::{BTreeMap, HashMap};
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
        "aws" => &[
            M::TransitGateway,
            M::VpcPeering,
            M::InterRegionPeering,
            M::SiteToSiteVpn,
            M::SecurityGroupRule,
        ],
        // The sandbox simulates a cloud, so demos plan like the real thing;
        // it has no VPN an on-prem host could reach, so a sandbox ↔ on-prem
        // link is refused when it is asked for, with the reason.
        "sandbox" => &[
            M::TransitGateway,
            M::VpcPeering,
            M::InterRegionPeering,
            M::SecurityGroupRule,
        ],
        // WireGuard between its own hosts; the on-prem end of a cloud's VPN (IPsec).
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

/// Where each on-prem namespace is reached (its underlay address), from the
/// `endpoint.<namespace>` settings of every linux account.
pub(crate) fn endpoints(all: &[ProviderAccount]) -> Result<HashMap<String, String>, String> {
    let mut endpoints = HashMap::new();
    for a in all.iter().filter(|a| a.kind == "linux") {
        for (key, value) in a.settings.as_object().into_iter().flatten() {
            if let (Some(ns), Some(address)) = (key.strip_prefix("endpoint."), value.as_str()) {
                if address.trim().parse::<std::net::IpAddr>().is_err() {
                    return Err(format!(
                        "linux account {}: {key} must be an IP address, not {address:?}",
                        a.name
                    ));
                }
                endpoints.insert(ns.to_owned(), address.trim().to_owned());
            }
        }
    }
    Ok(endpoints)
}

/// One thing a plan asks a provider account to build, named so that a retry
/// finds what an earlier attempt built (every item is tagged with the connection).
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: String,
    pub name: String,
    pub detail: String,
    /// What the provider needs to build it: network ids, regions, prefixes, ports…
    pub params: BTreeMap<String, String>,
}

/// An item to remove, with the provider ids Switchboard recorded making for it
/// (by any connection): a provider removes only those, never what it found.
#[derive(Clone, Debug)]
pub struct Removal {
    pub item: Item,
    pub made: Vec<String>,
}

/// What a connection should have in an account, for observation.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub connection_id: Uuid,
    pub items: Vec<Item>,
}

/// How a connection's items differ from what exists, in plain words; empty when
/// everything matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub connection_id: Uuid,
    pub differences: Vec<String>,
}

/// An item with the plan's entry it comes from, as a JSON containment probe:
/// another connection whose plan contains the probe needs the same thing.
pub struct Planned {
    pub item: Item,
    pub probe: serde_json::Value,
}

/// Like a derived `Debug`, but a key handed over by another item (`….psk`)
/// is never printed.
impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let params: BTreeMap<&str, &str> = self
            .params
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if k.ends_with(".psk") {
                        "…"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("Item")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("detail", &self.detail)
            .field("params", &params)
            .finish()
    }
}

impl Item {
    /// How steps name it: "VPC peering a--b in cloud".
    pub fn resource(&self, account: &str) -> String {
        format!("{} {} in {account}", self.kind, self.name)
    }
}

impl Item {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The kinds of item a plan can hold, as providers see them.
pub mod kinds {
    pub const PEERING: &str = "VPC peering";
    pub const TRANSIT_GATEWAY_ATTACHMENT: &str = "transit gateway attachment";
    pub const SITE_TO_SITE_VPN: &str = "site-to-site VPN";
    pub const IPSEC_TUNNEL: &str = "IPsec tunnel";
    pub const ROUTE: &str = "route";
    pub const FIREWALL_RULE: &str = "firewall rule";
}

/// Everything of `plan` that lives in `account`, in the order it is built.
pub fn items_in(plan: &Plan, account: &str) -> Vec<Item> {
    planned_in(plan, account)
        .into_iter()
        .map(|p| p.item)
        .collect()
}

/// The items of `plan` in `account`, each with the probe that finds other plans
/// needing it.
pub fn planned_in(plan: &Plan, account: &str) -> Vec<Planned> {
    let mut items: Vec<Planned> = plan
        .resources
        .iter()
        .filter(|r| r.account == account)
        .map(|r| Planned {
            item: Item {
                kind: r.kind.clone(),
                name: r.name.clone(),
                detail: r.detail.clone(),
                params: r.params.clone(),
            },
            probe: probe("resources", r),
        })
        .collect();
    let place = |network: &str, at: &crate::planner::Place| {
        let mut p = BTreeMap::from([
            ("network".to_owned(), network.to_owned()),
            ("region".to_owned(), at.region.clone()),
            ("mechanism".to_owned(), plan.mechanism.to_string()),
        ]);
        if let Some(id) = &at.network_id {
            p.insert("network_id".into(), id.clone());
        }
        p
    };
    items.extend(
        plan.routes
            .iter()
            .filter(|r| r.account == account)
            .map(|r| {
                let mut params = place(&r.network, &r.at);
                params.insert("destination".into(), r.destination.clone());
                params.insert("via".into(), r.via.clone());
                if let Some(peer) = &r.peer_network_id {
                    params.insert("peer_network_id".into(), peer.clone());
                }
                Planned {
                    item: Item {
                        kind: kinds::ROUTE.into(),
                        name: format!("{} → {}", r.destination, r.via),
                        detail: format!("in the route tables of {}", r.network),
                        params,
                    },
                    probe: probe("routes", r),
                }
            }),
    );
    items.extend(plan.rules.iter().filter(|r| r.account == account).map(|r| {
        let what = if r.protocol == "any" && r.ports == "all ports" {
            "all traffic".to_owned()
        } else {
            format!("{} {}", r.protocol, r.ports)
        };
        let mut params = place(&r.network, &r.at);
        params.insert("allow_from".into(), r.allow_from.clone());
        params.insert("protocol".into(), r.protocol.clone());
        params.insert("ports".into(), r.ports.clone());
        Planned {
            item: Item {
                kind: kinds::FIREWALL_RULE.into(),
                name: format!("{what} from {}", r.allow_from),
                detail: format!("into {}", r.network),
                params,
            },
            probe: probe("rules", r),
        }
    }));
    items
}

fn probe<T: serde::Serialize>(list: &str, entry: &T) -> serde_json::Value {
    serde_json::json!({ list: [serde_json::to_value(entry).expect("a plan entry serializes")] })
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

/// What each connection's items differ by, item by item: the shape of every
/// provider's `observe` once it has read what exists.
pub(crate) fn seen_each<D>(wanted: &[Wanted], differences: impl Fn(Uuid, &Item) -> D) -> Vec<Seen>
where
    D: IntoIterator<Item = String>,
{
    wanted
        .iter()
        .map(|w| Seen {
            connection_id: w.connection_id,
            differences: w
                .items
                .iter()
                .flat_map(|item| differences(w.connection_id, item))
                .collect(),
        })
        .collect()
}

/// An HTTP API's answer, or its refusal in plain words (`who` refused to
/// `what`, with the API's own `error`): a 5xx is worth trying again, a 4xx not.
pub(crate) async fn http_answer(
    answer: reqwest::Response,
    who: &str,
    what: &str,
) -> Result<reqwest::Response, ProviderError> {
    let status = answer.status();
    if status.is_success() {
        return Ok(answer);
    }
    let body = answer.text().await.unwrap_or_default();
    let error = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or(body);
    let text = format!(
        "{who} refused to {what}: {error} (HTTP {})",
        status.as_u16()
    );
    if status.is_server_error() {
        Err(ProviderError::Transient(text))
    } else {
        Err(ProviderError::Permanent(text))
    }
}

/// The 32-bit FNV-1a hash: Caddy's configuration versions, and short stable names.
pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `created`, `found` (an earlier attempt built it) or `deleted`.
    pub action: &'static str,
    pub item: Item,
    pub provider_id: Option<String>,
    /// What the connection's later items need from this one.
    pub handoff: Handoff,
}

impl Step {
    pub fn new(action: &'static str, item: &Item, provider_id: Option<String>) -> Self {
        Step {
            action,
            item: item.clone(),
            provider_id,
            handoff: Handoff::default(),
        }
    }
}

/// Values one provider hands to the items after it in the same run, added to
/// their params: a cloud VPN's tunnel addresses and pre-shared keys, which the
/// on-prem end needs. Read from the provider each run and kept only in memory
/// (never recorded, logged or shown: `Debug` prints the keys, not the values).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Handoff(pub BTreeMap<String, String>);

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[derive(Clone, Debug, thiserror::Error)]
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
    /// Whether connections that need the same thing share one (a cloud has one
    /// peering per pair of VPCs), so removing a connection keeps what another
    /// still needs; a provider that gives each connection its own copy says no.
    fn shares(&self) -> bool {
        true
    }
    /// Builds one item of a connection; idempotent: what exists is found, not
    /// built twice.
    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError>;
    /// What exists now of many connections' items, read in bulk (a few calls
    /// per account, not per connection); an error means the provider could not
    /// be asked, so nothing is known.
    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError>;
    /// Removes what Switchboard made of the connection's `removals` (given in
    /// the order they were built), newest first; idempotent.
    async fn destroy(
        &self,
        connection_id: Uuid,
        removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError>;
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
            .map(|a| (a.name.clone(), provider_for(pool, a, accounts)))
            .collect();
        Registry { providers }
    }

    /// Accounts that cannot be served, with the reason (shown to admins).
    pub fn problems(&self) -> HashMap<String, String> {
        self.providers
            .iter()
            .filter_map(|(name, p)| p.as_ref().err().map(|why| (name.clone(), why.clone())))
            .collect()
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

fn provider_for(
    pool: &PgPool,
    account: &ProviderAccount,
    all: &[ProviderAccount],
) -> Result<Arc<dyn Provider>, String> {
    match account.kind.as_str() {
        "sandbox" => Ok(Arc::new(sandbox::Sandbox::new(pool.clone(), account)?)),
        "aws" => Ok(Arc::new(aws::Aws::new(account, all)?)),
        "dns" => Ok(Arc::new(dns::Dns::new(account)?)),
        "proxy" => Ok(Arc::new(proxy::Proxy::new(account)?)),
        "linux" => Ok(Arc::new(linux::Linux::new(account, all)?)),
        other => Err(format!(
            "provider account {} is of kind {other}, which this version of Switchboard cannot provision yet",
            account.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::connection::{PortRange, Protocol};
    use crate::planner::{Ask, End};

    fn end(network: &str, kind: &str, cidr: &str) -> End {
        End {
            network: network.into(),
            team: "t".into(),
            provider_kind: kind.into(),
            account: format!("{kind}-account"),
            region: "eu-west-1".into(),
            prefixes: vec![cidr.parse().unwrap()],
            external_id: None,
            transit_gateway: None,
            capabilities: capabilities(kind).to_vec(),
        }
    }

    #[test]
    fn a_handed_over_key_is_never_printed() {
        let item = Item {
            kind: kinds::IPSEC_TUNNEL.into(),
            name: "dc--pay/dc".into(),
            detail: String::new(),
            params: BTreeMap::from([
                ("tunnel.1.address".to_owned(), "52.2.144.13".to_owned()),
                ("tunnel.1.psk".to_owned(), "s3cret-key".to_owned()),
            ]),
        };
        let step = Step::new("created", &item, None);
        let printed = format!("{item:?} {step:?}");
        assert!(printed.contains("52.2.144.13"), "{printed}");
        assert!(!printed.contains("s3cret-key"), "{printed}");
    }

    #[test]
    fn on_prem_links_to_aws_through_its_vpn_but_not_to_the_sandbox() {
        let ask = |cloud: &str| Ask::NetworkToNetwork {
            a: End {
                transit_gateway: Some("tgw-1".into()),
                ..end("pay", cloud, "10.1.0.0/16")
            },
            b: end("dc", "linux", "192.168.0.0/24"),
            protocol: Protocol::Tcp,
            ports: vec![PortRange { from: 443, to: 443 }],
        };
        let plan = crate::planner::plan(&ask("aws")).unwrap();
        assert_eq!(plan.mechanism, crate::planner::Mechanism::SiteToSiteVpn);
        let refusal = crate::planner::plan(&ask("sandbox")).unwrap_err();
        assert_eq!(refusal.field, "destination_network_id");
        assert!(
            refusal.reason.contains(
                "site-to-site VPN: neither provider builds a VPN gateway in this version of Switchboard"
            ),
            "{}",
            refusal.reason
        );
    }
}
