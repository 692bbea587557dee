//! Connection requests: ask, plan, consent. Each side's owning team consents
//! through one of its leads; the requester never approves their own request; the
//! plan approved is the plan kept (a changed plan goes back to approval).

use askama::Template;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Context, audit, mail};
use crate::domain::connection::{self, Event, Kind, Protocol, Status};
use crate::domain::email::{Email, EmailAddress};
use crate::domain::jobs::Provision;
use crate::domain::notification::Topic;
use crate::domain::team::Role;
use crate::error::{Error, FieldError, Result};
use crate::planner::{self, Ask, End, Plan, Service, Source};
use crate::store::{self, audit::AuditEvent, connections::Connection, connections::Side};
use crate::{ipam, providers};

/// What a person asks for, as the form and the API take it. Which fields matter
/// depends on `kind`; the others are ignored.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionRequest {
    /// `network-to-network`, `service-exposure`, `firewall-opening` or `dns-record`.
    pub kind: String,
    /// Why it is needed: approvers read this.
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
    pub target_port: Option<u16>,
    /// service-exposure: the public name, and the path (default `/`).
    pub hostname: Option<String>,
    pub path: Option<String>,
    /// dns-record: the owning team, the name, the type (A, AAAA, CNAME), the value, the TTL.
    pub team: Option<String>,
    pub name: Option<String>,
    pub record_type: Option<String>,
    pub value: Option<String>,
    pub ttl: Option<u32>,
    /// Remove it after this many hours (at most a year).
    pub expires_in_hours: Option<i64>,
}

/// A connection with what its viewer may do with it.
#[derive(Debug)]
pub struct ConnectionView {
    pub connection: Connection,
    pub status: Status,
    pub kind: Kind,
    pub plan: Plan,
    pub sides: Vec<Side>,
    /// Teams whose consent this viewer can give now.
    pub can_approve: bool,
    pub can_cancel: bool,
    /// Remove what it built (requester, leads, admins).
    pub can_remove: bool,
    /// Try a failed one again (leads, admins).
    pub can_retry: bool,
    /// What provisioning did, step by step.
    pub steps: Vec<store::connections::StepRow>,
}

const MAX_EXPIRY_HOURS: i64 = 24 * 366;

fn text(field: &'static str, value: &Option<String>, errors: &mut Vec<FieldError>) -> String {
    let v = value.as_deref().unwrap_or("").trim().to_owned();
    if v.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    }
    v
}

fn hostname_ok(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

/// Loads a network as a planner end, checking it exists (the field names it).
async fn end_of(
    conn: &mut PgConnection,
    field: &'static str,
    id: Option<Uuid>,
) -> Result<(End, Uuid)> {
    let Some(id) = id else {
        return Err(Error::invalid(field, "is required: pick a network"));
    };
    let network = store::networks::find(&mut *conn, id)
        .await?
        .ok_or_else(|| Error::invalid(field, "no network has this id"))?;
    let account = store::provider_accounts::find(&mut *conn, network.provider_account_id)
        .await?
        .ok_or_else(|| Error::internal("a network without its provider account"))?;
    let prefixes = store::pools::for_network(&mut *conn, id)
        .await?
        .into_iter()
        .map(|a| a.cidr)
        .collect::<Vec<_>>();
    if prefixes.is_empty() {
        return Err(Error::invalid(
            field,
            format!("the network {} has no prefix yet", network.name),
        ));
    }
    if !providers::holds_networks(&account.kind) {
        return Err(Error::invalid(
            field,
            format!(
                "{} is in a {} account, which does not hold networks",
                network.name, account.kind
            ),
        ));
    }
    let setting = |key: String| {
        account
            .settings
            .get(&key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok((
        End {
            network: network.name.clone(),
            team: network.team_slug.clone(),
            provider_kind: account.kind.clone(),
            account: account.name.clone(),
            region: network.region.clone(),
            prefixes,
            external_id: network.external_id.clone(),
            transit_gateway: setting(format!("transit_gateway.{}", network.region)),
            capabilities: providers::capabilities(&account.kind).to_vec(),
        },
        network.team_id,
    ))
}

/// Proxy accounts (with the regions they serve) and DNS accounts (with their zone).
async fn services(conn: &mut PgConnection) -> Result<(Vec<(Service, Vec<String>)>, Vec<Service>)> {
    let accounts = store::provider_accounts::list(&mut *conn).await?;
    let detail = |a: &store::provider_accounts::ProviderAccount, key: &str| {
        a.settings
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let proxies = accounts
        .iter()
        .filter(|a| a.kind == "proxy")
        .map(|a| {
            (
                Service {
                    account: a.name.clone(),
                    detail: detail(a, "address").unwrap_or_else(|| a.name.clone()),
                    source: detail(a, "source_cidr"),
                },
                a.regions.clone(),
            )
        })
        .collect();
    let dns = accounts
        .iter()
        .filter(|a| a.kind == "dns")
        .filter_map(|a| {
            Some(Service {
                account: a.name.clone(),
                detail: detail(a, "zone")?,
                source: None,
            })
        })
        .collect();
    Ok((proxies, dns))
}

/// Validates the request and turns it into the planner's question, with the teams
/// that must consent. Every field problem is reported at once.
async fn ask_for(
    conn: &mut PgConnection,
    req: &ConnectionRequest,
) -> Result<(Kind, Ask, Vec<Uuid>)> {
    let mut errors = Vec::new();
    let Some(kind) = Kind::parse(&req.kind) else {
        return Err(Error::invalid(
            "kind",
            format!("must be one of: {}", Kind::ALL.map(Kind::as_str).join(", ")),
        ));
    };
    if req.reason.trim().is_empty() {
        errors.push(FieldError::new(
            "reason",
            "is required: say why this is needed, approvers read it",
        ));
    } else if req.reason.chars().count() > 2000 {
        errors.push(FieldError::new("reason", "must be at most 2000 characters"));
    }
    if let Some(h) = req.expires_in_hours
        && !(1..=MAX_EXPIRY_HOURS).contains(&h)
    {
        errors.push(FieldError::new(
            "expires_in_hours",
            format!("must be from 1 to {MAX_EXPIRY_HOURS} hours"),
        ));
    }
    let protocol = Protocol::parse(req.protocol.as_deref().unwrap_or(""))
        .map_err(|reason| errors.push(FieldError::new("protocol", reason)))
        .unwrap_or(Protocol::Any);
    let ports = connection::parse_ports(req.ports.as_deref().unwrap_or(""))
        .map_err(|reason| errors.push(FieldError::new("ports", reason)))
        .unwrap_or_default();
    let mut sides = Vec::new();
    let mut end = async |field: &'static str,
                         id: Option<Uuid>,
                         errors: &mut Vec<FieldError>,
                         sides: &mut Vec<Uuid>| {
        match end_of(conn, field, id).await {
            Ok((end, team)) => {
                if !sides.contains(&team) {
                    sides.push(team);
                }
                Ok(Some(end))
            }
            Err(Error::Invalid(mut e)) => {
                errors.append(&mut e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    };
    let ask = match kind {
        Kind::NetworkToNetwork => {
            let a = end(
                "source_network_id",
                req.source_network_id,
                &mut errors,
                &mut sides,
            )
            .await?;
            let b = end(
                "destination_network_id",
                req.destination_network_id,
                &mut errors,
                &mut sides,
            )
            .await?;
            match (a, b) {
                (Some(a), Some(b)) if errors.is_empty() => Some(Ask::NetworkToNetwork {
                    a,
                    b,
                    protocol,
                    ports,
                }),
                _ => None,
            }
        }
        Kind::FirewallOpening => {
            let source = match (
                req.source_network_id,
                req.source_cidr
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty()),
            ) {
                (Some(_), Some(_)) => {
                    errors.push(FieldError::new(
                        "source_cidr",
                        "give a source network or a source CIDR, not both",
                    ));
                    None
                }
                (None, Some(cidr)) => match ipam::parse_cidr(cidr) {
                    Ok(c) => Some(Source::Cidr(c)),
                    Err(reason) => {
                        errors.push(FieldError::new("source_cidr", reason));
                        None
                    }
                },
                (id, None) => end("source_network_id", id, &mut errors, &mut sides)
                    .await?
                    .map(Source::Network),
            };
            let destination = end(
                "destination_network_id",
                req.destination_network_id,
                &mut errors,
                &mut sides,
            )
            .await?;
            match (source, destination) {
                (Some(source), Some(destination)) if errors.is_empty() => {
                    Some(Ask::FirewallOpening {
                        source,
                        destination,
                        protocol,
                        ports,
                    })
                }
                _ => None,
            }
        }
        Kind::ServiceExposure => {
            let target = end(
                "destination_network_id",
                req.destination_network_id,
                &mut errors,
                &mut sides,
            )
            .await?;
            let address = text("target_address", &req.target_address, &mut errors);
            let address = if address.is_empty() {
                None
            } else {
                address
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| {
                        errors.push(FieldError::new(
                            "target_address",
                            "must be an IP address such as 10.1.2.3",
                        ))
                    })
                    .ok()
            };
            let port = match req.target_port {
                Some(p) if p > 0 => Some(p),
                _ => {
                    errors.push(FieldError::new(
                        "target_port",
                        "must be a port from 1 to 65535",
                    ));
                    None
                }
            };
            let hostname = text("hostname", &req.hostname, &mut errors).to_ascii_lowercase();
            if !hostname.is_empty() && !hostname_ok(&hostname) {
                errors.push(FieldError::new(
                    "hostname",
                    "must be a DNS name such as api.example.com",
                ));
            }
            let path = req
                .path
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .unwrap_or("/")
                .to_owned();
            if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                errors.push(FieldError::new(
                    "path",
                    "must start with / and contain no spaces",
                ));
            }
            let (proxies, dns) = services(conn).await?;
            match (target, address, port) {
                (Some(target), Some(address), Some(port)) if errors.is_empty() => {
                    Some(Ask::ServiceExposure {
                        target,
                        address,
                        port,
                        hostname,
                        path,
                        proxies,
                        dns,
                    })
                }
                _ => None,
            }
        }
        Kind::DnsRecord => {
            let team = text("team", &req.team, &mut errors);
            if !team.is_empty() {
                match store::teams::find_by_slug(&mut *conn, &team).await? {
                    Some(t) => sides.push(t.id),
                    None => errors.push(FieldError::new(
                        "team",
                        format!("no team is called {team:?}"),
                    )),
                }
            }
            let name = text("name", &req.name, &mut errors).to_ascii_lowercase();
            if !name.is_empty() && !hostname_ok(&name) {
                errors.push(FieldError::new(
                    "name",
                    "must be a DNS name such as db.example.com",
                ));
            }
            let record_type =
                text("record_type", &req.record_type, &mut errors).to_ascii_uppercase();
            let value = text("value", &req.value, &mut errors);
            match record_type.as_str() {
                "" => {}
                "A" if value.parse::<std::net::Ipv4Addr>().is_err() && !value.is_empty() => {
                    errors.push(FieldError::new(
                        "value",
                        "an A record needs an IPv4 address",
                    ));
                }
                "AAAA" if value.parse::<std::net::Ipv6Addr>().is_err() && !value.is_empty() => {
                    errors.push(FieldError::new(
                        "value",
                        "an AAAA record needs an IPv6 address",
                    ));
                }
                "CNAME" if !value.is_empty() && !hostname_ok(value.trim_end_matches('.')) => {
                    errors.push(FieldError::new("value", "a CNAME record needs a DNS name"));
                }
                "A" | "AAAA" | "CNAME" => {}
                _ => errors.push(FieldError::new("record_type", "must be A, AAAA or CNAME")),
            }
            let ttl = req.ttl.unwrap_or(300);
            if !(30..=86_400).contains(&ttl) {
                errors.push(FieldError::new("ttl", "must be from 30 to 86400 seconds"));
            }
            let (_, dns) = services(conn).await?;
            errors.is_empty().then_some(Ask::DnsRecord {
                name,
                record_type,
                value,
                ttl,
                dns,
            })
        }
    };
    match ask {
        Some(ask) if errors.is_empty() => Ok((kind, ask, sides)),
        _ => Err(Error::Invalid(errors)),
    }
}

fn plan_of(ask: &Ask) -> Result<Plan> {
    planner::plan(ask).map_err(|r| Error::invalid(r.field, r.reason))
}

/// The plan the connection's request gives now (networks may have changed).
pub(super) async fn replan(conn: &mut PgConnection, c: &Connection) -> Result<Plan> {
    let spec: ConnectionRequest =
        serde_json::from_value(c.spec.clone()).map_err(Error::internal)?;
    let (_, ask, _) = ask_for(conn, &spec).await?;
    plan_of(&ask)
}

/// The plan a request would get, without saving anything (the form's live preview).
pub async fn preview(ctx: &Context, caller: &Caller, req: &ConnectionRequest) -> Result<Plan> {
    caller
        .actor
        .require(crate::auth::policy::Action::ViewNetworks)?;
    let mut conn = ctx.pool.acquire().await?;
    let (_, ask, _) = ask_for(&mut conn, req).await?;
    plan_of(&ask)
}

pub async fn request(
    ctx: &Context,
    caller: &Caller,
    req: ConnectionRequest,
) -> Result<ConnectionView> {
    let mut tx = ctx.pool.begin().await?;
    let (kind, ask, sides) = ask_for(&mut tx, &req).await?;
    // People ask for their own teams' connections; admins for anyone's.
    if !caller.actor.is_admin && !sides.iter().any(|t| caller.actor.role_in(*t).is_some()) {
        return Err(Error::Forbidden);
    }
    let plan = plan_of(&ask)?;
    let plan_json = serde_json::to_value(&plan).map_err(Error::internal)?;
    let id = Uuid::new_v4();
    let spec = serde_json::to_value(&req).map_err(Error::internal)?;
    store::connections::insert(
        &mut tx,
        store::connections::NewConnection {
            id,
            kind: kind.as_str(),
            requested_by: caller.actor.user_id,
            reason: req.reason.trim(),
            spec: &spec,
            plan: &plan_json,
            plan_hash: &plan.hash(),
            expires_at: req
                .expires_in_hours
                .map(|h| Utc::now() + Duration::hours(h)),
        },
        &sides,
    )
    .await?;
    audit::by(&mut tx, caller, "connection.requested", "connection", &id.to_string(), json!({ "after": { "kind": kind.as_str(), "status": Status::PendingApproval.as_str(), "mechanism": plan.mechanism, "plan_hash": plan.hash() } })).await?;
    let connection = store::connections::find(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::internal("the connection just made"))?;
    let leads = store::connections::leads_of(&mut *tx, &sides).await?;
    for (lead_id, email, name) in leads {
        if lead_id == caller.actor.user_id {
            continue;
        }
        notify(
            ctx,
            &mut tx,
            &email,
            &name,
            Notice::ApprovalNeeded,
            &connection,
            &plan,
        )
        .await?;
    }
    tx.commit().await?;
    view(ctx, caller, connection).await
}

/// Pending requests waiting for a team this caller leads.
pub async fn approval_queue(ctx: &Context, caller: &Caller) -> Result<Vec<Connection>> {
    Ok(store::connections::awaiting_lead(&ctx.pool, caller.actor.user_id).await?)
}

pub async fn list(ctx: &Context, caller: &Caller, status: Option<&str>) -> Result<Vec<Connection>> {
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            Error::invalid(
                "status",
                format!(
                    "must be one of: {}",
                    Status::ALL.map(Status::as_str).join(", ")
                ),
            )
        })?),
        None => None,
    };
    Ok(store::connections::visible_to(
        &ctx.pool,
        caller.actor.user_id,
        caller.actor.is_admin,
        status.map(Status::as_str),
    )
    .await?)
}

/// A connection its viewer may see: the requester, members of either side, admins.
/// To anyone else it does not exist.
pub async fn get(ctx: &Context, caller: &Caller, id: Uuid) -> Result<ConnectionView> {
    let connection = store::connections::find(&ctx.pool, id)
        .await?
        .ok_or_else(|| Error::NotFound("that connection".into()))?;
    view(ctx, caller, connection).await
}

/// The requester, members of either side and admins see a connection; to
/// anyone else it does not exist.
fn visible_to(caller: &Caller, c: &Connection, sides: &[Side]) -> Result<()> {
    let involved = c.requested_by == caller.actor.user_id
        || sides
            .iter()
            .any(|s| caller.actor.role_in(s.team_id).is_some());
    if involved || caller.actor.is_admin {
        Ok(())
    } else {
        Err(Error::NotFound("that connection".into()))
    }
}

async fn view(ctx: &Context, caller: &Caller, connection: Connection) -> Result<ConnectionView> {
    let sides = store::connections::sides(&ctx.pool, connection.id).await?;
    visible_to(caller, &connection, &sides)?;
    let status =
        Status::parse(&connection.status).ok_or_else(|| Error::internal("unknown status"))?;
    let kind = Kind::parse(&connection.kind).ok_or_else(|| Error::internal("unknown kind"))?;
    let plan: Plan = serde_json::from_value(connection.plan.clone()).map_err(Error::internal)?;
    let can_approve = status == Status::PendingApproval
        && connection.requested_by != caller.actor.user_id
        && sides
            .iter()
            .any(|s| s.decision.is_none() && caller.actor.role_in(s.team_id) == Some(Role::Lead));
    let can_cancel = matches!(status, Status::PendingApproval | Status::Approved)
        && (connection.requested_by == caller.actor.user_id || caller.actor.is_admin);
    let lead = sides
        .iter()
        .any(|s| caller.actor.role_in(s.team_id) == Some(Role::Lead));
    let can_remove = connection::transition(status, Event::Deprovision).is_ok()
        && (lead || connection.requested_by == caller.actor.user_id || caller.actor.is_admin);
    let can_retry = status == Status::Failed && (lead || caller.actor.is_admin);
    let steps = store::connections::steps(&ctx.pool, connection.id).await?;
    Ok(ConnectionView {
        connection,
        status,
        kind,
        plan,
        sides,
        can_approve,
        can_cancel,
        can_remove,
        can_retry,
        steps,
    })
}

pub async fn events(ctx: &Context, caller: &Caller, id: Uuid) -> Result<Vec<AuditEvent>> {
    get(ctx, caller, id).await?;
    Ok(store::connections::events(&ctx.pool, id).await?)
}

/// Locks the connection and checks the caller may see it.
async fn locked(
    tx: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
) -> Result<(Connection, Vec<Side>, Status)> {
    let c = store::connections::lock(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that connection".into()))?;
    let sides = store::connections::sides(&mut *tx, id).await?;
    visible_to(caller, &c, &sides)?;
    let status = Status::parse(&c.status).ok_or_else(|| Error::internal("unknown status"))?;
    Ok((c, sides, status))
}

/// Teams of undecided sides this caller leads; refuses the requester and non-leads.
fn deciding_teams(
    caller: &Caller,
    c: &Connection,
    sides: &[Side],
    verb: &str,
) -> Result<Vec<Uuid>> {
    if c.requested_by == caller.actor.user_id {
        return Err(Error::Conflict(format!(
            "you requested this connection, so you cannot {verb} it: a lead of each team involved must{}",
            if verb == "reject" {
                " (cancel it instead)"
            } else {
                ""
            }
        )));
    }
    let teams: Vec<Uuid> = sides
        .iter()
        .filter(|s| s.decision.is_none() && caller.actor.role_in(s.team_id) == Some(Role::Lead))
        .map(|s| s.team_id)
        .collect();
    if teams.is_empty() {
        return Err(Error::Forbidden);
    }
    Ok(teams)
}

fn refused(r: connection::Refused) -> Error {
    Error::Conflict(r.0)
}

/// A lead consents for their team's side. `seen_plan_hash` is the plan the lead
/// looked at; when the plan differs now, nothing is approved and they are told.
pub async fn approve(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    comment: &str,
    seen_plan_hash: Option<&str>,
) -> Result<ConnectionView> {
    let mut tx = ctx.pool.begin().await?;
    let (c, sides, status) = locked(&mut tx, caller, id).await?;
    let teams = deciding_teams(caller, &c, &sides, "approve")?;
    connection::transition(status, Event::Approve { all_sides: false }).map_err(refused)?;
    if let Some(seen) = seen_plan_hash.map(str::trim).filter(|s| !s.is_empty())
        && seen != c.plan_hash
    {
        return Err(Error::Conflict(
            "the plan changed since you opened this request: review the new plan and approve again"
                .into(),
        ));
    }
    // The plan consented to must be the plan that would be built now.
    let old: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
    let new = replan(&mut tx, &c).await?;
    if new.hash() != c.plan_hash {
        let difference = old.difference(&new);
        store::connections::replace_plan(
            &mut tx,
            id,
            &serde_json::to_value(&new).map_err(Error::internal)?,
            &new.hash(),
        )
        .await?;
        audit::by(&mut tx, caller, "connection.replanned", "connection", &id.to_string(), json!({ "before": { "plan_hash": c.plan_hash }, "after": { "plan_hash": new.hash() }, "difference": difference })).await?;
        tx.commit().await?;
        return Err(Error::Conflict(format!(
            "the networks changed since this was requested, so the plan changed and every approval must be given again: {}",
            difference.join("; ")
        )));
    }
    store::connections::decide(
        &mut *tx,
        id,
        &teams,
        "approved",
        caller.actor.user_id,
        &c.plan_hash,
        comment.trim(),
    )
    .await?;
    let undecided = store::connections::sides(&mut *tx, id)
        .await?
        .iter()
        .filter(|s| s.decision.is_none())
        .count();
    let to = connection::transition(
        status,
        Event::Approve {
            all_sides: undecided == 0,
        },
    )
    .map_err(refused)?;
    if to != status {
        if !store::connections::set_status(&mut *tx, id, status, to).await? {
            return Err(Error::Conflict(
                "the request changed meanwhile: reload it".into(),
            ));
        }
        // Consent is complete: provisioning starts, exactly once, with this commit.
        store::queue::enqueue(
            &mut tx,
            &Provision {
                connection_id: id,
                plan_hash: c.plan_hash.clone(),
            },
        )
        .await?;
    }
    audit::by(&mut tx, caller, "connection.approved", "connection", &id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() }, "teams": sides.iter().filter(|s| teams.contains(&s.team_id)).map(|s| s.team_slug.clone()).collect::<Vec<_>>(), "plan_hash": c.plan_hash, "comment": comment.trim() })).await?;
    if to == Status::Approved {
        notify(
            ctx,
            &mut tx,
            &c.requester_email,
            &c.requester_name,
            Notice::Approved,
            &c,
            &old,
        )
        .await?;
    }
    tx.commit().await?;
    get(ctx, caller, id).await
}

pub async fn reject(
    ctx: &Context,
    caller: &Caller,
    id: Uuid,
    comment: &str,
) -> Result<ConnectionView> {
    let comment = comment.trim();
    if comment.is_empty() {
        return Err(Error::invalid(
            "comment",
            "is required: tell the requester why",
        ));
    }
    let mut tx = ctx.pool.begin().await?;
    let (c, sides, status) = locked(&mut tx, caller, id).await?;
    let teams = deciding_teams(caller, &c, &sides, "reject")?;
    let to = connection::transition(status, Event::Reject).map_err(refused)?;
    store::connections::decide(
        &mut *tx,
        id,
        &teams,
        "rejected",
        caller.actor.user_id,
        &c.plan_hash,
        comment,
    )
    .await?;
    if !store::connections::set_status(&mut *tx, id, status, to).await? {
        return Err(Error::Conflict(
            "the request changed meanwhile: reload it".into(),
        ));
    }
    audit::by(&mut tx, caller, "connection.rejected", "connection", &id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() }, "comment": comment })).await?;
    let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
    notify(
        ctx,
        &mut tx,
        &c.requester_email,
        &c.requester_name,
        Notice::Rejected(comment.to_owned()),
        &c,
        &plan,
    )
    .await?;
    tx.commit().await?;
    get(ctx, caller, id).await
}

/// The requester (or an admin) withdraws a request not yet being built.
pub async fn cancel(ctx: &Context, caller: &Caller, id: Uuid) -> Result<ConnectionView> {
    let mut tx = ctx.pool.begin().await?;
    let (c, _, status) = locked(&mut tx, caller, id).await?;
    if c.requested_by != caller.actor.user_id && !caller.actor.is_admin {
        return Err(Error::Forbidden);
    }
    let to = connection::transition(status, Event::Cancel).map_err(refused)?;
    if !store::connections::set_status(&mut *tx, id, status, to).await? {
        return Err(Error::Conflict(
            "the request changed meanwhile: reload it".into(),
        ));
    }
    audit::by(
        &mut tx,
        caller,
        "connection.cancelled",
        "connection",
        &id.to_string(),
        json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() } }),
    )
    .await?;
    tx.commit().await?;
    get(ctx, caller, id).await
}

/// Connections whose time ran out: those not built yet end as `expired` (the
/// requester is told); built ones are removed (the removal email follows).
pub async fn expire_due(ctx: &Context) -> Result<usize> {
    let mut tx = ctx.pool.begin().await?;
    let due = store::connections::lock_expired(&mut tx, 100).await?;
    let mut expired = 0;
    for c in &due {
        let Some(status) = Status::parse(&c.status) else {
            continue;
        };
        // Built ones are removed; the others simply end.
        if let Ok(to) = connection::transition(status, Event::Deprovision) {
            if store::connections::set_status(&mut *tx, c.id, status, to).await? {
                audit::record(&mut tx, Some("switchboard"), None, None, "connection.expired", "connection", &c.id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() } })).await?;
                store::queue::enqueue(
                    &mut tx,
                    &crate::domain::jobs::Deprovision {
                        connection_id: c.id,
                    },
                )
                .await?;
                expired += 1;
            }
            continue;
        }
        let Ok(to) = connection::transition(status, Event::Expire) else {
            continue;
        };
        if store::connections::set_status(&mut *tx, c.id, status, to).await? {
            audit::record(&mut tx, Some("switchboard"), None, None, "connection.expired", "connection", &c.id.to_string(), json!({ "before": { "status": status.as_str() }, "after": { "status": to.as_str() } })).await?;
            let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
            notify(
                ctx,
                &mut tx,
                &c.requester_email,
                &c.requester_name,
                Notice::Expired,
                c,
                &plan,
            )
            .await?;
            expired += 1;
        }
    }
    tx.commit().await?;
    Ok(expired)
}

/// Reminds requesters of connections that expire within the configured window.
pub async fn remind_expiring(ctx: &Context) -> Result<usize> {
    let mut tx = ctx.pool.begin().await?;
    let due =
        store::connections::lock_due_reminders(&mut tx, ctx.settings.expiry_reminder_hours, 100)
            .await?;
    for c in &due {
        let plan: Plan = serde_json::from_value(c.plan.clone()).map_err(Error::internal)?;
        notify(
            ctx,
            &mut tx,
            &c.requester_email,
            &c.requester_name,
            Notice::Expiring,
            c,
            &plan,
        )
        .await?;
        store::connections::mark_reminded(&mut *tx, c.id).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// Why someone gets an email about a connection.
pub(super) enum Notice {
    ApprovalNeeded,
    Approved,
    Rejected(String),
    Expiring,
    Expired,
    Active,
    Failed(String),
    Removed,
}

#[derive(Template)]
#[template(path = "email/connection.txt")]
struct NoticeText<'a> {
    name: &'a str,
    headline: &'a str,
    detail: &'a str,
    c: &'a Connection,
    plan: &'a Plan,
    url: &'a str,
}

#[derive(Template)]
#[template(path = "email/connection.html")]
struct NoticeHtml<'a> {
    name: &'a str,
    headline: &'a str,
    detail: &'a str,
    c: &'a Connection,
    plan: &'a Plan,
    url: &'a str,
}

pub(super) async fn notify(
    ctx: &Context,
    tx: &mut PgConnection,
    to: &str,
    name: &str,
    notice: Notice,
    c: &Connection,
    plan: &Plan,
) -> Result<()> {
    let Ok(to) = EmailAddress::parse(to) else {
        tracing::warn!(connection = %c.id, "not emailing an unusable address");
        return Ok(());
    };
    let topic = match notice {
        Notice::ApprovalNeeded => Topic::Approvals,
        Notice::Approved | Notice::Rejected(_) | Notice::Expiring | Notice::Expired => {
            Topic::Decisions
        }
        Notice::Active | Notice::Failed(_) | Notice::Removed => Topic::Provisioning,
    };
    if !store::notifications::wants_email(&mut *tx, to.as_str(), topic.as_str()).await? {
        return Ok(());
    }
    let (subject, headline, detail) = match &notice {
        Notice::ApprovalNeeded => (
            format!("Approval needed: {}", plan.summary),
            format!(
                "{} asks for a {}. Your team must approve it before anything changes.",
                c.requester_name,
                Kind::parse(&c.kind).map_or("connection", Kind::label)
            ),
            "Open the request to see the exact plan, then approve or reject it.".to_owned(),
        ),
        Notice::Approved => (
            format!("Approved: {}", plan.summary),
            "Every team involved approved your request.".to_owned(),
            "It is being set up now; the request page shows the progress.".to_owned(),
        ),
        Notice::Rejected(comment) => (
            format!("Rejected: {}", plan.summary),
            "Your request was rejected.".to_owned(),
            format!("The lead's comment: {comment}"),
        ),
        Notice::Expiring => (
            format!("Expires soon: {}", plan.summary),
            format!(
                "This connection expires at {} and will then be removed.",
                c.expires_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default()
            ),
            "If it is still needed, request it again before then.".to_owned(),
        ),
        Notice::Active => (
            format!("Active: {}", plan.summary),
            "Everything in the approved plan now exists.".to_owned(),
            "Switchboard keeps checking that it stays as approved.".to_owned(),
        ),
        Notice::Failed(why) => (
            format!("Failed: {}", plan.summary),
            "Setting up this connection failed.".to_owned(),
            format!(
                "What went wrong: {why}. A lead or an admin can try again from the request page."
            ),
        ),
        Notice::Removed => (
            format!("Removed: {}", plan.summary),
            "Everything this connection created has been removed.".to_owned(),
            "Request it again if it is needed again.".to_owned(),
        ),
        Notice::Expired => (
            format!("Expired: {}", plan.summary),
            "Your request expired before it was set up.".to_owned(),
            "Request it again if it is still needed.".to_owned(),
        ),
    };
    let url = ctx.settings.absolute_url(&format!("/connections/{}", c.id));
    let (text, html) = (
        NoticeText {
            name,
            headline: &headline,
            detail: &detail,
            c,
            plan,
            url: &url,
        }
        .render()
        .map_err(Error::internal)?,
        NoticeHtml {
            name,
            headline: &headline,
            detail: &detail,
            c,
            plan,
            url: &url,
        }
        .render()
        .map_err(Error::internal)?,
    );
    mail::queue_email(
        tx,
        &Email {
            id: Uuid::new_v4(),
            to,
            subject,
            text,
            html,
        },
    )
    .await
}
