//! `/api/v1`: JSON over the same services as the pages. Errors are
//! `application/problem+json` (see `web::errors`). The OpenAPI document at
//! `/api/v1/openapi.json` is generated from these handlers.

mod connections;
mod me;
mod networks;
mod notifications;
pub(super) mod pools;
mod sandbox;
mod teams;
mod tokens;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", version = "1", description = "Self-service network connectivity. Authenticate with a personal API token: `Authorization: Bearer sbp_…`."),
    paths(me::me, teams::list, teams::get, tokens::list, tokens::create, tokens::revoke,
        pools::list, pools::create, pools::get, pools::available, pools::allocate, pools::release, pools::set_quota,
        networks::list_accounts, networks::create_account, networks::list, networks::create, networks::get, networks::update, networks::delete,
        connections::list, connections::create, connections::preview, connections::get, connections::plan, connections::events, connections::approve, connections::reject, connections::cancel, connections::remove, connections::retry,
        connections::drift, connections::repair, connections::repair_mode, connections::status,
        notifications::preferences, notifications::set_preferences, notifications::webhook, notifications::set_webhook, notifications::delete_webhook,
        sandbox::list, sandbox::change, sandbox::delete),
    components(schemas(
        me::Me, me::MyTeam, teams::TeamOut, teams::TeamDetailOut, teams::MemberOut,
        tokens::TokenOut, tokens::NewTokenIn, tokens::NewTokenOut, Problem, FieldProblem,
        pools::PoolOut, pools::NewPoolIn, pools::AllocationOut, pools::NewAllocationIn, pools::PoolDetailOut, pools::AvailableOut, pools::QuotaIn,
        networks::AccountOut, networks::NewAccountIn, networks::NetworkOut, networks::NewNetworkIn, networks::NetworkChangeIn,
        connections::ConnectionOut, connections::SideOut, connections::PlanOut, connections::EventOut, connections::DecisionIn, connections::StepOut,
        crate::services::connections::ConnectionRequest, crate::planner::Plan, crate::planner::Mechanism, crate::planner::Resource, crate::planner::Route, crate::planner::Rule, crate::planner::Alternative,
        crate::domain::connection::Kind, crate::domain::connection::Status,
        sandbox::SandboxResourceOut, sandbox::SandboxChangeIn,
        connections::ObservedOut, connections::DriftOut, connections::RepairModeIn, connections::StatusOut,
        notifications::PreferencesIo, notifications::WebhookIo
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// An error, as RFC 9457 problem details.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    #[schema(example = "about:blank")]
    r#type: String,
    #[schema(example = "Unprocessable Entity")]
    title: String,
    #[schema(example = 422)]
    status: u16,
    #[schema(example = "name: must be 1 to 100 characters")]
    detail: String,
    instance: String,
    /// Quote it when reporting a problem: it is in the server's logs too.
    request_id: String,
    errors: Option<Vec<FieldProblem>>,
}

/// One field that failed validation.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FieldProblem {
    #[schema(example = "name")]
    field: String,
    #[schema(example = "must be 1 to 100 characters")]
    reason: String,
}

pub(super) async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

crate::web::route_table! {
    get "/api/v1/openapi.json" => openapi_document,
    get "/api/v1/me" => me::me,
    get "/api/v1/teams" => teams::list,
    get "/api/v1/teams/{slug}" => teams::get,
    get "/api/v1/tokens" => tokens::list,
    post "/api/v1/tokens" => tokens::create,
    delete "/api/v1/tokens/{id}" => tokens::revoke,
    get "/api/v1/pools" => pools::list,
    post "/api/v1/pools" => pools::create,
    get "/api/v1/pools/{id}" => pools::get,
    get "/api/v1/pools/{id}/available" => pools::available,
    post "/api/v1/pools/{id}/allocations" => pools::allocate,
    delete "/api/v1/allocations/{id}" => pools::release,
    put "/api/v1/pools/{id}/quotas/{team}" => pools::set_quota,
    get "/api/v1/provider-accounts" => networks::list_accounts,
    post "/api/v1/provider-accounts" => networks::create_account,
    get "/api/v1/networks" => networks::list,
    post "/api/v1/networks" => networks::create,
    get "/api/v1/networks/{id}" => networks::get,
    patch "/api/v1/networks/{id}" => networks::update,
    delete "/api/v1/networks/{id}" => networks::delete,
    get "/api/v1/connections" => connections::list,
    post "/api/v1/connections" => connections::create,
    post "/api/v1/connections/plan" => connections::preview,
    get "/api/v1/connections/{id}" => connections::get,
    get "/api/v1/connections/{id}/plan" => connections::plan,
    get "/api/v1/connections/{id}/events" => connections::events,
    post "/api/v1/connections/{id}/approve" => connections::approve,
    post "/api/v1/connections/{id}/reject" => connections::reject,
    post "/api/v1/connections/{id}/cancel" => connections::cancel,
    delete "/api/v1/connections/{id}" => connections::remove,
    post "/api/v1/connections/{id}/retry" => connections::retry,
    get "/api/v1/connections/{id}/drift" => connections::drift,
    post "/api/v1/connections/{id}/repair" => connections::repair,
    put "/api/v1/connections/{id}/repair-mode" => connections::repair_mode,
    get "/api/v1/status" => connections::status,
    get "/api/v1/me/notifications" => notifications::preferences,
    put "/api/v1/me/notifications" => notifications::set_preferences,
    get "/api/v1/teams/{slug}/webhook" => notifications::webhook,
    put "/api/v1/teams/{slug}/webhook" => notifications::set_webhook,
    delete "/api/v1/teams/{slug}/webhook" => notifications::delete_webhook,
    get "/api/v1/sandbox/resources" => sandbox::list,
    patch "/api/v1/sandbox/resources/{id}" => sandbox::change,
    delete "/api/v1/sandbox/resources/{id}" => sandbox::delete,
}
