//! `/address-plan`: the plan as a picture, pools drilled down, allocation by hand.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::form::{self, Field, FormErrors};
use super::{Chrome, Flash};
use crate::auth::policy::Action;
use crate::error::{Error, FieldError};
use crate::ipam;
use crate::services::address_plan::{self, PoolDetail, PoolSummary, Segment};
use crate::services::{Caller, Context};

#[derive(Template)]
#[template(path = "pages/address_plan.html")]
pub(super) struct PlanPage {
    chrome: Chrome,
    pools: Vec<PoolSummary>,
    can_manage: bool,
    form: PoolForm,
    errors: FormErrors,
}

impl PlanPage {
    fn labels_of(&self, p: &PoolSummary) -> String {
        labels_text(&p.pool.labels)
    }

    /// The bar's filled width in percent: at least a sliver when anything
    /// is allocated, so a /26 in a /12 still shows.
    fn bar_of(&self, p: &PoolSummary) -> f64 {
        match p.percent() {
            shown if p.allocated > 0 => shown.max(1.0),
            shown => shown,
        }
    }
}

#[derive(Deserialize, Default, Clone)]
pub(super) struct PoolForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    cidr: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    default_prefix_length: String,
    /// `region=eu-west, environment=prod`
    #[serde(default)]
    labels: String,
}

fn labels_text(labels: &serde_json::Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn plan_page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    form: PoolForm,
    errors: Vec<FieldError>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, Error> {
    let page = PlanPage {
        chrome,
        pools: address_plan::overview(ctx, caller).await?,
        can_manage: caller.actor.can(Action::ManageAddressPlan),
        form,
        errors: FormErrors::new(errors, POOL_FIELDS),
    };
    super::render_page(status, Some("/address-plan"), &page)
}

pub(super) async fn overview(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    plan_page(
        &ctx,
        chrome,
        &caller,
        PoolForm::default(),
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
    .await
}

/// `region=eu-west, environment=prod` as a label object; a pair without `=` is refused.
fn parse_labels(text: &str) -> Result<serde_json::Value, FieldError> {
    let mut map = serde_json::Map::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| FieldError::new("labels", format!("{pair:?} is not key=value")))?;
        map.insert(
            k.trim().to_owned(),
            serde_json::Value::String(v.trim().to_owned()),
        );
    }
    Ok(serde_json::Value::Object(map))
}

/// A prefix length as typed (`24` or `/24`), or nothing.
fn parse_prefix_length(field: &str, text: &str) -> Result<Option<i64>, FieldError> {
    match text.trim().trim_start_matches('/') {
        "" => Ok(None),
        n => n
            .parse()
            .map(Some)
            .map_err(|_| FieldError::new(field, "must be a number such as 24")),
    }
}

impl PoolForm {
    /// The service's request, or every field that did not even parse, with
    /// the name and CIDR checked too so that everything is said at once.
    fn to_request(&self) -> Result<address_plan::PoolRequest, Vec<FieldError>> {
        let parent_id = match self.parent_id.trim() {
            "" => Ok(None),
            id => Uuid::parse_str(id)
                .map(Some)
                .map_err(|_| FieldError::new("parent_id", "no pool has this id")),
        };
        let default_prefix_length =
            parse_prefix_length("default_prefix_length", &self.default_prefix_length);
        let labels = parse_labels(&self.labels);
        match (parent_id, default_prefix_length, labels) {
            (Ok(parent_id), Ok(default_prefix_length), Ok(labels)) => {
                Ok(address_plan::PoolRequest {
                    name: self.name.clone(),
                    cidr: self.cidr.clone(),
                    parent_id,
                    labels,
                    default_prefix_length,
                })
            }
            (parent, len, labels) => {
                let mut errors: Vec<FieldError> = [parent.err(), len.err(), labels.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                if self.name.trim().is_empty() {
                    errors.insert(0, FieldError::new("name", "is required"));
                }
                if let Err(reason) = ipam::parse_cidr(&self.cidr) {
                    errors.insert(0, FieldError::new("cidr", reason));
                }
                Err(errors)
            }
        }
    }
}

/// The new-pool form's fields, as its errors name them.
const POOL_FIELDS: &[Field] = &[
    Field::new("name", "Name", "pool-name"),
    Field::new("cidr", "CIDR", "pool-cidr"),
    Field::new("parent_id", "Inside", "pool-parent"),
    Field::new("default_prefix_length", "Default prefix length", "pool-len"),
    Field::new("labels", "Labels", "pool-labels"),
];

pub(super) async fn create_pool(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<PoolForm>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let result = match form.to_request() {
        Ok(request) => address_plan::create_pool(&ctx, &caller, request, None).await,
        Err(errors) => Err(Error::Invalid(errors)),
    };
    match result {
        Ok(pool) => Ok(
            Flash::success(format!("Pool {} ({}) created.", pool.name, pool.cidr))
                .redirect(&format!("/address-plan/pools/{}", pool.id)),
        ),
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = form::refusal(e)?;
            plan_page(&ctx, chrome, &caller, form, errors, status).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CidrQuery {
    #[serde(default)]
    cidr: String,
}

/// Live validation while typing a CIDR (htmx): a short verdict.
pub(super) async fn check_cidr(_caller: Caller, query: web::Query<CidrQuery>) -> HttpResponse {
    let (class, text) = match ipam::parse_cidr(&query.cidr) {
        _ if query.cidr.trim().is_empty() => ("muted", String::new()),
        Ok(net) => ("ok", format!("✓ {net}: {} addresses", ipam::size(&net))),
        Err(reason) => ("field-error", format!("cidr: {reason}")),
    };
    let page = CidrCheck { class, text };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render().unwrap_or_default())
}

#[derive(Template)]
#[template(
    source = r#"<span id="cidr-check" class="{{ class }}" role="status">{{ text }}</span>"#,
    ext = "html"
)]
struct CidrCheck {
    class: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "pages/pool.html")]
pub(super) struct PoolPage {
    chrome: Chrome,
    detail: PoolDetail,
    segments: Vec<Segment>,
    size: u128,
    percent: f64,
    labels: String,
    /// Allocations the policy lets this person give back.
    releasable: std::collections::HashSet<Uuid>,
    /// The allocation form as typed, and why it was refused.
    form: AllocateForm,
    errors: FormErrors,
}

async fn pool_page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    id: Uuid,
    form: AllocateForm,
    errors: Vec<FieldError>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, Error> {
    let detail = address_plan::pool_detail(ctx, caller, id).await?;
    let size = ipam::size(&detail.pool.cidr);
    let percent = address_plan::percent(detail.allocated, size);
    // A prefix a network uses goes with the network; only an admin may
    // release it from under one (and is asked to confirm).
    let releasable = detail
        .allocations
        .iter()
        .filter(|a| {
            caller.actor.can(crate::auth::policy::Action::Release {
                allocated_by: a.created_by,
            }) && (a.network_id.is_none()
                || caller
                    .actor
                    .can(crate::auth::policy::Action::ReleaseNetworkPrefix))
        })
        .map(|a| a.id)
        .collect();
    let page = PoolPage {
        releasable,
        chrome,
        segments: address_plan::segments(&detail),
        labels: labels_text(&detail.pool.labels),
        size,
        percent,
        detail,
        form,
        errors: FormErrors::new(errors, ALLOCATE_FIELDS),
    };
    super::render_page(status, Some(&format!("/address-plan/pools/{id}")), &page)
}

fn pool_id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::NotFound("that pool".into()))
}

pub(super) async fn pool(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    pool_page(
        &ctx,
        chrome,
        &caller,
        pool_id(&id)?,
        AllocateForm::default(),
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
    .await
}

/// The allocation form's fields, as its errors name them.
const ALLOCATE_FIELDS: &[Field] = &[
    Field::new("prefix_length", "Prefix length", "alloc-len"),
    Field::new("description", "What for", "alloc-desc"),
];

#[derive(Deserialize, Default)]
pub(super) struct AllocateForm {
    #[serde(default)]
    prefix_length: String,
    #[serde(default)]
    description: String,
}

pub(super) async fn allocate(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<AllocateForm>,
) -> Result<HttpResponse, Error> {
    let id = pool_id(&id)?;
    let form = form.into_inner();
    let result = match parse_prefix_length("prefix_length", &form.prefix_length) {
        Ok(prefix_length) => {
            address_plan::allocate(
                &ctx,
                &caller,
                id,
                address_plan::AllocationRequest {
                    prefix_length,
                    idempotency_key: None,
                    reservation_ttl: None,
                    description: form.description.clone(),
                },
            )
            .await
        }
        Err(error) => Err(Error::Invalid(vec![error])),
    };
    match result {
        Ok(done) => Ok(
            Flash::success(format!("Allocated {}.", done.allocation.cidr))
                .redirect(&format!("/address-plan/pools/{id}")),
        ),
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = form::refusal(e)?;
            pool_page(&ctx, chrome, &caller, id, form, errors, status).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ReleaseForm {
    /// Present on an admin's "release anyway" of a prefix a network uses.
    #[serde(default)]
    force: Option<String>,
}

pub(super) async fn release(
    ctx: web::Data<Context>,
    caller: Caller,
    id: web::Path<String>,
    // A post without a form (a script's, htmx's) releases without force.
    form: Option<web::Form<ReleaseForm>>,
) -> Result<HttpResponse, Error> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::NotFound("that allocation".into()))?;
    let force = form.is_some_and(|f| f.force.is_some());
    let released = address_plan::release(&ctx, &caller, id, force).await?;
    Ok(Flash::success(format!("Released {}.", released.cidr))
        .redirect(&format!("/address-plan/pools/{}", released.pool_id)))
}
