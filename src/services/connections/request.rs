//! Asking for a connection: the request checked field by field, planned, and
//! saved waiting for the leads of every side.

use super::*;
use crate::services::guardrails;
use crate::services::idempotency::{IdempotencyKey, Once};

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
    // A network whose team is not known to own its resource is no end: else
    // anyone could name another team's VPC and open it with their own consent.
    if network.ownership == "pending" {
        return Err(Error::invalid(
            field,
            format!(
                "the network {} stands for {}, which {} is not yet known to own ({}): prove it and check again on the network's page, or ask an admin to confirm it",
                network.name,
                network.external_id.as_deref().unwrap_or("a resource"),
                network.team_slug,
                network.ownership_evidence
            ),
        ));
    }
    if let Err(why) = network.status().usable() {
        return Err(Error::invalid(
            field,
            format!("the network {} {why}", network.name),
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
            endpoint: network.underlay.map(|u| u.addr().to_string()),
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
/// What a request asks, checked field by field: every field's problem is
/// collected, so the person fixes them all at once.
struct Asking<'c> {
    conn: &'c mut PgConnection,
    errors: Vec<FieldError>,
    /// The teams that must consent.
    sides: Vec<Uuid>,
}

impl Asking<'_> {
    /// The network `field` names as a planner end; its team becomes a side.
    async fn end(&mut self, field: &'static str, id: Option<Uuid>) -> Result<Option<End>> {
        match end_of(self.conn, field, id).await {
            Ok((end, team)) => {
                if !self.sides.contains(&team) {
                    self.sides.push(team);
                }
                Ok(Some(end))
            }
            Err(Error::Invalid(mut e)) => {
                self.errors.append(&mut e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

async fn ask_for(
    conn: &mut PgConnection,
    req: &ConnectionRequest,
) -> Result<(Kind, Ask, Vec<Uuid>)> {
    let Some(kind) = Kind::parse(&req.kind) else {
        return Err(Error::invalid(
            "kind",
            format!("must be one of: {}", Kind::ALL.map(Kind::as_str).join(", ")),
        ));
    };
    let mut asking = Asking {
        conn,
        errors: Vec::new(),
        sides: Vec::new(),
    };
    let errors = &mut asking.errors;
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
    let ask = match kind {
        Kind::NetworkToNetwork => link(&mut asking, req, protocol, ports).await?,
        Kind::FirewallOpening => opening(&mut asking, req, protocol, ports).await?,
        Kind::ServiceExposure => exposure(&mut asking, req).await?,
        Kind::DnsRecord => dns_record(&mut asking, req).await?,
    };
    match ask {
        Some(ask) if asking.errors.is_empty() => Ok((kind, ask, asking.sides)),
        _ => Err(Error::Invalid(asking.errors)),
    }
}

/// Two networks reach each other.
async fn link(
    asking: &mut Asking<'_>,
    req: &ConnectionRequest,
    protocol: Protocol,
    ports: Vec<connection::PortRange>,
) -> Result<Option<Ask>> {
    let a = asking
        .end("source_network_id", req.source_network_id)
        .await?;
    let b = asking
        .end("destination_network_id", req.destination_network_id)
        .await?;
    Ok(match (a, b) {
        (Some(a), Some(b)) if asking.errors.is_empty() => Some(Ask::NetworkToNetwork {
            a,
            b,
            protocol,
            ports,
        }),
        _ => None,
    })
}

/// A network's firewall opened to a source network or addresses.
async fn opening(
    asking: &mut Asking<'_>,
    req: &ConnectionRequest,
    protocol: Protocol,
    ports: Vec<connection::PortRange>,
) -> Result<Option<Ask>> {
    let source = match (
        req.source_network_id,
        req.source_cidr
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty()),
    ) {
        (Some(_), Some(_)) => {
            asking.errors.push(FieldError::new(
                "source_cidr",
                "give a source network or a source CIDR, not both",
            ));
            None
        }
        (None, Some(cidr)) => match ipam::parse_cidr(cidr) {
            Ok(c) => Some(Source::Cidr(c)),
            Err(reason) => {
                asking.errors.push(FieldError::new("source_cidr", reason));
                None
            }
        },
        (id, None) => asking
            .end("source_network_id", id)
            .await?
            .map(|end| Source::Network(Box::new(end))),
    };
    let destination = asking
        .end("destination_network_id", req.destination_network_id)
        .await?;
    Ok(match (source, destination) {
        (Some(source), Some(destination)) if asking.errors.is_empty() => {
            Some(Ask::FirewallOpening {
                source,
                destination,
                protocol,
                ports,
            })
        }
        _ => None,
    })
}

/// A service behind the edge proxy.
async fn exposure(asking: &mut Asking<'_>, req: &ConnectionRequest) -> Result<Option<Ask>> {
    let target = asking
        .end("destination_network_id", req.destination_network_id)
        .await?;
    let address = text("target_address", &req.target_address, &mut asking.errors);
    let address = if address.is_empty() {
        None
    } else {
        address
            .parse::<std::net::IpAddr>()
            .map_err(|_| {
                asking.errors.push(FieldError::new(
                    "target_address",
                    "must be an IP address such as 10.1.2.3",
                ))
            })
            .ok()
    };
    let port = match req.target_port {
        Some(p) if p > 0 => Some(p),
        _ => {
            asking.errors.push(FieldError::new(
                "target_port",
                "must be a port from 1 to 65535",
            ));
            None
        }
    };
    let hostname = text("hostname", &req.hostname, &mut asking.errors).to_ascii_lowercase();
    if !hostname.is_empty() && !hostname_ok(&hostname) {
        asking.errors.push(FieldError::new(
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
        asking.errors.push(FieldError::new(
            "path",
            "must start with / and contain no spaces",
        ));
    }
    let (proxies, dns) = services(asking.conn).await?;
    Ok(match (target, address, port) {
        (Some(target), Some(address), Some(port)) if asking.errors.is_empty() => {
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
    })
}

/// A DNS record owned by a team.
async fn dns_record(asking: &mut Asking<'_>, req: &ConnectionRequest) -> Result<Option<Ask>> {
    let team = text("team", &req.team, &mut asking.errors);
    if !team.is_empty() {
        match store::teams::find_by_slug(&mut *asking.conn, &team).await? {
            Some(t) => asking.sides.push(t.id),
            None => asking.errors.push(FieldError::new(
                "team",
                format!("no team is called {team:?}"),
            )),
        }
    }
    let name = text("name", &req.name, &mut asking.errors).to_ascii_lowercase();
    if !name.is_empty() && !hostname_ok(&name) {
        asking.errors.push(FieldError::new(
            "name",
            "must be a DNS name such as db.example.com",
        ));
    }
    let record_type =
        text("record_type", &req.record_type, &mut asking.errors).to_ascii_uppercase();
    let value = text("value", &req.value, &mut asking.errors);
    match record_type.as_str() {
        "" => {}
        "A" if value.parse::<std::net::Ipv4Addr>().is_err() && !value.is_empty() => {
            asking.errors.push(FieldError::new(
                "value",
                "an A record needs an IPv4 address",
            ));
        }
        "AAAA" if value.parse::<std::net::Ipv6Addr>().is_err() && !value.is_empty() => {
            asking.errors.push(FieldError::new(
                "value",
                "an AAAA record needs an IPv6 address",
            ));
        }
        "CNAME" if !value.is_empty() && !hostname_ok(value.trim_end_matches('.')) => {
            asking
                .errors
                .push(FieldError::new("value", "a CNAME record needs a DNS name"));
        }
        "A" | "AAAA" | "CNAME" => {}
        _ => asking
            .errors
            .push(FieldError::new("record_type", "must be A, AAAA or CNAME")),
    }
    let ttl = req.ttl.unwrap_or(300);
    if !(30..=86_400).contains(&ttl) {
        asking
            .errors
            .push(FieldError::new("ttl", "must be from 30 to 86400 seconds"));
    }
    let (_, dns) = services(asking.conn).await?;
    Ok(asking.errors.is_empty().then_some(Ask::DnsRecord {
        name,
        record_type,
        value,
        ttl,
        dns,
    }))
}

fn plan_of(ask: &Ask) -> Result<Plan> {
    planner::plan(ask).map_err(|r| Error::invalid(r.field, r.reason))
}

/// The plan a stored request gives (what a change of it would build).
pub(super) async fn plan_for(conn: &mut PgConnection, spec: &ConnectionRequest) -> Result<Plan> {
    let (_, ask, _) = ask_for(conn, spec).await?;
    plan_of(&ask)
}

/// The plan the connection's request gives now (networks may have changed),
/// with the verdicts of the guardrails in force now.
pub(in crate::services) async fn replan(conn: &mut PgConnection, c: &Connection) -> Result<Plan> {
    let spec: ConnectionRequest =
        serde_json::from_value(c.spec.clone()).map_err(Error::internal)?;
    let mut plan = plan_for(conn, &spec).await?;
    plan.guardrails = guardrails::judge(conn, &spec, c.expires_at, Some(c.id)).await?;
    Ok(plan)
}

/// The plan a request would get, without saving anything (the form's live preview).
/// Carries approvals across a change of what the plan hash covers
/// (`Plan::HASH_VERSION`): a connection's stored plan is what its leads
/// approved, so its hash is computed again from it, and the approvals and the
/// queued jobs that name the old hash follow. Runs after the migrations;
/// idempotent; a plan that cannot be read keeps its hash (it could not be
/// built either) and is logged.
pub async fn carry_plans_forward(pool: &sqlx::PgPool) -> Result<u64> {
    const BATCH: i64 = 500;
    let mut after = Uuid::nil();
    let mut carried = 0;
    loop {
        let mut tx = pool.begin().await?;
        let rows =
            store::connections::with_hash_not_of(&mut tx, Plan::HASH_VERSION, after, BATCH).await?;
        let Some((last, _, _)) = rows.last() else {
            break;
        };
        after = *last;
        let (mut ids, mut old, mut new) = (Vec::new(), Vec::new(), Vec::new());
        for (id, stored, hash) in rows {
            match serde_json::from_value::<Plan>(stored) {
                Ok(plan) => {
                    ids.push(id);
                    old.push(hash);
                    new.push(plan.hash());
                }
                Err(e) => {
                    tracing::warn!(connection = %id, error = %e, "a stored plan cannot be read: its hash stays")
                }
            }
        }
        store::connections::rename_hashes(&mut tx, &ids, &old, &new).await?;
        tx.commit().await?;
        carried += ids.len() as u64;
    }
    if carried > 0 {
        tracing::info!(
            carried,
            version = Plan::HASH_VERSION,
            "plan hashes carried forward"
        );
    }
    Ok(carried)
}

pub async fn preview(ctx: &Context, caller: &Caller, req: &ConnectionRequest) -> Result<Plan> {
    caller
        .actor
        .require(crate::auth::policy::Action::ViewNetworks)?;
    let mut conn = ctx.pool.acquire().await?;
    let (_, ask, sides) = ask_for(&mut conn, req).await?;
    // Said before submitting: who may ask for this, when this person may not.
    may_request(&mut conn, caller, &sides).await?;
    let mut plan = plan_of(&ask)?;
    plan.guardrails = guardrails::judge(&mut conn, req, None, None).await?;
    guardrails::refused(&plan.guardrails)?;
    Ok(plan)
}

/// The policy's word on asking for a connection between `sides`.
async fn may_request(
    conn: &mut PgConnection,
    caller: &Caller,
    sides: &[Uuid],
) -> Result<Permit<policy::Request>> {
    let named = store::teams::slugs(&mut *conn, sides).await?;
    let named: Vec<(Uuid, &str)> = named.iter().map(|(id, s)| (*id, s.as_str())).collect();
    caller.actor.may_request(&named)
}

#[tracing::instrument(skip_all, fields(kind = %req.kind))]
pub async fn request(
    ctx: &Context,
    caller: &Caller,
    req: ConnectionRequest,
    key: Option<&IdempotencyKey>,
) -> Result<ConnectionView> {
    let once = Once::new(caller, key, "create_connection", &req)?;
    if let Some(id) = once.earlier(ctx).await? {
        return get(ctx, caller, id).await;
    }
    let mut tx = ctx.pool.begin().await?;
    let (kind, ask, sides) = ask_for(&mut tx, &req).await?;
    let permit = may_request(&mut tx, caller, &sides).await?;
    let mut plan = plan_of(&ask)?;
    plan.guardrails = guardrails::judge(&mut tx, &req, None, None).await?;
    guardrails::refused(&plan.guardrails)?;
    // A guardrail may ask one more team to consent (never fewer).
    let mut sides = permit.teams().to_vec();
    for slug in guardrails::approving_teams(&plan.guardrails) {
        if let Some(team) = store::teams::find_by_slug(&mut *tx, &slug).await?
            && !sides.contains(&team.id)
        {
            sides.push(team.id);
        }
    }
    let sides = &sides[..];
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
        sides,
    )
    .await?;
    once.remember(&mut tx, id).await?;
    audit::by(&mut tx, caller, "connection.requested", "connection", &id.to_string(), json!({ "after": { "kind": kind.as_str(), "status": Status::PendingApproval.as_str(), "mechanism": plan.mechanism, "plan_hash": plan.hash() } })).await?;
    let connection = store::connections::find(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::internal("the connection just made"))?;
    let leads = store::connections::leads_of(&mut *tx, sides).await?;
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
