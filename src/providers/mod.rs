//! Provider modules behind one trait. The core never names a provider: the
//! registry builds one per provider account from its kind, and the planner reads
//! what each kind can build. Adding a provider is adding a module here.

mod aws;
mod dns;
mod linux;
mod proxy;
pub mod sandbox;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::planner::build::{Build, Network, Tunnel};
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The plan's label for it ("VPC peering"), for steps and messages only:
    /// what is built is `build`.
    pub label: String,
    pub name: String,
    pub detail: String,
    pub build: Build,
}

/// An item to remove, with what Switchboard recorded of it. A provider removes
/// what any connection recorded making (`made`), and what this connection
/// recorded finding (`found`) when the provider's own marks show Switchboard
/// made it: a run that died after the provider made an item but before its
/// step was recorded finds it on the next run, and it must still go. What
/// Switchboard did not make (a peering made by hand that a connection merely
/// used) is never removed. The services keep out what another connection
/// still needs.
#[derive(Clone, Debug)]
pub struct Removal {
    pub item: Item,
    pub made: Vec<String>,
    pub found: Vec<String>,
}

impl Removal {
    /// Did Switchboard record making `id` (a step may name several, `a, b`)?
    pub fn made(&self, id: &str) -> bool {
        named(&self.made, id)
    }

    /// Did this connection record finding `id`?
    pub fn found(&self, id: &str) -> bool {
        named(&self.found, id)
    }
}

fn named(ids: &[String], id: &str) -> bool {
    ids.iter().any(|m| m.split(", ").any(|m| m == id))
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
    /// The proofs that the approved traffic passes, in plain words (a probe
    /// that got an answer), where the provider can send traffic.
    pub verified: Vec<String>,
    /// Configured as approved, but a proof failed: the differences are about
    /// traffic that does not pass.
    pub unreachable: bool,
}

/// An item with the plan's entry it comes from, as a JSON containment probe:
/// another connection whose plan contains the probe needs the same thing.
pub struct Planned {
    pub item: Item,
    pub probe: serde_json::Value,
}

impl Item {
    /// How steps name it: "VPC peering a--b in cloud".
    pub fn resource(&self, account: &str) -> String {
        Step::new("", self, None).resource(account)
    }
}

/// Everything of `plan` that lives in `account`, in the order it is built.
pub fn items_in(plan: &Plan, account: &str) -> Result<Vec<Item>, ProviderError> {
    Ok(planned_in(plan, account)?
        .into_iter()
        .map(|p| p.item)
        .collect())
}

/// The items of `plan` in `account`, each with the probe that finds other plans
/// needing it. A stored resource this version cannot build is a permanent error.
pub fn planned_in(plan: &Plan, account: &str) -> Result<Vec<Planned>, ProviderError> {
    let mut items = Vec::new();
    for r in plan.resources.iter().filter(|r| r.account == account) {
        let build = Build::from_stored(&r.kind, &r.params).map_err(|why| {
            ProviderError::Permanent(format!("the plan's {} {}: {why}", r.kind, r.name))
        })?;
        items.push(Planned {
            item: Item {
                label: r.kind.clone(),
                name: r.name.clone(),
                detail: r.detail.clone(),
                build,
            },
            probe: probe("resources", r),
        });
    }
    items.extend(
        plan.routes
            .iter()
            .filter(|r| r.account == account)
            .map(|r| Planned {
                item: Item {
                    label: "route".into(),
                    name: format!("{} → {}", r.destination, r.via),
                    detail: format!("in the route tables of {}", r.network),
                    build: Build::route(r, plan.mechanism),
                },
                probe: probe("routes", r),
            }),
    );
    items.extend(plan.rules.iter().filter(|r| r.account == account).map(|r| {
        let what = if r.protocol == "any" && r.ports == "all ports" {
            "all traffic".to_owned()
        } else {
            format!("{} {}", r.protocol, r.ports)
        };
        Planned {
            item: Item {
                label: "firewall rule".into(),
                name: format!("{what} from {}", r.allow_from),
                detail: format!("into {}", r.network),
                build: Build::rule(r, plan.mechanism),
            },
            probe: probe("rules", r),
        }
    }));
    Ok(items)
}

fn probe<T: serde::Serialize>(list: &str, entry: &T) -> serde_json::Value {
    let entry = serde_json::to_value(entry).unwrap_or_default();
    serde_json::json!({ list: [entry] })
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
            verified: Vec::new(),
            unreachable: false,
        })
        .collect()
}

/// The connections whose configuration matches (nothing differs), each with
/// its place in `seen`: only those are worth proving.
pub(crate) fn matching<'a>(wanted: &'a [Wanted], seen: &[Seen]) -> Vec<(usize, &'a Wanted)> {
    seen.iter()
        .enumerate()
        .filter(|(_, s)| s.differences.is_empty())
        .filter_map(|(n, s)| {
            Some((
                n,
                wanted.iter().find(|w| w.connection_id == s.connection_id)?,
            ))
        })
        .collect()
}

/// After the proofs of matching connections: one counts as verified only
/// when every proof of it passed, and one a proof failed for is unreachable
/// (its configuration matched, so every difference is about traffic).
pub(crate) fn keep_whole_proofs(seen: &mut [Seen], proved: &[usize]) {
    for &n in proved {
        if let Some(s) = seen.get_mut(n)
            && !s.differences.is_empty()
        {
            s.verified.clear();
            s.unreachable = true;
        }
    }
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
    /// The item's label and name, as the plan shows them.
    pub label: String,
    pub name: String,
    pub provider_id: Option<String>,
    /// What the connection's later items need from this one.
    pub handoff: Handoff,
}

impl Step {
    pub fn new(action: &'static str, item: &Item, provider_id: Option<String>) -> Self {
        Step::named(action, &item.label, &item.name, provider_id)
    }

    /// A step about something found in the provider rather than in a plan.
    pub fn named(
        action: &'static str,
        label: &str,
        name: &str,
        provider_id: Option<String>,
    ) -> Self {
        Step {
            action,
            label: label.to_owned(),
            name: name.to_owned(),
            provider_id,
            handoff: Handoff::default(),
        }
    }

    /// How the connection's steps name it: "VPC peering a--b in cloud".
    pub fn resource(&self, account: &str) -> String {
        format!("{} {} in {account}", self.label, self.name)
    }
}

/// What one provider hands to the items after it in the same run: a cloud
/// VPN's tunnels (outside address and pre-shared key), which the on-prem end
/// needs. Read from the provider each run and kept only in memory (never
/// recorded, logged or shown: a tunnel's `Debug` hides its key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handoff {
    pub tunnels: Vec<Tunnel>,
}

impl Handoff {
    /// Gives `item` what earlier items handed over.
    pub fn give_to(&self, item: &mut Item) {
        if let Build::IpsecTunnel { tunnels, .. } = &mut item.build {
            tunnels.extend(self.tunnels.iter().cloned());
        }
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
    /// The team a network's resource says owns it (its own tag `switchboard:team`),
    /// read through the provider: evidence for registering it. An error when
    /// the resource does not exist or cannot be asked.
    async fn team_tag(&self, _region: &str, _external_id: &str) -> Result<TeamTag, ProviderError> {
        Ok(TeamTag::Unsupported)
    }
}

/// The tag a resource carries to say which team owns it.
pub const TEAM_TAG: &str = "switchboard:team";

/// What a resource's own tags say of its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeamTag {
    /// This kind of provider has no tags to read.
    Unsupported,
    /// The resource exists and carries no team tag.
    Missing,
    /// The resource names this team.
    Names(String),
}

/// One provider resource a network stands for, written one way whatever the
/// spelling (`VPC-0A` and `vpc-0a`; `ssh://root@gw1` and `ssh://admin@gw1:22`),
/// so that no two networks can claim it; also how an account's
/// `owner.<resource>` setting names it. An error says what form is expected.
pub fn resource_key(kind: &str, external_id: &str) -> Result<String, String> {
    let id = external_id.trim();
    match kind {
        "aws" => {
            let id = id.to_ascii_lowercase();
            let ok = id
                .strip_prefix("vpc-")
                .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()));
            if ok {
                Ok(id)
            } else {
                Err("must be a VPC id such as vpc-0a1b2c3d".into())
            }
        }
        "linux" => linux::resource_key(id),
        _ if id.is_empty() || id.chars().any(char::is_whitespace) => {
            Err("must be an identifier without spaces".into())
        }
        _ => Ok(id.to_owned()),
    }
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
            endpoint: None,
            capabilities: capabilities(kind).to_vec(),
        }
    }

    #[test]
    fn a_handed_over_key_is_never_printed() {
        let mut item = Item {
            label: "IPsec tunnel".into(),
            name: "dc--pay/dc".into(),
            detail: String::new(),
            build: Build::IpsecTunnel {
                network: Default::default(),
                peer: Default::default(),
                prefixes: Vec::new(),
                peer_prefixes: Vec::new(),
                tunnels: Vec::new(),
            },
        };
        let handoff = Handoff {
            tunnels: vec![Tunnel {
                address: "52.2.144.13".into(),
                psk: "s3cret-key".into(),
            }],
        };
        handoff.give_to(&mut item);
        let step = Step::new("created", &item, None);
        let printed = format!("{item:?} {step:?} {handoff:?}");
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
