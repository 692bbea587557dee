//! `/api/v1`: JSON over the same services as the pages. Errors are
//! `application/problem+json` (see `web::errors`). The OpenAPI document at
//! `/api/v1/openapi.json` is generated from these handlers.

pub mod audit;
pub mod changes;
#[cfg(test)]
mod compat;
pub mod connections;
pub mod guardrails;
mod idempotency;
pub mod me;
pub mod model;
pub mod networks;
pub mod notifications;
mod page;
#[cfg(test)]
mod parity;
pub mod pools;
pub mod reach;
pub mod renewals;
pub mod sandbox;
pub mod teams;
mod text;
pub mod tokens;
pub mod users;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", version = "1", description = "Self-service network connectivity. Authenticate with a personal API token: `Authorization: Bearer sbp_…`."),
    paths(me::me, teams::list, teams::get, teams::create, teams::set_member, teams::remove_member, users::list, users::revoke_sessions, connections::approvals, tokens::list, tokens::create, tokens::revoke,
        pools::list, pools::allocations, pools::create, pools::get, pools::available, pools::allocate, pools::release, pools::set_quota,
        networks::list_accounts, networks::create_account, networks::list, networks::create, networks::get, networks::update, networks::delete,
        networks::pending, networks::confirm_ownership, networks::refuse_ownership, networks::check_ownership,
        networks::approve, networks::reject, networks::steps,
        connections::list, connections::create, connections::preview, connections::get, connections::plan, connections::events, connections::approve, connections::reject, connections::cancel, connections::remove, connections::retry,
        connections::drift, connections::repair, connections::repair_mode, connections::status,
        renewals::renew, renewals::list, renewals::approve, renewals::reject,
        changes::create, changes::list, changes::get, changes::approve, changes::reject,
        notifications::preferences, notifications::set_preferences, notifications::webhook, notifications::set_webhook, notifications::delete_webhook,
        guardrails::get, guardrails::versions, guardrails::save, reach::reach,
        sandbox::list, sandbox::change, sandbox::delete, audit::list),
    components(schemas(
        me::Me, me::MyTeam, teams::TeamOut, teams::TeamDetailOut, teams::MemberOut, teams::MemberRole, teams::NewTeamIn, teams::MemberIn, users::UserOut, users::SessionsEndedOut,
        tokens::TokenOut, tokens::NewTokenIn, tokens::NewTokenOut, Problem, FieldProblem,
        pools::PoolOut, pools::NewPoolIn, pools::AllocationOut, pools::NewAllocationIn, pools::PoolDetailOut, pools::AvailableOut, pools::QuotaIn,
        networks::AccountOut, networks::NewAccountIn, networks::NetworkOut, networks::NewNetworkIn, networks::NetworkChangeIn, networks::OwnershipOut, networks::OwnershipRefusalIn,
        networks::NetworkBuildOut, networks::NetworkApprovalIn, networks::NetworkRejectionIn, networks::NetworkStepOut,
        connections::ConnectionOut, connections::SideOut, connections::PlanOut, connections::EventOut, connections::DecisionIn, connections::RejectionIn, connections::StepOut,
        model::ConnectionRequest, model::Plan, model::GuardrailVerdict, model::Mechanism, model::Resource, model::Route, model::Rule, model::Place, model::Alternative,
        model::Kind, model::Status,
        sandbox::SandboxResourceOut, sandbox::SandboxChangeIn,
        connections::ObservedOut, connections::DriftOut, connections::RepairModeIn, connections::RepairMode, connections::StatusOut,
        notifications::PreferencesIo, notifications::WebhookIo, audit::AuditEventOut,
        renewals::RenewalOut, renewals::RenewalIn, renewals::RenewalDecisionIn, renewals::RenewalRejectionIn,
        changes::ChangeOut, changes::ChangeReachOut, changes::DifferenceOut, changes::ChangeSideOut, changes::ChangeIn, changes::ChangeApprovalIn, changes::ChangeRejectionIn,
        guardrails::GuardrailsOut, guardrails::GuardrailsIn, guardrails::SavedGuardrailsOut, guardrails::ViolationOut,
        reach::ReachOut, reach::FlowOut, connections::ReachDeltaOut
    )),
    modifiers(&BearerAuth, &CommonAnswers),
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

/// The answers any operation can give, whatever it does: a body or query the
/// server cannot read (400), no or a bad token (401), too many bad tokens from
/// one address (429), the database away for a moment (503).
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let common = [
            ("400", "The body, query or a header could not be read"),
            (
                "401",
                "No API token, or one that is malformed, expired or revoked",
            ),
            (
                "429",
                "Too many bad tokens from this address: wait a minute",
            ),
            (
                "503",
                "The database is unavailable for a moment: retry after Retry-After",
            ),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.put),
                (true, &mut item.patch),
                (true, &mut item.delete),
            ];
            for (writes, op) in operations {
                let Some(op) = op else { continue };
                // An id in the path may name nothing; a body may fail its checks.
                let mut answers = common.to_vec();
                // Who may do what depends on the caller and the object: any
                // operation but the caller's own profile can be refused.
                if path != "/api/v1/me" {
                    answers.push((
                        "403",
                        "This caller may not do this (the detail says who may)",
                    ));
                }
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_query = |p: &&utoipa::openapi::path::Parameter| {
                    p.parameter_in == utoipa::openapi::path::ParameterIn::Query
                };
                if path.contains('{') {
                    answers.push(("404", "Nothing with that id is visible to this caller"));
                }
                // A path may carry text the server refuses (a control character).
                if op.request_body.is_some()
                    || path.contains('{')
                    || params.iter().any(|p| in_query(&p))
                {
                    answers.push(("422", "A field failed its check: `errors` names each"));
                }
                // A change can meet an object in a state that does not allow it
                // (already decided, removed meanwhile) or a conflicting one.
                if writes {
                    answers.push((
                        "409",
                        "The object's state does not allow this now, or it conflicts with another",
                    ));
                }
                if params.iter().any(|p| p.name == "Idempotency-Key") {
                    answers.push((
                        "409",
                        "The Idempotency-Key was used for another request, or one with it is under way",
                    ));
                }
                if params.iter().any(|p| p.name == "cursor") {
                    paged(op);
                }
                for (status, description) in answers {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/problem+json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("Problem")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

/// A list's next page, in the headers of its 200 answer.
fn paged(op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::header::HeaderBuilder;
    let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") else {
        return;
    };
    ok.headers.insert(
        "Link".into(),
        HeaderBuilder::new()
            .description(Some(
                "`<…?cursor=…>; rel=\"next\"`: the same request for the next page; absent on the last",
            ))
            .build(),
    );
    ok.headers.insert(
        "Next-Cursor".into(),
        HeaderBuilder::new()
            .description(Some("The `cursor` of the next page; absent on the last"))
            .build(),
    );
}

/// An error, as RFC 9457 problem details.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Problem {
    #[schema(example = "about:blank")]
    pub r#type: String,
    #[schema(example = "Unprocessable Entity")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "name: must be 1 to 100 characters")]
    pub detail: String,
    pub instance: String,
    /// Quote it when reporting a problem: it is in the server's logs too.
    pub request_id: String,
    pub errors: Option<Vec<FieldProblem>>,
}

impl Default for Problem {
    fn default() -> Self {
        Self {
            r#type: "about:blank".into(),
            title: String::new(),
            status: 0,
            detail: String::new(),
            instance: String::new(),
            request_id: String::new(),
            errors: None,
        }
    }
}

/// One field that failed validation.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldProblem {
    #[schema(example = "name")]
    pub field: String,
    #[schema(example = "must be 1 to 100 characters")]
    pub reason: String,
}

/// The document: what the annotations say, with the server's text rule.
fn document_value() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    limits(&mut doc);
    text::add_patterns(&mut doc);
    doc
}

/// What the server checks that the annotations cannot say.
fn limits(doc: &mut serde_json::Value) {
    use serde_json::json;
    let mut set = |pointer: &str, schema: serde_json::Value| {
        if let Some(at) = doc.pointer_mut(pointer) {
            *at = schema;
        }
    };
    // Each region a provider account serves: 1 to 64 characters.
    set(
        "/components/schemas/NewAccountIn/properties/regions/items",
        json!({ "type": "string", "minLength": 1, "maxLength": 64 }),
    );
    // A quota is a whole number of addresses, as a number or (IPv6-sized) as text.
    set(
        "/components/schemas/QuotaIn/properties/max_addresses",
        json!({
            "description": "Addresses the team's networks may hold in this pool: a whole number, or its digits as text for IPv6-sized counts.",
            "oneOf": [
                { "type": "integer", "minimum": 0, "maximum": u64::MAX },
                { "type": "string", "pattern": "^[0-9]{1,38}$", "example": "4096" }
            ]
        }),
    );
}

/// The document, as `switchboard openapi` prints it: pretty, keys in order.
pub fn document() -> String {
    serde_json::to_string_pretty(&document_value()).unwrap_or_default()
}

pub(super) async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok().json(document_value())
}

crate::web::route_table! {
    get "/api/v1/openapi.json" => openapi_document,
    get "/api/v1/me" => me::me,
    get "/api/v1/teams" => teams::list,
    get "/api/v1/teams/{slug}" => teams::get,
    post "/api/v1/teams" => teams::create,
    post "/api/v1/teams/{slug}/members" => teams::set_member,
    delete "/api/v1/teams/{slug}/members/{user_id}" => teams::remove_member,
    get "/api/v1/users" => users::list,
    delete "/api/v1/users/{id}/sessions" => users::revoke_sessions,
    get "/api/v1/approvals" => connections::approvals,
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
    post "/api/v1/networks/{id}/ownership/confirm" => networks::confirm_ownership,
    post "/api/v1/networks/{id}/ownership/refuse" => networks::refuse_ownership,
    post "/api/v1/networks/{id}/ownership/check" => networks::check_ownership,
    post "/api/v1/networks/{id}/approve" => networks::approve,
    post "/api/v1/networks/{id}/reject" => networks::reject,
    get "/api/v1/networks/{id}/steps" => networks::steps,
    get "/api/v1/registrations" => networks::pending,
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
    post "/api/v1/connections/{id}/renewals" => renewals::renew,
    get "/api/v1/connections/{id}/renewals" => renewals::list,
    post "/api/v1/renewals/{id}/approve" => renewals::approve,
    post "/api/v1/renewals/{id}/reject" => renewals::reject,
    post "/api/v1/connections/{id}/changes" => changes::create,
    get "/api/v1/connections/{id}/changes" => changes::list,
    get "/api/v1/changes/{id}" => changes::get,
    post "/api/v1/changes/{id}/approve" => changes::approve,
    post "/api/v1/changes/{id}/reject" => changes::reject,
    get "/api/v1/me/notifications" => notifications::preferences,
    put "/api/v1/me/notifications" => notifications::set_preferences,
    get "/api/v1/teams/{slug}/webhook" => notifications::webhook,
    put "/api/v1/teams/{slug}/webhook" => notifications::set_webhook,
    delete "/api/v1/teams/{slug}/webhook" => notifications::delete_webhook,
    get "/api/v1/sandbox/resources" => sandbox::list,
    get "/api/v1/audit" => audit::list,
    get "/api/v1/guardrails" => guardrails::get,
    put "/api/v1/guardrails" => guardrails::save,
    get "/api/v1/guardrails/versions" => guardrails::versions,
    get "/api/v1/reach" => reach::reach,
    get "/api/v1/allocations" => pools::allocations,
    patch "/api/v1/sandbox/resources/{id}" => sandbox::change,
    delete "/api/v1/sandbox/resources/{id}" => sandbox::delete,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated clients name a method after each operationId: each must be unique.
    #[test]
    fn every_operation_has_its_own_id() {
        let doc = ApiDoc::openapi();
        let mut seen = std::collections::BTreeMap::<String, Vec<String>>::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("patch", &item.patch),
                ("delete", &item.delete),
            ];
            for (method, op) in operations {
                if let Some(op) = op {
                    let id = op.operation_id.clone().unwrap_or_default();
                    seen.entry(id).or_default().push(format!("{method} {path}"));
                }
            }
        }
        let duplicates: Vec<_> = seen
            .iter()
            .filter(|(id, uses)| id.is_empty() || uses.len() > 1)
            .collect();
        assert!(duplicates.is_empty(), "{duplicates:#?}");
    }

    /// A parameter is documented where the server reads it: filters and sizes
    /// from the query, ids from the path, the idempotency key from a header.
    #[test]
    fn parameters_are_documented_where_they_are_read() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    let in_path = path.contains(&format!("{{{name}}}"));
                    let expected = match name {
                        "Idempotency-Key" => "header",
                        _ if in_path => "path",
                        _ => "query",
                    };
                    assert_eq!(p["in"], expected, "{method} {path}: {name}");
                }
            }
        }
    }

    #[test]
    fn the_block_size_asked_about_is_a_query_parameter() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let params = &doc["paths"]["/api/v1/pools/{id}/available"]["get"]["parameters"];
        let where_ = |name: &str| {
            params
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .map(|p| p["in"].clone())
        };
        assert_eq!(where_("prefix_length"), Some(serde_json::json!("query")));
        assert_eq!(where_("id"), Some(serde_json::json!("path")));
    }

    /// Every operation documents the answers any call can get.
    #[test]
    fn every_operation_documents_the_common_answers() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let mut expected = vec!["400", "401", "429", "503"];
                if path.contains('{') {
                    expected.push("404");
                }
                if op.get("requestBody").is_some() {
                    expected.push("422");
                }
                for status in expected {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}
