//! Provider accounts and networks over HTTP.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::idempotency::Key;
use super::page::{self, PageQuery};
use super::pools::AllocationOut;
use crate::domain::page::page_of;
use crate::error::Error;
use crate::services::networks::{self, NetworkDetail};
use crate::services::{Caller, Context};
use crate::store::provider_accounts::ProviderAccount;

/// Where networks live: a cloud account, an on-prem site…
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountOut {
    pub id: Uuid,
    #[schema(example = "aws")]
    pub kind: String,
    pub name: String,
    pub regions: Vec<String>,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Where the credentials are (`env:NAME` or `file:/path`); never the credentials.
    pub credentials_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Why connections in this account cannot be provisioned now, if they cannot.
    pub problem: Option<String>,
}

impl AccountOut {
    fn new(a: ProviderAccount, problems: &HashMap<String, String>) -> Self {
        Self {
            problem: problems.get(&a.name).cloned(),
            id: a.id,
            kind: a.kind,
            name: a.name,
            regions: a.regions,
            settings: a.settings,
            credentials_ref: a.credentials_ref,
            created_at: a.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountIn {
    #[schema(example = "aws")]
    pub kind: String,
    #[schema(example = "aws-prod")]
    pub name: String,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    #[schema(example = "env:AWS_PROD_CREDENTIALS")]
    pub credentials_ref: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// A team's network and its prefixes.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkOut {
    pub id: Uuid,
    pub name: String,
    #[schema(example = "payments")]
    pub team: String,
    pub provider_account_id: Uuid,
    pub provider_account: String,
    pub region: String,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub tags: serde_json::Value,
    pub prefixes: Vec<AllocationOut>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether the team is known to own the resource `external_id` names.
    pub ownership: OwnershipOut,
    /// `registered` (recorded; built by someone else), or for networks
    /// Switchboard builds: `awaiting_approval`, `building`, `ready`,
    /// `drifted`, `failed`, `removing`. Only `registered`, `ready` and
    /// `drifted` networks can be connected.
    #[schema(example = "ready")]
    pub status: String,
    /// What Switchboard builds for it; absent for registered networks.
    pub build: Option<NetworkBuildOut>,
}

/// A network Switchboard builds: its plan (approved by its hash), and how
/// the build and the monitor see it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkBuildOut {
    #[schema(
        example = "A network payments-prod for payments in aws-prod (eu-west-1): 10.20.0.0/16 with one /18 subnet in each of eu-west-1a, eu-west-1b, eu-west-1c."
    )]
    pub summary: String,
    /// What a lead approves (`POST /api/v1/networks/{id}/approve`).
    pub plan_hash: String,
    /// What the provider builds: the network's range and its subnets by zone.
    pub resource: crate::api::v1::model::Resource,
    /// Why the build or the removal failed.
    pub failure: Option<String>,
    /// How the built network differs from its plan, as the monitor last saw it.
    pub differences: Vec<String>,
    pub drifted_since: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
}

/// Whether a network's team is known to own its provider resource. Until it is
/// (`pending`), the network cannot be an end of any connection.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OwnershipOut {
    /// `none` (no provider resource), `pending` (waits for proof or an admin),
    /// `proved` (the resource's tag or the account's owner setting names the
    /// team) or `confirmed` (by an admin).
    #[schema(example = "proved")]
    pub state: String,
    /// What decided it, or why it waits.
    #[schema(example = "its tag switchboard:team=payments, read from aws-prod")]
    pub evidence: String,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnershipRefusalIn {
    /// Why the registration is refused: the network's team reads it.
    #[schema(example = "this VPC belongs to ledger", min_length = 1)]
    pub reason: String,
}

pub(super) fn network_out(d: NetworkDetail) -> NetworkOut {
    let (plan, differences) = (d.plan(), d.differences());
    let n = d.network;
    let build = plan.map(|plan| NetworkBuildOut {
        summary: plan.summary,
        plan_hash: n.plan_hash.clone().unwrap_or_default(),
        resource: plan.resource.into(),
        failure: n.failure.clone(),
        differences,
        drifted_since: n.drifted_since,
        approved_at: n.approved_at,
    });
    NetworkOut {
        status: n.status.clone(),
        build,
        ownership: OwnershipOut {
            state: n.ownership,
            evidence: n.ownership_evidence,
            decided_at: n.ownership_decided_at,
        },
        id: n.id,
        name: n.name,
        team: n.team_slug,
        provider_account_id: n.provider_account_id,
        provider_account: n.provider_account_name,
        region: n.region,
        external_id: n.external_id,
        tags: n.tags,
        prefixes: d.prefixes.into_iter().map(AllocationOut::from).collect(),
        created_at: n.created_at,
        updated_at: n.updated_at,
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNetworkIn {
    #[schema(example = "payments-prod")]
    pub name: String,
    #[schema(example = "payments")]
    pub team: String,
    pub provider_account_id: Option<Uuid>,
    #[schema(example = "eu-west-1")]
    pub region: String,
    /// With the region, picks the pool labelled `environment=…`.
    pub environment: Option<String>,
    /// Allocate from this pool rather than the one the labels pick.
    pub pool_id: Option<Uuid>,
    /// Size of the new prefix; the pool's default when absent.
    pub prefix_length: Option<i64>,
    /// Register this existing prefix (e.g. an existing VPC's) instead of allocating.
    #[schema(example = "10.20.0.0/16")]
    pub cidr: Option<String>,
    #[schema(example = "vpc-0abc123")]
    pub external_id: Option<String>,
    /// Text values by name, e.g. {"owner": "payments"}.
    #[serde(default = "empty_object")]
    #[schema(value_type = HashMap<String, String>)]
    pub tags: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkChangeIn {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// A value sets it; null clears it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    /// Text values by name; they replace the network's tags.
    #[schema(value_type = Option<HashMap<String, String>>)]
    pub tags: Option<serde_json::Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NetworkFilter {
    /// Only this team's networks (its slug).
    team: Option<String>,
    /// Only networks in this provider account (its name).
    provider_account: Option<String>,
    region: Option<String>,
    /// Only networks with a prefix holding this address or prefix, e.g. `10.1.2.3`.
    contains: Option<String>,
}

fn network_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that network".into()))
}

/// Provider accounts, by name, a page at a time.
#[utoipa::path(get, path = "/api/v1/provider-accounts", tag = "networks", params(PageQuery), responses((status = 200, body = [AccountOut])))]
pub(super) async fn list_accounts(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let accounts = networks::list_accounts(&ctx, &caller).await?;
    let problems = networks::account_problems(&ctx).await?;
    let found = page_of(accounts, &page.page()?, |a| (a.name.clone(), a.id));
    Ok(page::respond(
        &req,
        found.map(|a| AccountOut::new(a, &problems)),
    ))
}

/// Register a provider account (admins). Credentials are referenced, never stored.
#[utoipa::path(post, path = "/api/v1/provider-accounts", tag = "networks", request_body = NewAccountIn,
    responses((status = 201, body = AccountOut), (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create_account(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<NewAccountIn>,
) -> Result<HttpResponse, Error> {
    let b = body.into_inner();
    let account = networks::create_account(
        &ctx,
        &caller,
        networks::AccountRequest {
            kind: b.kind,
            name: b.name,
            regions: b.regions,
            settings: b.settings,
            credentials_ref: b.credentials_ref,
        },
    )
    .await?;
    let problems = networks::account_problems(&ctx).await?;
    Ok(HttpResponse::Created().json(AccountOut::new(account, &problems)))
}

/// Networks, filtered, by team and name, a page at a time.
#[utoipa::path(operation_id = "list_networks", get, path = "/api/v1/networks", tag = "networks", params(NetworkFilter, PageQuery), responses((status = 200, body = [NetworkOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    filter: web::Query<NetworkFilter>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let f = filter.into_inner();
    let filter = networks::NetworkFilter {
        team: f.team,
        provider_account: f.provider_account,
        region: f.region,
        contains: f.contains,
    };
    let found = networks::page_networks(&ctx, &caller, &filter, &page.page()?).await?;
    Ok(page::respond(&req, found.map(network_out)))
}

/// Create a network: a new prefix from the plan (by region/environment labels or
/// an explicit pool), or an existing prefix registered (`cidr`).
#[utoipa::path(operation_id = "create_network", post, path = "/api/v1/networks", tag = "networks", request_body = NewNetworkIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Any 1 to 255 visible ASCII characters, new for each new request: a retry with the same key and request within 24 hours answers with what the first made instead of making another")), 
    responses((status = 201, body = NetworkOut), (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
    key: Key,
    body: web::Json<NewNetworkIn>,
) -> Result<HttpResponse, Error> {
    let b = body.into_inner();
    let detail = networks::create_network(
        &ctx,
        &caller,
        networks::NetworkRequest {
            name: b.name,
            team: b.team,
            provider_account_id: b.provider_account_id,
            region: b.region,
            environment: b.environment,
            pool_id: b.pool_id,
            prefix_length: b.prefix_length,
            cidr: b.cidr,
            external_id: b.external_id,
            tags: b.tags,
        },
        key.get(),
    )
    .await?;
    Ok(HttpResponse::Created().json(network_out(detail)))
}

/// One network.
#[utoipa::path(operation_id = "get_network", get, path = "/api/v1/networks/{id}", tag = "networks", params(("id" = Uuid, Path)),
    responses((status = 200, body = NetworkOut), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn get(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<NetworkOut>, Error> {
    Ok(web::Json(network_out(
        networks::get_network(&ctx, &caller, network_id(&id)?).await?,
    )))
}

/// Change a network's name, external id or tags (its team's members, admins).
#[utoipa::path(patch, path = "/api/v1/networks/{id}", tag = "networks", params(("id" = Uuid, Path)), request_body = NetworkChangeIn,
    responses((status = 200, body = NetworkOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn update(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<NetworkChangeIn>,
) -> Result<web::Json<NetworkOut>, Error> {
    let b = body.into_inner();
    let detail = networks::update_network(
        &ctx,
        &caller,
        network_id(&id)?,
        networks::NetworkChange {
            name: b.name,
            external_id: b.external_id,
            tags: b.tags,
        },
    )
    .await?;
    Ok(web::Json(network_out(detail)))
}

/// Delete a network; its prefixes go back to the plan. One Switchboard built
/// is first removed from its provider by the workers: 202 with the network
/// `removing`; it disappears once that is done. Refused (409) while
/// connections use it, naming them.
#[utoipa::path(operation_id = "delete_network", delete, path = "/api/v1/networks/{id}", tag = "networks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 202, body = NetworkOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn delete(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    match networks::delete_network(&ctx, &caller, id).await? {
        networks::Deletion::Deleted => Ok(HttpResponse::NoContent().finish()),
        networks::Deletion::Removing => {
            let detail = networks::get_network(&ctx, &caller, id).await?;
            Ok(HttpResponse::Accepted().json(network_out(detail)))
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkApprovalIn {
    /// The plan hash the lead saw (`build.plan_hash`): a changed plan is not approved.
    #[schema(example = "n1:5e1f…")]
    pub plan_hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkRejectionIn {
    /// Why: the person who asked for the network reads it.
    #[schema(
        example = "use the shared network instead",
        min_length = 1,
        max_length = 2000
    )]
    pub reason: String,
}

/// Approve building a network (a lead of its team, or an admin), when its
/// account asks for approval; the workers then build it.
#[utoipa::path(operation_id = "approve_network", post, path = "/api/v1/networks/{id}/approve", tag = "networks", params(("id" = Uuid, Path)),
    request_body = NetworkApprovalIn,
    responses((status = 200, body = NetworkOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn approve(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<NetworkApprovalIn>,
) -> Result<web::Json<NetworkOut>, Error> {
    Ok(web::Json(network_out(
        networks::approve_network(&ctx, &caller, network_id(&id)?, &body.plan_hash).await?,
    )))
}

/// Reject building a network (a lead of its team, or an admin): it is deleted
/// and its range goes back to the address plan.
#[utoipa::path(operation_id = "reject_network", post, path = "/api/v1/networks/{id}/reject", tag = "networks", params(("id" = Uuid, Path)),
    request_body = NetworkRejectionIn,
    responses((status = 204), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<NetworkRejectionIn>,
) -> Result<HttpResponse, Error> {
    networks::reject_network(&ctx, &caller, network_id(&id)?, &body.reason).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What the workers did to build or remove a network, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkStepOut {
    pub at: DateTime<Utc>,
    /// `created`, `found`, `repaired`, `deleted`, `retrying` or `failed`.
    pub action: String,
    pub resource: String,
    pub provider_id: Option<String>,
}

/// The steps of a network's build and removal.
#[utoipa::path(operation_id = "network_steps", get, path = "/api/v1/networks/{id}/steps", tag = "networks", params(("id" = Uuid, Path)),
    responses((status = 200, body = [NetworkStepOut]), (status = 404, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn steps(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Vec<NetworkStepOut>>, Error> {
    let steps = networks::network_steps(&ctx, &caller, network_id(&id)?).await?;
    Ok(web::Json(
        steps
            .into_iter()
            .map(|s| NetworkStepOut {
                at: s.at,
                action: s.action,
                resource: s.resource,
                provider_id: s.provider_id,
            })
            .collect(),
    ))
}

/// Networks whose registration waits for an admin: no proof that their team
/// owns the resource they name (admins).
#[utoipa::path(get, path = "/api/v1/registrations", tag = "networks", params(PageQuery),
    responses((status = 200, body = [NetworkOut]), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn pending(
    ctx: web::Data<Context>,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let found = networks::pending_registrations(&ctx, &caller).await?;
    let found = page_of(found, &page.page()?, |d| {
        (d.network.created_at.timestamp_micros(), d.network.id)
    });
    Ok(page::respond(&req, found.map(network_out)))
}

/// Confirm that the network's team owns the resource it registered (admins).
#[utoipa::path(post, path = "/api/v1/networks/{id}/ownership/confirm", tag = "networks", params(("id" = Uuid, Path)),
    responses((status = 200, body = NetworkOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn confirm_ownership(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<NetworkOut>, Error> {
    Ok(web::Json(network_out(
        networks::confirm_ownership(&ctx, &caller, network_id(&id)?).await?,
    )))
}

/// Refuse a registration (admins): the network no longer names that resource.
#[utoipa::path(post, path = "/api/v1/networks/{id}/ownership/refuse", tag = "networks", params(("id" = Uuid, Path)),
    request_body = OwnershipRefusalIn,
    responses((status = 200, body = NetworkOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn refuse_ownership(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<OwnershipRefusalIn>,
) -> Result<web::Json<NetworkOut>, Error> {
    Ok(web::Json(network_out(
        networks::refuse_ownership(&ctx, &caller, network_id(&id)?, &body.reason).await?,
    )))
}

/// Ask again for proof of ownership (the network's team), e.g. after tagging the VPC.
#[utoipa::path(post, path = "/api/v1/networks/{id}/ownership/check", tag = "networks", params(("id" = Uuid, Path)),
    responses((status = 200, body = NetworkOut), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn check_ownership(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<NetworkOut>, Error> {
    Ok(web::Json(network_out(
        networks::check_ownership(&ctx, &caller, network_id(&id)?).await?,
    )))
}
