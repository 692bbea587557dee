//! Provider accounts and networks over HTTP.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pools::AllocationOut;
use crate::error::Error;
use crate::services::networks::{self, NetworkDetail};
use crate::services::{Caller, Context};
use crate::store::provider_accounts::ProviderAccount;

/// Where networks live: a cloud account, an on-prem site…
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountOut {
    id: Uuid,
    #[schema(example = "aws")]
    kind: String,
    name: String,
    regions: Vec<String>,
    #[schema(value_type = Object)]
    settings: serde_json::Value,
    /// Where the credentials are (`env:NAME` or `file:/path`); never the credentials.
    credentials_ref: Option<String>,
    created_at: DateTime<Utc>,
    /// Why connections in this account cannot be provisioned now, if they cannot.
    problem: Option<String>,
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountIn {
    #[schema(example = "aws")]
    kind: String,
    #[schema(example = "aws-prod")]
    name: String,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    settings: serde_json::Value,
    #[schema(example = "env:AWS_PROD_CREDENTIALS")]
    credentials_ref: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// A team's network and its prefixes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NetworkOut {
    id: Uuid,
    name: String,
    #[schema(example = "payments")]
    team: String,
    provider_account_id: Uuid,
    provider_account: String,
    region: String,
    external_id: Option<String>,
    #[schema(value_type = Object)]
    tags: serde_json::Value,
    prefixes: Vec<AllocationOut>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn network_out(d: NetworkDetail) -> NetworkOut {
    let n = d.network;
    NetworkOut {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNetworkIn {
    #[schema(example = "payments-prod")]
    name: String,
    #[schema(example = "payments")]
    team: String,
    provider_account_id: Option<Uuid>,
    #[schema(example = "eu-west-1")]
    region: String,
    /// With the region, picks the pool labelled `environment=…`.
    environment: Option<String>,
    /// Allocate from this pool rather than the one the labels pick.
    pool_id: Option<Uuid>,
    /// Size of the new prefix; the pool's default when absent.
    prefix_length: Option<i64>,
    /// Register this existing prefix (e.g. an existing VPC's) instead of allocating.
    #[schema(example = "10.20.0.0/16")]
    cidr: Option<String>,
    #[schema(example = "vpc-0abc123")]
    external_id: Option<String>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    tags: serde_json::Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkChangeIn {
    name: Option<String>,
    /// A value sets it; null clears it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    external_id: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    tags: Option<serde_json::Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct NetworkFilter {
    /// Only this team's networks (its slug).
    team: Option<String>,
    /// Only networks in this provider account (its name).
    provider_account: Option<String>,
    region: Option<String>,
}

fn network_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that network".into()))
}

/// Provider accounts.
#[utoipa::path(get, path = "/api/v1/provider-accounts", tag = "networks", responses((status = 200, body = [AccountOut])))]
pub(super) async fn list_accounts(
    ctx: web::Data<Context>,
    caller: Caller,
) -> Result<web::Json<Vec<AccountOut>>, Error> {
    let accounts = networks::list_accounts(&ctx, &caller).await?;
    let problems = networks::account_problems(&ctx).await?;
    Ok(web::Json(
        accounts
            .into_iter()
            .map(|a| AccountOut::new(a, &problems))
            .collect(),
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

/// Networks, filtered.
#[utoipa::path(get, path = "/api/v1/networks", tag = "networks", params(NetworkFilter), responses((status = 200, body = [NetworkOut])))]
pub(super) async fn list(
    ctx: web::Data<Context>,
    caller: Caller,
    filter: web::Query<NetworkFilter>,
) -> Result<web::Json<Vec<NetworkOut>>, Error> {
    let found = networks::list_networks(
        &ctx,
        &caller,
        filter.team.as_deref(),
        filter.provider_account.as_deref(),
        filter.region.as_deref(),
    )
    .await?;
    Ok(web::Json(found.into_iter().map(network_out).collect()))
}

/// Create a network: a new prefix from the plan (by region/environment labels or
/// an explicit pool), or an existing prefix registered (`cidr`).
#[utoipa::path(post, path = "/api/v1/networks", tag = "networks", request_body = NewNetworkIn,
    responses((status = 201, body = NetworkOut), (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    ctx: web::Data<Context>,
    caller: Caller,
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
    )
    .await?;
    Ok(HttpResponse::Created().json(network_out(detail)))
}

/// One network.
#[utoipa::path(get, path = "/api/v1/networks/{id}", tag = "networks", params(("id" = Uuid, Path)),
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

/// Delete a network; its prefixes go back to the plan.
#[utoipa::path(delete, path = "/api/v1/networks/{id}", tag = "networks", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn delete(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    networks::delete_network(&ctx, &caller, network_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
