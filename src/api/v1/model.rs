//! The connection types of v1 as clients see them: what is asked, what a plan
//! builds, kinds, statuses and mechanisms. They belong to v1, not to the
//! planner or the domain: an internal rename changes nothing here, and a new
//! internal value cannot reach v1 without a line below (the conversions match
//! exhaustively). The typed client reads them too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::connection as domain;
use crate::planner;
use crate::services::connections as service;

/// What a person asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Two networks reach each other (optionally only on some ports).
    NetworkToNetwork,
    /// A hostname routed through the edge proxy to a service in a network.
    ServiceExposure,
    /// A source may reach ports of a destination network.
    FirewallOpening,
    /// A DNS name for an address or another name.
    DnsRecord,
}

impl From<domain::Kind> for Kind {
    fn from(k: domain::Kind) -> Self {
        match k {
            domain::Kind::NetworkToNetwork => Kind::NetworkToNetwork,
            domain::Kind::ServiceExposure => Kind::ServiceExposure,
            domain::Kind::FirewallOpening => Kind::FirewallOpening,
            domain::Kind::DnsRecord => Kind::DnsRecord,
        }
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    PendingApproval,
    Approved,
    Provisioning,
    Active,
    Drifted,
    Deprovisioning,
    Deleted,
    Rejected,
    Cancelled,
    Failed,
    Expired,
}

impl From<domain::Status> for Status {
    fn from(s: domain::Status) -> Self {
        use domain::Status as S;
        match s {
            S::PendingApproval => Status::PendingApproval,
            S::Approved => Status::Approved,
            S::Provisioning => Status::Provisioning,
            S::Active => Status::Active,
            S::Drifted => Status::Drifted,
            S::Deprovisioning => Status::Deprovisioning,
            S::Deleted => Status::Deleted,
            S::Rejected => Status::Rejected,
            S::Cancelled => Status::Cancelled,
            S::Failed => Status::Failed,
            S::Expired => Status::Expired,
        }
    }
}

/// A way to make one thing reach another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    TransitGateway,
    VpcPeering,
    InterRegionPeering,
    SiteToSiteVpn,
    Wireguard,
    ProxyRoute,
    SecurityGroupRule,
    NftablesRule,
    DnsRecord,
}

impl From<planner::Mechanism> for Mechanism {
    fn from(m: planner::Mechanism) -> Self {
        use planner::Mechanism as M;
        match m {
            M::TransitGateway => Mechanism::TransitGateway,
            M::VpcPeering => Mechanism::VpcPeering,
            M::InterRegionPeering => Mechanism::InterRegionPeering,
            M::SiteToSiteVpn => Mechanism::SiteToSiteVpn,
            M::Wireguard => Mechanism::Wireguard,
            M::ProxyRoute => Mechanism::ProxyRoute,
            M::SecurityGroupRule => Mechanism::SecurityGroupRule,
            M::NftablesRule => Mechanism::NftablesRule,
            M::DnsRecord => Mechanism::DnsRecord,
        }
    }
}

/// What will be built, exactly: approvers consent to this, and its hash.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub kind: Kind,
    pub mechanism: Mechanism,
    pub summary: String,
    pub explanation: String,
    /// The mechanisms the planner considered and why each was not chosen.
    pub rejected: Vec<Alternative>,
    pub resources: Vec<Resource>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    /// What each guardrail that looks at the request says of it.
    #[serde(default)]
    pub guardrails: Vec<GuardrailVerdict>,
}

/// One guardrail's word on a request.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuardrailVerdict {
    /// The rule's name.
    pub rule: String,
    /// `allow` (it applies and is met), `deny` or `approval` (a lead of
    /// `team` must approve too).
    pub outcome: String,
    pub team: Option<String>,
    pub reason: String,
}

impl From<crate::domain::guardrail::Verdict> for GuardrailVerdict {
    fn from(v: crate::domain::guardrail::Verdict) -> Self {
        use crate::domain::guardrail::Outcome;
        let (outcome, team) = match v.outcome {
            Outcome::Allow => ("allow", None),
            Outcome::Deny => ("deny", None),
            Outcome::Approval(team) => ("approval", Some(team)),
        };
        Self {
            rule: v.rule,
            outcome: outcome.into(),
            team,
            reason: v.reason,
        }
    }
}

impl From<planner::Plan> for Plan {
    fn from(p: planner::Plan) -> Self {
        Self {
            kind: p.kind.into(),
            mechanism: p.mechanism.into(),
            summary: p.summary,
            explanation: p.explanation,
            rejected: p
                .rejected
                .into_iter()
                .map(|a| Alternative {
                    mechanism: a.mechanism.into(),
                    why_not: a.why_not,
                })
                .collect(),
            resources: p.resources.into_iter().map(Resource::from).collect(),
            routes: p
                .routes
                .into_iter()
                .map(|r| Route {
                    account: r.account,
                    network: r.network,
                    destination: r.destination,
                    via: r.via,
                    at: r.at.into(),
                    peer_network_id: r.peer_network_id,
                })
                .collect(),
            rules: p
                .rules
                .into_iter()
                .map(|r| Rule {
                    account: r.account,
                    network: r.network,
                    allow_from: r.allow_from,
                    protocol: r.protocol,
                    ports: r.ports,
                    at: r.at.into(),
                })
                .collect(),
            guardrails: p.guardrails.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alternative {
    pub mechanism: Mechanism,
    pub why_not: String,
}

/// Something the plan creates: `kind` labels it, `params` say what to build.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resource {
    pub account: String,
    pub kind: String,
    pub name: String,
    pub detail: String,
    /// What the provider needs to build it (network ids, regions, the peer…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

impl From<planner::Resource> for Resource {
    fn from(r: planner::Resource) -> Self {
        Resource {
            account: r.account,
            kind: r.kind,
            name: r.name,
            detail: r.detail,
            params: r.params,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Route {
    /// The provider account holding the network.
    pub account: String,
    /// The network whose route tables get the route.
    pub network: String,
    pub destination: String,
    pub via: String,
    #[serde(flatten)]
    pub at: Place,
    /// The network at the other end of the link the route goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_network_id: Option<String>,
}

/// Where a route or rule goes: the network's region and provider id, when known.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Place {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
}

impl From<planner::Place> for Place {
    fn from(p: planner::Place) -> Self {
        Self {
            region: p.region,
            network_id: p.network_id,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    /// The provider account holding the network.
    pub account: String,
    /// The network whose firewall gets the rule.
    pub network: String,
    pub allow_from: String,
    pub protocol: String,
    pub ports: String,
    #[serde(flatten)]
    pub at: Place,
}

/// What a person asks for. Which fields matter depends on `kind`; the others
/// are ignored.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionRequest {
    /// `network-to-network`, `service-exposure`, `firewall-opening` or `dns-record`.
    #[schema(value_type = Kind)]
    pub kind: String,
    /// Why it is needed: approvers read this.
    #[schema(min_length = 1)]
    pub reason: String,
    /// The network traffic comes from (network-to-network, firewall-opening).
    pub source_network_id: Option<Uuid>,
    /// Instead of a network, addresses outside the portal (firewall-opening).
    pub source_cidr: Option<String>,
    /// The other network (network-to-network), the network opened
    /// (firewall-opening) or the network holding the service (service-exposure).
    pub destination_network_id: Option<Uuid>,
    /// `any` (default), `tcp`, `udp` or `icmp`.
    pub protocol: Option<String>,
    /// Ports or ranges, e.g. `443, 8000-8100`; empty means all.
    pub ports: Option<String>,
    /// service-exposure: the service's address inside the network, and its port.
    pub target_address: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub target_port: Option<u16>,
    /// service-exposure: the public name, and the path (default `/`).
    pub hostname: Option<String>,
    pub path: Option<String>,
    /// dns-record: the owning team, the name, the type (A, AAAA, CNAME), the value, the TTL.
    pub team: Option<String>,
    pub name: Option<String>,
    pub record_type: Option<String>,
    pub value: Option<String>,
    #[schema(minimum = 30, maximum = 86400)]
    pub ttl: Option<u32>,
    /// Remove it after this many hours (at most a year).
    #[schema(minimum = 1, maximum = 8784)]
    pub expires_in_hours: Option<i64>,
}

impl From<ConnectionRequest> for service::ConnectionRequest {
    fn from(r: ConnectionRequest) -> Self {
        Self {
            kind: r.kind,
            reason: r.reason,
            source_network_id: r.source_network_id,
            source_cidr: r.source_cidr,
            destination_network_id: r.destination_network_id,
            protocol: r.protocol,
            ports: r.ports,
            target_address: r.target_address,
            target_port: r.target_port,
            hostname: r.hostname,
            path: r.path,
            team: r.team,
            name: r.name,
            record_type: r.record_type,
            value: r.value,
            ttl: r.ttl,
            expires_in_hours: r.expires_in_hours,
        }
    }
}

impl From<service::ConnectionRequest> for ConnectionRequest {
    fn from(r: service::ConnectionRequest) -> Self {
        Self {
            kind: r.kind,
            reason: r.reason,
            source_network_id: r.source_network_id,
            source_cidr: r.source_cidr,
            destination_network_id: r.destination_network_id,
            protocol: r.protocol,
            ports: r.ports,
            target_address: r.target_address,
            target_port: r.target_port,
            hostname: r.hostname,
            path: r.path,
            team: r.team,
            name: r.name,
            record_type: r.record_type,
            value: r.value,
            ttl: r.ttl,
            expires_in_hours: r.expires_in_hours,
        }
    }
}
