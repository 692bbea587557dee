//! `/networks`: the networks teams own, and a form to get a new one.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use uuid::Uuid;

use super::form::{Field, FormErrors};
use super::{Chrome, Flash};
use crate::auth::policy::TeamRole;
use crate::error::{Error, FieldError};
use crate::services::networks::{self, NetworkDetail, NetworkRequest};
use crate::services::{Caller, Context};
use crate::store::provider_accounts::ProviderAccount;

#[derive(Deserialize, Default)]
pub(super) struct Filter {
    #[serde(default)]
    team: String,
    #[serde(default)]
    provider_account: String,
    #[serde(default)]
    region: String,
    /// An address or prefix: networks holding it.
    #[serde(default)]
    contains: String,
}

impl Filter {
    fn is_set(&self) -> bool {
        [
            &self.team,
            &self.provider_account,
            &self.region,
            &self.contains,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }
}

#[derive(Deserialize, Default)]
pub(super) struct NetworkForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    provider_account_id: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    prefix_length: String,
    /// Filled to register an existing prefix instead of allocating one.
    #[serde(default)]
    cidr: String,
    #[serde(default)]
    external_id: String,
}

/// The new-network form's fields, as its errors name them.
const FIELDS: &[Field] = &[
    Field::new("name", "Name", "n-name"),
    Field::new("team", "Team", "n-team"),
    Field::new("provider_account_id", "Provider account", "n-account"),
    Field::new("region", "Region", "n-region"),
    Field::new("environment", "Environment", "n-env"),
    Field::new("prefix_length", "Prefix length", "n-len"),
    Field::new("cidr", "Existing CIDR", "n-cidr"),
    Field::new("external_id", "External id", "n-ext"),
];

#[derive(Template)]
#[template(path = "pages/networks.html")]
pub(super) struct NetworksPage {
    chrome: Chrome,
    networks: Vec<NetworkDetail>,
    filter: Filter,
    accounts: Vec<ProviderAccount>,
    my_teams: Vec<TeamRole>,
    is_admin: bool,
    form: NetworkForm,
    errors: FormErrors,
    /// Why a filter could not be read (an address that is not one).
    filter_errors: Vec<FieldError>,
    /// Every region of the provider accounts, for the region filter.
    regions: Vec<String>,
}

async fn page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    filter: Filter,
    form: NetworkForm,
    errors: Vec<FieldError>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, Error> {
    let wanted = networks::NetworkFilter {
        team: Some(filter.team.clone()),
        provider_account: Some(filter.provider_account.clone()),
        region: Some(filter.region.clone()),
        contains: Some(filter.contains.clone()),
    };
    let (found, filter_errors) = match networks::list_networks(ctx, caller, &wanted).await {
        Ok(found) => (found, Vec::new()),
        Err(Error::Invalid(errors)) => (Vec::new(), errors),
        Err(e) => return Err(e),
    };
    let accounts = networks::list_accounts(ctx, caller).await?;
    let mut regions: Vec<String> = accounts.iter().flat_map(|a| a.regions.clone()).collect();
    regions.sort();
    regions.dedup();
    let page = NetworksPage {
        networks: found,
        accounts,
        filter_errors,
        regions,
        my_teams: caller.actor.teams.clone(),
        is_admin: caller.actor.is_admin,
        chrome,
        filter,
        form,
        errors: FormErrors::new(errors, FIELDS),
    };
    super::render_page(status, None, &page)
}

pub(super) async fn list(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, Error> {
    page(
        &ctx,
        chrome,
        &caller,
        filter.into_inner(),
        NetworkForm::default(),
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
    .await
}

pub(super) async fn create(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<NetworkForm>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let some = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
    let result = async {
        let prefix_length = match form.prefix_length.trim().trim_start_matches('/') {
            "" => None,
            n => Some(
                n.parse::<i64>()
                    .map_err(|_| Error::invalid("prefix_length", "must be a number such as 24"))?,
            ),
        };
        networks::create_network(
            &ctx,
            &caller,
            NetworkRequest {
                name: form.name.clone(),
                team: form.team.clone(),
                provider_account_id: Uuid::parse_str(form.provider_account_id.trim()).ok(),
                region: form.region.clone(),
                environment: some(&form.environment),
                pool_id: None,
                prefix_length,
                cidr: some(&form.cidr),
                external_id: some(&form.external_id),
                tags: serde_json::json!({}),
            },
            None,
        )
        .await
    }
    .await;
    match result {
        Ok(detail) => {
            let cidrs: Vec<String> = detail.prefixes.iter().map(|p| p.cidr.to_string()).collect();
            let waits = if detail.network.ownership == "pending" {
                " Its registration waits for proof that your team owns the resource, or for an admin."
            } else {
                ""
            };
            Ok(Flash::success(format!(
                "Network {} created with {}.{waits}",
                detail.network.name,
                cidrs.join(", ")
            ))
            .redirect(&format!("/networks/{}", detail.network.id)))
        }
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = super::form::refusal(e)?;
            page(
                &ctx,
                chrome,
                &caller,
                Filter::default(),
                form,
                errors,
                status,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "pages/network.html")]
pub(super) struct NetworkPage {
    chrome: Chrome,
    detail: NetworkDetail,
    /// The latest connections from or to it, whether there are more, and where they all are.
    lines: Vec<super::connection_lines::Line>,
    more: bool,
    all: String,
    can_manage: bool,
    /// Admins decide registrations that wait for them.
    can_confirm: bool,
    /// What Switchboard builds for it (absent for a registered network).
    plan: Option<crate::planner::network::NetworkPlan>,
    /// The plan's subnets: (zone, range).
    subnets: Vec<(String, String)>,
    differences: Vec<String>,
    steps: Vec<crate::store::networks::NetworkStep>,
    /// A lead of its team (or an admin) may approve building it now.
    can_approve: bool,
}

impl NetworkPage {
    /// The status badge's class, in the connections' colours.
    fn badge(&self) -> &'static str {
        use crate::domain::network::Status;
        match self.detail.network.status() {
            Status::Registered | Status::Ready => "status-active",
            Status::AwaitingApproval => "status-pending_approval",
            Status::Building => "status-provisioning",
            Status::Drifted => "status-drifted",
            Status::Failed => "status-failed",
            Status::Removing => "status-deprovisioning",
        }
    }
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    let detail = networks::get_network(&ctx, &caller, id).await?;
    let can_manage = caller
        .actor
        .can(crate::auth::policy::Action::ManageNetworks {
            team_id: detail.network.team_id,
        });
    let can_confirm = caller
        .actor
        .can(crate::auth::policy::Action::ConfirmOwnership);
    let (lines, more) = super::connection_lines::related(
        &ctx,
        &caller,
        crate::services::connections::ConnectionFilter {
            network: Some(id.to_string()),
            ..Default::default()
        },
    )
    .await?;
    let plan = detail.plan();
    let subnets = plan
        .iter()
        .flat_map(|p| p.subnets())
        .map(|s| (s.zone, s.cidr.to_string()))
        .collect();
    let differences = detail.differences();
    let steps = networks::network_steps(&ctx, &caller, id).await?;
    let can_approve = detail.network.status() == crate::domain::network::Status::AwaitingApproval
        && caller
            .actor
            .can(crate::auth::policy::Action::ApproveNetwork {
                team_id: detail.network.team_id,
            });
    let page = NetworkPage {
        chrome,
        detail,
        lines,
        more,
        all: format!("/connections?network={id}"),
        can_manage,
        can_confirm,
        plan,
        subnets,
        differences,
        steps,
        can_approve,
    };
    super::render_page(actix_web::http::StatusCode::OK, None, &page)
}

pub(super) async fn delete(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    match networks::delete_network(&ctx, &caller, id).await {
        Ok(networks::Deletion::Deleted) => Ok(Flash::success(
            "Network deleted; its prefixes went back to the address plan.",
        )
        .redirect("/networks")),
        Ok(networks::Deletion::Removing) => Ok(Flash::success(
            "Removal started: Switchboard removes what it built, then the network; its prefixes then go back to the address plan.",
        )
        .redirect(&format!("/networks/{id}"))),
        // Connections still use it: said on its page, with which.
        Err(e @ Error::Conflict(_)) => {
            Ok(Flash::error(e.to_string()).redirect(&format!("/networks/{id}")))
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub(super) struct ApprovalForm {
    #[serde(default)]
    plan_hash: String,
}

/// A lead approves the plan shown on the page (its hash, from the form).
pub(super) async fn approve(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<ApprovalForm>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    let result = networks::approve_network(&ctx, &caller, id, &form.plan_hash).await;
    back_to(
        id,
        result,
        "Approved: building has started, the status below follows it.",
    )
}

/// A lead rejects building the network: it is deleted, its range freed.
pub(super) async fn reject(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<RefusalForm>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    match networks::reject_network(&ctx, &caller, id, &form.reason).await {
        Ok(()) => Ok(Flash::success(
            "Rejected: the network is deleted and its range went back to the address plan; its creator is told why.",
        )
        .redirect("/networks")),
        Err(e @ (Error::Conflict(_) | Error::Invalid(_))) => {
            Ok(Flash::error(e.to_string()).redirect(&format!("/networks/{id}")))
        }
        Err(e) => Err(e),
    }
}

fn network_id(id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(id).map_err(|_| Error::NotFound("that network".into()))
}

/// The network page again, with what happened or why not.
fn back_to(
    id: Uuid,
    result: Result<NetworkDetail, Error>,
    done: &str,
) -> Result<HttpResponse, Error> {
    let page = format!("/networks/{id}");
    match result {
        Ok(_) => Ok(Flash::success(done.to_owned()).redirect(&page)),
        // A refusal of the policy is a 403 page saying who may.
        Err(e @ (Error::Conflict(_) | Error::Invalid(_))) => {
            Ok(Flash::error(e.to_string()).redirect(&page))
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn confirm_ownership(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    let result = networks::confirm_ownership(&ctx, &caller, id).await;
    back_to(
        id,
        result,
        "Confirmed: the network can now be an end of connections.",
    )
}

#[derive(Deserialize)]
pub(super) struct RefusalForm {
    #[serde(default)]
    reason: String,
}

pub(super) async fn refuse_ownership(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<RefusalForm>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    let result = networks::refuse_ownership(&ctx, &caller, id, &form.reason).await;
    back_to(
        id,
        result,
        "Refused: the network no longer names that resource.",
    )
}

pub(super) async fn check_ownership(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let id = network_id(&id)?;
    let result = networks::check_ownership(&ctx, &caller, id).await;
    let said = match &result {
        Ok(d) if d.network.ownership == "proved" => {
            "Proved: the network can now be an end of connections."
        }
        _ => "Still not proved: see why below.",
    };
    back_to(id, result, said)
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/registrations.html")]
pub(super) struct RegistrationsPage {
    chrome: Chrome,
    pending: Vec<NetworkDetail>,
}

/// Registrations waiting for an admin.
pub(super) async fn registrations(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<RegistrationsPage, Error> {
    Ok(RegistrationsPage {
        pending: networks::pending_registrations(&ctx, &caller).await?,
        chrome,
    })
}
