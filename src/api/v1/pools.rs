//! The address plan over HTTP: pools (a top-level pool is an address space),
//! allocations, and what is still free.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::idempotency::Key;
use super::page::{self, PageQuery};
use crate::domain::page::page_of;
use crate::error::Error;
use crate::services::{self, Caller, Context, address_plan};
use crate::store::pools::{Allocation, Pool};

/// A pool of the address plan. Top-level pools (`parent_id` null) are address spaces.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolOut {
    pub id: Uuid,
    pub name: String,
    #[schema(example = "10.0.0.0/8")]
    pub cidr: String,
    pub parent_id: Option<Uuid>,
    pub space_id: Uuid,
    #[schema(value_type = Object, example = json!({"region": "eu-west"}))]
    pub labels: serde_json::Value,
    pub default_prefix_length: i32,
    pub created_at: DateTime<Utc>,
}

impl From<Pool> for PoolOut {
    fn from(p: Pool) -> Self {
        Self {
            id: p.id,
            name: p.name,
            cidr: p.cidr.to_string(),
            parent_id: p.parent_id,
            space_id: p.space_id,
            labels: p.labels,
            default_prefix_length: p.default_prefix_length,
            created_at: p.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPoolIn {
    #[schema(example = "eu-west")]
    pub name: String,
    #[schema(example = "10.16.0.0/12")]
    pub cidr: String,
    /// The enclosing pool; null (or absent) for a new address space.
    pub parent_id: Option<Uuid>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub labels: serde_json::Value,
    /// The size handed out when an allocation names none (default /24, or /64 for IPv6).
    #[schema(minimum = 0, maximum = 128)]
    pub default_prefix_length: Option<i64>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// A prefix taken from a pool.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllocationOut {
    pub id: Uuid,
    #[schema(example = "10.16.4.0/24")]
    pub cidr: String,
    pub pool_id: Uuid,
    /// Set for a reservation: it lapses at this time unless made lasting.
    pub reserved_until: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub description: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The network holding this prefix, if any.
    pub network_id: Option<Uuid>,
}

impl From<Allocation> for AllocationOut {
    fn from(a: Allocation) -> Self {
        Self {
            id: a.id,
            cidr: a.cidr.to_string(),
            pool_id: a.pool_id,
            reserved_until: a.reserved_until,
            idempotency_key: a.idempotency_key,
            description: a.description,
            created_by: a.created_by,
            created_at: a.created_at,
            network_id: a.network_id,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAllocationIn {
    /// The size of the block, e.g. 24 for a /24; the pool's default when absent.
    #[schema(example = 24)]
    #[schema(minimum = 0, maximum = 128)]
    pub prefix_length: Option<i64>,
    /// The same key again returns the same allocation instead of a new one.
    pub idempotency_key: Option<String>,
    /// Seconds to hold the block as a reservation that lapses by itself.
    #[schema(minimum = 1, maximum = 604800)]
    pub reservation_ttl: Option<i64>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

/// A pool with its contents and free space.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolDetailOut {
    #[serde(flatten)]
    #[schema(inline)]
    pub pool: PoolOut,
    pub children: Vec<PoolOut>,
    pub allocations: Vec<AllocationOut>,
    /// The free space as the fewest CIDR blocks.
    pub free: Vec<String>,
    /// Addresses in the pool, and how many are in child pools or allocated (as text: IPv6 counts exceed JSON numbers).
    pub size: String,
    pub used: String,
    /// How many addresses are allocated in the pool, its child pools' allocations
    /// included but not the child pools themselves (as text).
    pub allocated: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AvailableOut {
    pub pool_id: Uuid,
    pub prefix_length: i64,
    /// How many more blocks of this size fit (text: IPv6 counts exceed JSON numbers).
    #[schema(example = "243")]
    pub count: String,
    /// The block the next allocation of this size would get.
    pub next: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailableQuery {
    /// The block size asked about, e.g. 24.
    #[param(minimum = 0, maximum = 128)]
    prefix_length: i64,
}

fn pool_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that pool".into()))
}

/// All pools, by address space and then by address, a page at a time.
#[utoipa::path(operation_id = "list_pools", get, path = "/api/v1/pools", tag = "address plan", params(PageQuery), responses((status = 200, body = [PoolOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let pools = services::address_plan::list_pools(&ctx, &caller).await?;
    let found = page_of(pools, &page.page()?, |p| {
        (p.space_id, sortable(&p.cidr), p.id)
    });
    Ok(page::respond(&req, found.map(PoolOut::from)))
}

/// A prefix as text that sorts like the prefix: IPv4 first, then by address
/// and length.
fn sortable(net: &ipnet::IpNet) -> String {
    let address = match net.network() {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    };
    let family = u8::from(matches!(net, ipnet::IpNet::V6(_)));
    format!("{family}{address:032x}{:03}", net.prefix_len())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AllocationFilter {
    /// Only allocations taken from this pool (its id; not from its children).
    #[param(value_type = Option<Uuid>)]
    pool: Option<String>,
    /// Only allocations held by this team's networks (its slug).
    team: Option<String>,
}

/// Allocations, by address space and prefix, a page at a time.
#[utoipa::path(operation_id = "list_allocations", get, path = "/api/v1/allocations", tag = "address plan", params(AllocationFilter, PageQuery),
    responses((status = 200, body = [AllocationOut])))]
pub(super) async fn allocations(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    filter: web::Query<AllocationFilter>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    page::not_blank(&[("pool", &filter.pool)])?;
    let found = address_plan::list_allocations(
        &ctx,
        &caller,
        filter.pool.as_deref(),
        filter.team.as_deref(),
        &page.page()?,
    )
    .await?;
    Ok(page::respond(&req, found.map(AllocationOut::from)))
}

/// Create an address space (no parent) or a pool inside another (admins).
#[utoipa::path(operation_id = "create_pool", post, path = "/api/v1/pools", tag = "address plan", request_body = NewPoolIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Any 1 to 255 visible ASCII characters, new for each new request: a retry with the same key and request within 24 hours answers with what the first made instead of making another")), 
    responses((status = 201, body = PoolOut), (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    key: Key,
    body: web::Json<NewPoolIn>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let pool = address_plan::create_pool(
        &ctx,
        &caller,
        address_plan::PoolRequest {
            name: body.name,
            cidr: body.cidr,
            parent_id: body.parent_id,
            labels: body.labels,
            default_prefix_length: body.default_prefix_length,
        },
        key.get(),
    )
    .await?;
    Ok(HttpResponse::Created().json(PoolOut::from(pool)))
}

/// One pool: child pools, allocations and free blocks.
#[utoipa::path(operation_id = "get_pool", get, path = "/api/v1/pools/{id}", tag = "address plan", params(("id" = Uuid, Path)),
    responses((status = 200, body = PoolDetailOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn get(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<PoolDetailOut>, Error> {
    let d = address_plan::pool_detail(&ctx, &caller, pool_id(&id)?).await?;
    let size = crate::ipam::size(&d.pool.cidr);
    Ok(web::Json(PoolDetailOut {
        pool: d.pool.into(),
        children: d.children.into_iter().map(PoolOut::from).collect(),
        allocations: d.allocations.into_iter().map(AllocationOut::from).collect(),
        free: d.free.iter().map(ToString::to_string).collect(),
        size: size.to_string(),
        used: d.used.to_string(),
        allocated: d.allocated.to_string(),
    }))
}

/// How many blocks of a size are left, and which comes next.
#[utoipa::path(get, path = "/api/v1/pools/{id}/available", tag = "address plan", params(("id" = Uuid, Path), AvailableQuery),
    responses((status = 200, body = AvailableOut), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn available(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<AvailableQuery>,
) -> Result<web::Json<AvailableOut>, Error> {
    let id = pool_id(&id)?;
    let (count, next) = address_plan::available(&ctx, &caller, id, query.prefix_length).await?;
    Ok(web::Json(AvailableOut {
        pool_id: id,
        prefix_length: query.prefix_length,
        count: count.to_string(),
        next: next.map(|n| n.to_string()),
    }))
}

/// Take the lowest free block of a size from a pool.
#[utoipa::path(post, path = "/api/v1/pools/{id}/allocations", tag = "address plan", request_body = NewAllocationIn,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "As `idempotency_key` in the body, which wins when both are given: the same key again answers 200 with the allocation it made")),
    responses((status = 201, description = "allocated now", body = AllocationOut),
              (status = 200, description = "the idempotency key was used before: that allocation", body = AllocationOut),
              (status = 409, description = "the pool has no block of that size left", body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn allocate(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    key: Key,
    body: web::Json<NewAllocationIn>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let header_key = key.0.map(|k| k.as_str().to_owned());
    let done = address_plan::allocate(
        &ctx,
        &caller,
        pool_id(&id)?,
        address_plan::AllocationRequest {
            prefix_length: body.prefix_length,
            idempotency_key: body.idempotency_key.or(header_key),
            reservation_ttl: body.reservation_ttl,
            description: body.description,
        },
    )
    .await?;
    let out = AllocationOut::from(done.allocation);
    Ok(if done.created {
        HttpResponse::Created().json(out)
    } else {
        HttpResponse::Ok().json(out)
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReleaseQuery {
    /// Release a prefix that a network uses (admins only). Without it such a
    /// prefix is refused with 409: deleting the network releases its prefixes.
    pub force: Option<bool>,
}

/// Give a prefix back to its pool.
#[utoipa::path(delete, path = "/api/v1/allocations/{id}", tag = "address plan", params(("id" = Uuid, Path), ReleaseQuery),
    responses((status = 204), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A network uses the prefix and `force` was not given", body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn release(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<ReleaseQuery>,
) -> Result<HttpResponse, Error> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound("that allocation".into()))?;
    let force = query.into_inner().force.unwrap_or(false);
    address_plan::release(&ctx, &caller, id, force).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaIn {
    /// Addresses the team's networks may hold in this pool (a number, or text for IPv6-sized counts).
    #[schema(value_type = String, example = "4096")]
    pub max_addresses: serde_json::Value,
}

/// Set a team's quota in a pool (admins).
#[utoipa::path(put, path = "/api/v1/pools/{id}/quotas/{team}", tag = "address plan",
    params(("id" = Uuid, Path), ("team" = String, Path, description = "The team's slug")), request_body = QuotaIn,
    responses((status = 204), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn set_quota(
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<QuotaIn>,
) -> Result<HttpResponse, Error> {
    let (id, team) = path.into_inner();
    let max = match &body.max_addresses {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    address_plan::set_quota(&ctx, &caller, pool_id(&id)?, &team, &max).await?;
    Ok(HttpResponse::NoContent().finish())
}
