//! Connection requests: ask, plan, consent. Each side's owning team consents
//! through one of its leads; the requester never approves their own request; the
//! plan approved is the plan kept (a changed plan goes back to approval).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::filter::{given, instant};
use super::{Caller, Context, audit, mail};
use crate::auth::policy::{self, ConnectionAction, ConnectionFacts, Permit, SideFacts};
use crate::domain::connection::{self, Event, Kind, Protocol, Status};
use crate::domain::email::EmailAddress;
use crate::domain::jobs::Provision;
use crate::domain::notification::Topic;
use crate::domain::page::{Cursor, Page, Paged};
use crate::error::{Error, FieldError, Result};
use crate::notify::messages::{self, Compose};
use crate::planner::{self, Ask, End, Plan, Service, Source};
use crate::store::{self, audit::AuditEvent, connections::Connection, connections::Side};
use crate::{ipam, providers};

mod change;
mod decide;
mod expiry;
mod notice;
mod overview;
mod renew;
mod request;

pub(in crate::services) use change::change_told;
pub use change::{
    ChangeRequest, ChangeView, Difference, change, changes, changes_waiting, decide_change,
    propose_change,
};
pub use decide::{approve, cancel, reject};
pub use expiry::{expire_due, remind_expiring};
pub(in crate::services) use notice::{Notice, notify};
pub use overview::{EXPIRING_WITHIN_DAYS, MAP_LIMIT, Overview, live, overview};
pub use renew::{decide_renewal, renew, renewal, renewal_page, renewals, renewals_waiting};
pub(in crate::services) use request::replan;
pub use request::{carry_plans_forward, preview, request};

/// What a person asks for, as the form takes it and as it is stored (the API's
/// own type is `api::v1::model::ConnectionRequest`). Which fields matter
/// depends on `kind`; the others are ignored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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
    /// Re-apply the approved plan now (leads, admins; active or drifted).
    pub can_repair: bool,
    /// Choose between automatic repair and a notice (leads, admins).
    pub can_set_repair_mode: bool,
    /// Ask to keep it longer (requester, leads, admins), and decide someone's
    /// renewal (leads of the requester's team, admins).
    pub can_renew: bool,
    pub can_decide_renewal: bool,
    /// Ask for other ports, protocol or reason (requester, leads, admins;
    /// active), and decide a change for one's side (leads).
    pub can_change: bool,
    pub can_decide_change: bool,
    /// While it waits for approval: the traffic it would let through, each
    /// flow with the open connection that already allows it, if any.
    pub reach: Vec<super::reach::Added>,
    /// What provisioning did, step by step.
    pub steps: Vec<store::connections::StepRow>,
}

/// Pending requests waiting for a team this caller leads.
pub async fn approval_queue(ctx: &Context, caller: &Caller) -> Result<Vec<Connection>> {
    Ok(store::connections::awaiting_lead(&ctx.pool, caller.actor.user_id).await?)
}

/// What a list of connections can be narrowed to, as a person or a script
/// typed it; each is checked and refused naming the field.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ConnectionFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    /// A team's slug: connections where it is a side.
    pub team: Option<String>,
    /// A network's id: connections from or to it.
    pub network: Option<String>,
    /// The requester's email address.
    pub requested_by: Option<String>,
    /// RFC 3339 instants: created at or after, and before.
    pub created_after: Option<String>,
    pub created_before: Option<String>,
}

/// Connections this caller may see (theirs, their teams', all for admins),
/// newest first, one page at a time.
pub async fn list(
    ctx: &Context,
    caller: &Caller,
    filter: &ConnectionFilter,
    page: &Page<(DateTime<Utc>, Uuid)>,
) -> Result<Paged<Connection>> {
    let status = given(&filter.status)
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "must be one of: {}",
                        Status::ALL.map(Status::as_str).join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    let kind = given(&filter.kind)
        .map(|s| {
            Kind::parse(s).ok_or_else(|| {
                Error::invalid(
                    "kind",
                    format!("must be one of: {}", Kind::ALL.map(Kind::as_str).join(", ")),
                )
            })
        })
        .transpose()?;
    let network = given(&filter.network)
        .map(|s| Uuid::parse_str(s).map_err(|_| Error::invalid("network", "must be a network id")))
        .transpose()?;
    let query = store::connections::ListQuery {
        user_id: caller.actor.user_id,
        all: caller.actor.is_admin,
        status: status.map(Status::as_str),
        kind: kind.map(Kind::as_str),
        team: given(&filter.team),
        network,
        requested_by: given(&filter.requested_by),
        created_after: instant("created_after", &filter.created_after)?,
        created_before: instant("created_before", &filter.created_before)?,
        after: page.after.as_ref().map(|c| c.0),
        fetch: page.fetch(),
    };
    let rows = store::connections::list(&ctx.pool, &query).await?;
    Ok(Paged::cut(rows, page.limit, |c| {
        Cursor((c.created_at, c.id))
    }))
}

/// A connection its viewer may see: the requester, members of either side, admins.
/// To anyone else it does not exist.
pub async fn get(ctx: &Context, caller: &Caller, id: Uuid) -> Result<ConnectionView> {
    let connection = store::connections::find(&ctx.pool, id)
        .await?
        .ok_or_else(|| Error::NotFound("that connection".into()))?;
    view(ctx, caller, connection).await
}

/// The sides as the policy sees them.
pub(super) fn side_facts(sides: &[Side]) -> Vec<SideFacts> {
    sides
        .iter()
        .map(|s| SideFacts {
            team_id: s.team_id,
            team: s.team_slug.clone(),
            decided: s.decision.is_some(),
            requester_member: s.requester_member,
        })
        .collect()
}

/// The policy's word on `action` for this caller on this connection.
pub(super) fn may(
    caller: &Caller,
    action: ConnectionAction,
    c: &Connection,
    sides: &[Side],
) -> Result<Permit<ConnectionAction>> {
    let status = c.status;
    let sides = side_facts(sides);
    caller.actor.may(
        action,
        &ConnectionFacts {
            requested_by: c.requested_by,
            status,
            sides: &sides,
        },
    )
}

async fn view(ctx: &Context, caller: &Caller, connection: Connection) -> Result<ConnectionView> {
    let sides = store::connections::sides(&ctx.pool, connection.id).await?;
    may(caller, ConnectionAction::See, &connection, &sides)?;
    let (status, kind) = (connection.status, connection.kind);
    let plan: Plan = serde_json::from_value(connection.plan.clone()).map_err(Error::internal)?;
    let offers = |action| may(caller, action, &connection, &sides).is_ok();
    let offered = Offered {
        approve: offers(ConnectionAction::Approve),
        cancel: offers(ConnectionAction::Cancel),
        remove: offers(ConnectionAction::Remove),
        retry: offers(ConnectionAction::Retry),
        repair: offers(ConnectionAction::Repair),
        set_repair_mode: offers(ConnectionAction::SetRepairMode),
        renew: connection.expires_at.is_some()
            && !status.is_final()
            && status != Status::Failed
            && offers(ConnectionAction::Renew),
        decide_renewal: offers(ConnectionAction::DecideRenewal),
        change: offers(ConnectionAction::Change),
        decide_change: offers(ConnectionAction::DecideChange),
    };
    let steps = store::connections::steps(&ctx.pool, connection.id).await?;
    let reach = match (
        status,
        serde_json::from_value::<ConnectionRequest>(connection.spec.clone()),
    ) {
        (Status::PendingApproval, Ok(req)) => {
            super::reach::added(ctx, connection.id, kind, &req).await?
        }
        _ => Vec::new(),
    };
    Ok(ConnectionView {
        connection,
        status,
        kind,
        plan,
        sides,
        can_approve: offered.approve,
        can_cancel: offered.cancel,
        can_remove: offered.remove,
        can_retry: offered.retry,
        can_repair: offered.repair,
        can_set_repair_mode: offered.set_repair_mode,
        can_renew: offered.renew,
        can_decide_renewal: offered.decide_renewal,
        can_change: offered.change,
        can_decide_change: offered.decide_change,
        reach,
        steps,
    })
}

/// What the policy lets this viewer do with a connection now.
struct Offered {
    approve: bool,
    cancel: bool,
    remove: bool,
    retry: bool,
    repair: bool,
    set_repair_mode: bool,
    renew: bool,
    decide_renewal: bool,
    change: bool,
    decide_change: bool,
}

pub async fn events(ctx: &Context, caller: &Caller, id: Uuid) -> Result<Vec<AuditEvent>> {
    get(ctx, caller, id).await?;
    Ok(store::connections::events(&ctx.pool, id).await?)
}

/// Locks the connection and asks the policy whether the caller may do `action`.
pub(super) async fn locked(
    tx: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    action: ConnectionAction,
) -> Result<(Connection, Vec<Side>, Status, Permit<ConnectionAction>)> {
    let c = store::connections::lock(&mut *tx, id)
        .await?
        .ok_or_else(|| Error::NotFound("that connection".into()))?;
    let sides = store::connections::sides(&mut *tx, id).await?;
    let permit = may(caller, action, &c, &sides)?;
    let status = c.status;
    Ok((c, sides, status, permit))
}
