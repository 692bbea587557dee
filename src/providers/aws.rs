//! The `aws` provider: VPC peerings (same region, across regions and accounts),
//! transit-gateway attachments, routes in the VPCs' route tables and
//! security-group rules, through the official SDK.
//!
//! Settings: `endpoint_url` (an EC2-compatible endpoint instead of AWS's),
//! `account_id` (the 12-digit id, needed when another account peers with this
//! one), `transit_gateway.<region>` (read by the planner) and
//! `transit_gateway_route_table.<region>` (associate attachments with this
//! route table instead of the gateway's default one).
//!
//! A site-to-site VPN to an on-prem network attaches to the account's transit
//! gateway: a customer gateway at the on-prem network's endpoint (the linux
//! accounts' `endpoint.<namespace>`), a VPN connection with static routes, and
//! the on-prem ranges routed to it in the gateway's route table. AWS makes the
//! two tunnels and their pre-shared keys; they are handed to the on-prem end
//! in memory, read from AWS on each run, and never stored by Switchboard.
//! Credentials: `credentials_ref` `env:PREFIX` reads `PREFIX_ACCESS_KEY_ID`,
//! `PREFIX_SECRET_ACCESS_KEY` and optionally `PREFIX_SESSION_TOKEN`;
//! `file:/path` reads an AWS credentials file (`aws_access_key_id = …`).
//!
//! Everything is looked up by what it is before it is made (the peering of two
//! VPCs, the attachment of a VPC to a gateway, a route's destination and target,
//! a rule's protocol, ports and range), so a rerun finds what an earlier one made,
//! and two connections that need the same thing share it. What is made is tagged
//! (or described) with the connection, for people reading the console. Removal
//! takes away only what Switchboard made (`Removal::made`), never what it found.
//!
//! Here: the account's clients and the `Provider` entry points; `apply` builds
//! each kind of item, `remove` takes it away, `observe` reads a region and says
//! what differs, `permissions` handles security-group rules, `lookups` finds
//! what exists by what it is, `path` follows the approved traffic through
//! what the region says carries it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    Filter, GatewayType, IpPermission, IpRange, ResourceType, RouteState, Tag, TagSpecification,
    TelemetryStatus, TransitGatewayAttachmentState,
    VpcPeeringConnectionStateReasonCode as PeeringState, VpnConnection,
    VpnConnectionOptionsSpecification, VpnState,
};
use ipnet::IpNet;
use uuid::Uuid;

use super::{
    Build, Item, Network, Provider, ProviderError, Removal, Seen, Step, TEAM_TAG, TeamTag, Tunnel,
    Wanted,
};
use crate::domain::connection::parse_ports;
use crate::planner::Mechanism;
use crate::store::provider_accounts::ProviderAccount;

mod apply;
mod lookups;
mod observe;
mod path;
mod permissions;
mod remove;
mod vpc;

use lookups::*;
use observe::*;
use path::*;
use permissions::*;
use vpc::*;

const CONNECTION_TAG: &str = "switchboard:connection";
const ITEM_TAG: &str = "switchboard:item";

/// How to reach one AWS account.
#[derive(Clone)]
struct Site {
    credentials: Credentials,
    endpoint: Option<String>,
    account_id: Option<String>,
    route_tables: HashMap<String, String>,
}

pub struct Aws {
    account: String,
    /// Every aws account, for the other side of a peering; an account that
    /// cannot be reached says why when it is needed.
    sites: HashMap<String, Result<Site, String>>,
    http: SharedHttpClient,
    clients: Mutex<HashMap<(String, String), Client>>,
    /// Where each on-prem namespace is reached, for customer gateways.
    endpoints: HashMap<String, String>,
}

impl Aws {
    pub fn new(account: &ProviderAccount, all: &[ProviderAccount]) -> Result<Self, String> {
        let sites: HashMap<_, _> = all
            .iter()
            .filter(|a| a.kind == "aws")
            .map(|a| (a.name.clone(), site(a)))
            .collect();
        if let Some(Err(why)) = sites.get(&account.name) {
            return Err(why.clone());
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        Ok(Aws {
            account: account.name.clone(),
            sites,
            http,
            clients: Mutex::new(HashMap::new()),
            // A linux account with a bad endpoint says so itself.
            endpoints: super::endpoints(all).unwrap_or_default(),
        })
    }

    fn site(&self, account: &str) -> Result<&Site, ProviderError> {
        match self.sites.get(account) {
            Some(Ok(site)) => Ok(site),
            Some(Err(why)) => Err(ProviderError::Permanent(why.clone())),
            None => Err(ProviderError::Permanent(format!(
                "{account} is not an aws provider account"
            ))),
        }
    }

    /// The EC2 client of an account in a region, made once.
    fn ec2(&self, account: &str, region: &str) -> Result<Client, ProviderError> {
        let key = (account.to_owned(), region.to_owned());
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(c.clone());
        }
        let site = self.site(account)?;
        let mut config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(site.credentials.clone())
            .http_client(self.http.clone());
        if let Some(url) = &site.endpoint {
            config = config.endpoint_url(url);
        }
        let client = Client::from_conf(config.build());
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, client.clone());
        Ok(client)
    }
}

#[async_trait]
impl Provider for Aws {
    fn kind(&self) -> &'static str {
        "aws"
    }

    async fn apply(&self, connection_id: Uuid, item: &Item) -> Result<Step, ProviderError> {
        match &item.build {
            Build::Network { .. } => self.network(connection_id, item).await,
            Build::Peering { .. } => self.peering(connection_id, item).await,
            Build::TransitGatewayAttachment { .. } => self.attachment(connection_id, item).await,
            Build::SiteToSiteVpn { .. } => self.vpn(connection_id, item).await,
            Build::Route { .. } => self.route(item).await,
            Build::FirewallRule { .. } => self.rule(connection_id, item).await,
            _ => Err(ProviderError::Permanent(format!(
                "AWS cannot build the {} {}",
                item.label, item.name
            ))),
        }
    }

    async fn observe(&self, wanted: &[Wanted]) -> Result<Vec<Seen>, ProviderError> {
        // Every VPC the items name, by region: a few filtered reads per region.
        let mut vpcs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for item in wanted.iter().flat_map(|w| &w.items) {
            if let (Ok(region), Ok(vpc)) = (region(item), vpc(item)) {
                vpcs.entry(region).or_default().insert(vpc);
            }
        }
        let mut regions = HashMap::new();
        for (region, vpcs) in vpcs {
            let ec2 = self.ec2(&self.account, region)?;
            let vpcs: Vec<&str> = vpcs.into_iter().collect();
            let mut state = read_region(&ec2, &vpcs).await?;
            self.read_vpns(&ec2, region, wanted, &mut state).await?;
            let built: BTreeSet<&str> = wanted
                .iter()
                .flat_map(|w| &w.items)
                .filter(|i| matches!(i.build, Build::Network { .. }) && i.build.region() == region)
                .filter_map(|i| vpc(i).ok())
                .collect();
            if !built.is_empty() {
                let built: Vec<&str> = built.into_iter().collect();
                read_networks(&ec2, &built, &mut state).await?;
            }
            regions.insert(region, state);
        }
        let mut seen = super::seen_each(wanted, |_, item| {
            region(item)
                .ok()
                .and_then(|region| regions.get(region))
                .map(|state| state.differences(item))
                .unwrap_or_default()
        });
        // Configured as approved is not yet passing: follow the traffic.
        path::prove(wanted, &mut seen, &regions);
        Ok(seen)
    }

    async fn destroy(
        &self,
        connection_id: Uuid,
        removals: &[Removal],
    ) -> Result<Vec<Step>, ProviderError> {
        let mut steps = Vec::new();
        for removal in removals.iter().rev() {
            if let Some(step) = self.remove(connection_id, removal).await? {
                steps.push(step);
            }
        }
        Ok(steps)
    }

    async fn team_tag(&self, region: &str, vpc: &str) -> Result<TeamTag, ProviderError> {
        let ec2 = self.ec2(&self.account, region)?;
        let found = ec2
            .describe_vpcs()
            .filters(filter("vpc-id", [vpc]))
            .send()
            .await
            .map_err(|e| refused(&format!("describe {vpc}"), e))?;
        let Some(described) = found.vpcs().iter().find(|v| v.vpc_id() == Some(vpc)) else {
            return Err(ProviderError::Permanent(format!(
                "there is no VPC {vpc} in {region} of the account {}",
                self.account
            )));
        };
        Ok(described
            .tags()
            .iter()
            .find(|t| t.key() == Some(TEAM_TAG))
            .and_then(|t| t.value())
            .map_or(TeamTag::Missing, |team| {
                TeamTag::Names(team.trim().to_owned())
            }))
    }
}

fn tags(kind: ResourceType, conn: Uuid, item: &Item) -> TagSpecification {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    TagSpecification::builder()
        .resource_type(kind)
        .tags(tag(CONNECTION_TAG, &conn.to_string()))
        .tags(tag(ITEM_TAG, &item.name))
        .tags(tag("Name", &format!("switchboard {}", item.name)))
        .build()
}

fn filter<I, V>(name: &str, values: I) -> Filter
where
    I: IntoIterator<Item = V>,
    V: Into<String>,
{
    values
        .into_iter()
        .fold(Filter::builder().name(name), |f, v| f.values(v))
        .build()
}

/// Why an item cannot be built: it lacks what AWS needs.
fn lacks(item: &Item, what: &str) -> ProviderError {
    ProviderError::Permanent(format!("the {} {} has no {what}", item.label, item.name))
}

/// The VPC of `network`, or how to give it one.
fn vpc_of<'a>(item: &Item, network: &'a Network) -> Result<&'a str, ProviderError> {
    network.id.as_deref().ok_or_else(|| {
        ProviderError::Permanent(format!(
            "{} needs the VPC id of {}: register the network with its vpc-… id",
            item.name, network.name
        ))
    })
}

/// The VPC the item is built in.
fn vpc(item: &Item) -> Result<&str, ProviderError> {
    let network = item.build.network().ok_or_else(|| lacks(item, "network"))?;
    vpc_of(item, network)
}

/// The VPC at the other end: a peering's peer, or the network a route leads to.
fn peer_vpc(item: &Item) -> Result<&str, ProviderError> {
    match &item.build {
        Build::Route {
            peer_network_id, ..
        } => peer_network_id
            .as_deref()
            .ok_or_else(|| lacks(item, "network at its other end")),
        build => vpc_of(item, build.peer().ok_or_else(|| lacks(item, "peer"))?),
    }
}

/// The region the item is built in.
fn region(item: &Item) -> Result<&str, ProviderError> {
    Some(item.build.region())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| lacks(item, "region"))
}

/// The transit gateway an attachment or a VPN is on.
fn gateway(item: &Item) -> Result<&str, ProviderError> {
    match &item.build {
        Build::TransitGatewayAttachment {
            transit_gateway, ..
        }
        | Build::SiteToSiteVpn {
            transit_gateway, ..
        } => Ok(transit_gateway),
        _ => Err(lacks(item, "transit gateway")),
    }
}

/// The on-prem prefixes a VPN routes to.
fn peer_prefixes(item: &Item) -> &[IpNet] {
    match &item.build {
        Build::SiteToSiteVpn { peer_prefixes, .. } => peer_prefixes,
        _ => &[],
    }
}

/// A route's destination and where it goes through.
fn route_of(item: &Item) -> Result<(&str, &str), ProviderError> {
    match &item.build {
        Build::Route {
            destination, via, ..
        } => Ok((destination, via)),
        _ => Err(lacks(item, "destination")),
    }
}

/// An answer that says the thing already exists counts as done.
fn already_ok<T, E>(
    answer: Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>,
    code: &str,
    what: impl FnOnce() -> String,
) -> Result<(), ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(code) => Ok(()),
        Err(e) => Err(refused(&what(), e)),
    }
}

/// AWS's error in plain words: throttling, server errors and unreachable
/// endpoints are worth retrying; anything else AWS refused is permanent.
fn refused<E>(what: &str, e: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(service) => {
            let code = e.code().unwrap_or("an unknown error");
            let message = e.message().unwrap_or("no message");
            let status = service.raw().status().as_u16();
            let transient = status >= 500
                || matches!(
                    code,
                    "RequestLimitExceeded"
                        | "Throttling"
                        | "ThrottlingException"
                        | "InternalError"
                        | "ServiceUnavailable"
                        | "Unavailable"
                        | "IncorrectState"
                );
            let text = format!("AWS refused to {what}: {message} ({code})");
            if transient {
                ProviderError::Transient(text)
            } else {
                ProviderError::Permanent(text)
            }
        }
        SdkError::ConstructionFailure(_) => ProviderError::Permanent(format!(
            "could not ask AWS to {what}: {}",
            DisplayErrorContext(&e)
        )),
        _ => ProviderError::Transient(format!(
            "AWS could not be reached to {what}: {}",
            DisplayErrorContext(&e)
        )),
    }
}

/// How to reach an account, from its settings and its credentials reference.
fn site(account: &ProviderAccount) -> Result<Site, String> {
    let setting = |key: &str| account.setting(key).map(str::to_owned);
    let endpoint = setting("endpoint_url");
    if let Some(url) = &endpoint
        && url::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
    {
        return Err(format!(
            "aws account {}: endpoint_url must be an http(s) URL",
            account.name
        ));
    }
    let route_tables = account
        .settings
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let region = k.strip_prefix("transit_gateway_route_table.")?;
            Some((region.to_owned(), v.as_str()?.to_owned()))
        })
        .collect();
    Ok(Site {
        credentials: credentials(account)?,
        endpoint,
        account_id: setting("account_id"),
        route_tables,
    })
}

fn credentials(account: &ProviderAccount) -> Result<Credentials, String> {
    let name = &account.name;
    let Some(reference) = account.credentials_ref.as_deref() else {
        return Err(format!(
            "aws account {name} has no credentials_ref: set env:PREFIX (reads PREFIX_ACCESS_KEY_ID and PREFIX_SECRET_ACCESS_KEY) or file:/path to an AWS credentials file"
        ));
    };
    let (key, secret, token) = if let Some(prefix) = reference.strip_prefix("env:") {
        let var = |suffix: &str| std::env::var(format!("{prefix}_{suffix}")).ok();
        let missing = |suffix: &str| {
            format!("aws account {name}: the environment variable {prefix}_{suffix} is not set")
        };
        (
            var("ACCESS_KEY_ID").ok_or_else(|| missing("ACCESS_KEY_ID"))?,
            var("SECRET_ACCESS_KEY").ok_or_else(|| missing("SECRET_ACCESS_KEY"))?,
            var("SESSION_TOKEN"),
        )
    } else if let Some(path) = reference.strip_prefix("file:") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("aws account {name}: cannot read {path}: {e}"))?;
        let mut values = HashMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                values.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let mut take = |k: &str| values.remove(k).filter(|v| !v.is_empty());
        (
            take("aws_access_key_id")
                .ok_or_else(|| format!("aws account {name}: {path} has no aws_access_key_id"))?,
            take("aws_secret_access_key").ok_or_else(|| {
                format!("aws account {name}: {path} has no aws_secret_access_key")
            })?,
            take("aws_session_token"),
        )
    } else {
        return Err(format!(
            "aws account {name}: credentials_ref must be env:PREFIX or file:/path"
        ));
    };
    Ok(Credentials::new(key, secret, token, None, "switchboard"))
}

#[cfg(test)]
mod tests;
