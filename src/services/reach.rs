//! Who can reach what, and through which connection: the flows of the open
//! connections (active, or drifted and being repaired), asked about by
//! address, range or network (see `domain::reach`), and what a request would
//! add to them (its reachability delta, shown to approvers).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use sqlx::PgConnection;
use uuid::Uuid;

use super::connections::ConnectionRequest;
use super::{Caller, Context};
use crate::auth::policy::Action;
use crate::domain::connection::{Kind, PortRange, Protocol, parse_ports};
use crate::domain::reach::{Flow, Question, delta, reaching};
use crate::error::{Error, Result};
use crate::store;

mod kept;
pub use kept::Kept;

/// The answer to "who can reach `to` (from `from`) on `port`".
#[derive(Debug, Clone)]
pub struct Answer {
    pub from: Option<Vec<IpNet>>,
    pub to: Vec<IpNet>,
    pub port: Option<u16>,
    pub flows: Vec<Flow>,
}

/// One flow a request would add, and the open connection that already
/// allows it, if any.
#[derive(Debug, Clone)]
pub struct Added {
    pub flow: Flow,
    pub already_by: Option<Uuid>,
}

/// Every network's name and prefixes.
struct Networks(HashMap<Uuid, (String, Vec<IpNet>)>);

impl Networks {
    async fn load(conn: &mut PgConnection) -> Result<Networks> {
        let mut all: HashMap<Uuid, (String, Vec<IpNet>)> = HashMap::new();
        for (id, name, cidr) in store::reach::prefixes(&mut *conn).await? {
            all.entry(id)
                .or_insert_with(|| (name, Vec::new()))
                .1
                .push(cidr);
        }
        Ok(Networks(all))
    }

    fn get(&self, id: Option<Uuid>) -> Option<&(String, Vec<IpNet>)> {
        self.0.get(&id?)
    }
}

/// Answers the question; `from`, `to`: an address, a range, a network's id or name.
pub async fn reach(
    ctx: &Context,
    caller: &Caller,
    from: Option<&str>,
    to: &str,
    port: Option<&str>,
) -> Result<Answer> {
    caller.actor.require(Action::ViewNetworks)?;
    let port = match port.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::invalid("port", "must be a port from 1 to 65535"))?,
        ),
        None => None,
    };
    let model = model(ctx).await?;
    let mut conn = ctx.pool.acquire().await?;
    let to = place(&mut conn, &model.nets, "to", to).await?;
    let from = match from.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => Some(place(&mut conn, &model.nets, "from", f).await?),
        None => None,
    };
    let question = Question {
        from: from.clone(),
        to: to.clone(),
        port,
    };
    let flows = reaching(&model.flows, &question).cloned().collect();
    Ok(Answer {
        from,
        to,
        port,
        flows,
    })
}

/// What the connection's request adds to what the other open connections
/// already allow.
pub(in crate::services) async fn added(
    ctx: &Context,
    id: Uuid,
    kind: Kind,
    req: &ConnectionRequest,
) -> Result<Vec<Added>> {
    let model = model(ctx).await?;
    let adds = flows_of(id, kind, req, &model.nets);
    Ok(already(&adds, &model.flows, id))
}

/// What changing the connection's request from `before` to `after` would
/// let through that it does not now (each with the open connection that
/// already allows it, if any), and what it would no longer let through.
pub(in crate::services) async fn changed(
    ctx: &Context,
    id: Uuid,
    kind: Kind,
    before: &ConnectionRequest,
    after: &ConnectionRequest,
) -> Result<(Vec<Added>, Vec<Flow>)> {
    let model = model(ctx).await?;
    let (gained, lost) = crate::domain::reach::changed(
        &flows_of(id, kind, before, &model.nets),
        &flows_of(id, kind, after, &model.nets),
    );
    Ok((already(&gained, &model.flows, id), lost))
}

/// Each flow of connection `id`, with another open connection that already
/// allows it, if any.
fn already(adds: &[Flow], open: &[Flow], id: Uuid) -> Vec<Added> {
    delta(adds, open, id)
        .into_iter()
        .map(|(flow, by)| Added {
            flow: flow.clone(),
            already_by: by.map(|f| f.connection_id),
        })
        .collect()
}

/// The model of who reaches what, kept by the process between changes.
async fn model(ctx: &Context) -> Result<std::sync::Arc<kept::Model>> {
    ctx.reach.model(&ctx.pool).await
}

async fn open_flows(conn: &mut PgConnection, nets: &Networks) -> Result<Vec<Flow>> {
    Ok(flows_from(
        store::reach::open_requests(&mut *conn).await?,
        nets,
    ))
}

/// The flows of stored requests (id, kind, request).
fn flows_from(rows: Vec<(Uuid, String, serde_json::Value)>, nets: &Networks) -> Vec<Flow> {
    let mut flows = Vec::new();
    for (id, kind, spec) in rows {
        let (Some(kind), Ok(req)) = (
            Kind::parse(&kind),
            serde_json::from_value::<ConnectionRequest>(spec),
        ) else {
            continue;
        };
        flows.extend(flows_of(id, kind, &req, nets));
    }
    flows
}

/// An address, a range, or a network (by id or name) as its prefixes.
async fn place(
    conn: &mut PgConnection,
    nets: &Networks,
    field: &'static str,
    text: &str,
) -> Result<Vec<IpNet>> {
    let text = text.trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(vec![IpNet::from(address)]);
    }
    if let Ok(range) = text.parse::<IpNet>() {
        return Ok(vec![range.trunc()]);
    }
    let id = match Uuid::parse_str(text) {
        Ok(id) => id,
        Err(_) => match store::reach::named(&mut *conn, text).await?[..] {
            [id] => id,
            [] => {
                return Err(Error::invalid(
                    field,
                    format!("{text:?} is no address, range, network id or network name"),
                ));
            }
            ref many => {
                return Err(Error::invalid(
                    field,
                    format!("{} networks are called {text}: give its id", many.len()),
                ));
            }
        },
    };
    match nets.get(Some(id)) {
        Some((_, prefixes)) => Ok(prefixes.clone()),
        None => Err(Error::invalid(
            field,
            "no network with a prefix has this id",
        )),
    }
}

/// The traffic a request lets through: network to network and firewall
/// openings from their source to their destination's prefixes; a service
/// exposure from anywhere (through the edge proxy) to the service; a DNS
/// record none.
fn flows_of(id: Uuid, kind: Kind, req: &ConnectionRequest, nets: &Networks) -> Vec<Flow> {
    let protocol = Protocol::parse(req.protocol.as_deref().unwrap_or("")).unwrap_or(Protocol::Any);
    let ports = parse_ports(req.ports.as_deref().unwrap_or("")).unwrap_or_default();
    let to = nets.get(req.destination_network_id);
    let flow =
        |from_name: String, from: Vec<IpNet>, to_name: String, to: Vec<IpNet>, protocol, ports| {
            Flow {
                connection_id: id,
                kind,
                from_name,
                from,
                to_name,
                to,
                protocol,
                ports,
            }
        };
    match kind {
        Kind::NetworkToNetwork | Kind::FirewallOpening => {
            let Some((to_name, to)) = to else {
                return Vec::new();
            };
            let source = match (
                nets.get(req.source_network_id),
                req.source_cidr
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty()),
            ) {
                (Some((name, prefixes)), _) => Some((name.clone(), prefixes.clone())),
                (None, Some(cidr)) => cidr
                    .parse::<IpNet>()
                    .ok()
                    .map(|c| (cidr.to_owned(), vec![c.trunc()])),
                (None, None) => None,
            };
            source
                .map(|(from_name, from)| {
                    vec![flow(
                        from_name,
                        from,
                        to_name.clone(),
                        to.clone(),
                        protocol,
                        ports,
                    )]
                })
                .unwrap_or_default()
        }
        Kind::ServiceExposure => {
            let (Some(address), Some(port)) = (
                req.target_address
                    .as_deref()
                    .and_then(|a| a.trim().parse::<IpAddr>().ok()),
                req.target_port,
            ) else {
                return Vec::new();
            };
            let anywhere: IpNet = match address {
                IpAddr::V4(_) => "0.0.0.0/0",
                IpAddr::V6(_) => "::/0",
            }
            .parse()
            .unwrap_or_default();
            let to_name = match to {
                Some((name, _)) => format!("{address} in {name}"),
                None => address.to_string(),
            };
            vec![flow(
                format!(
                    "anywhere, through the edge proxy as {}",
                    req.hostname.as_deref().unwrap_or("")
                ),
                vec![anywhere],
                to_name,
                vec![IpNet::from(address)],
                Protocol::Tcp,
                vec![PortRange {
                    from: port,
                    to: port,
                }],
            )]
        }
        Kind::DnsRecord => Vec::new(),
    }
}
