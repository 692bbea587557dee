//! Who can reach what, through which connection.

use actix_web::web;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::Kind;
use crate::domain::reach::Flow;
use crate::error::Error;
use crate::services::{Caller, Context, reach};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReachQuery {
    /// What is reached: an address, a range (CIDR), or a network's id or name.
    /// Required (422 when missing).
    to: Option<String>,
    /// Only traffic from here (same forms); from anywhere when absent.
    from: Option<String>,
    /// Only traffic to this port (1 to 65535); any port when absent.
    #[param(value_type = Option<u16>, minimum = 1)]
    port: Option<String>,
}

/// Traffic one open connection lets through.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlowOut {
    pub connection_id: Uuid,
    pub kind: Kind,
    /// Where it comes from, in words: a network's name, a range, "anywhere…".
    pub from: String,
    pub from_prefixes: Vec<String>,
    pub to: String,
    pub to_prefixes: Vec<String>,
    /// `any`, `tcp`, `udp` or `icmp`.
    pub protocol: String,
    /// Ports and ranges ("443, 8000-8100"); empty: every port.
    pub ports: String,
}

impl From<Flow> for FlowOut {
    fn from(f: Flow) -> Self {
        let list = |nets: &[ipnet::IpNet]| nets.iter().map(ToString::to_string).collect();
        Self {
            connection_id: f.connection_id,
            kind: f.kind.into(),
            from_prefixes: list(&f.from),
            from: f.from_name,
            to_prefixes: list(&f.to),
            to: f.to_name,
            protocol: f.protocol.to_string(),
            ports: f
                .ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The question as understood, and every flow that answers it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReachOut {
    /// The prefixes asked about (a network's, or the range given).
    pub to: Vec<String>,
    pub from: Option<Vec<String>>,
    pub port: Option<u16>,
    pub flows: Vec<FlowOut>,
}

impl From<reach::Answer> for ReachOut {
    fn from(a: reach::Answer) -> Self {
        let list = |nets: &[ipnet::IpNet]| nets.iter().map(ToString::to_string).collect();
        Self {
            to: list(&a.to),
            from: a.from.as_deref().map(list),
            port: a.port,
            flows: a.flows.into_iter().map(Into::into).collect(),
        }
    }
}

/// Who can reach an address, range or network (on a port), and through which
/// open connection (active, or drifted and being repaired).
#[utoipa::path(get, path = "/api/v1/reach", operation_id = "reach", tag = "connections", params(ReachQuery),
    responses((status = 200, body = ReachOut),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn reach(
    ctx: web::Data<Context>,
    caller: Caller,
    query: web::Query<ReachQuery>,
) -> Result<web::Json<ReachOut>, Error> {
    let q = query.into_inner();
    let to =
        q.to.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid("to", "is required: an address, a range or a network"))?;
    let answer = reach::reach(&ctx, &caller, q.from.as_deref(), to, q.port.as_deref()).await?;
    Ok(web::Json(answer.into()))
}
