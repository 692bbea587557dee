//! The request form: fields kept on an error, the live plan preview, and
//! creating the request.

use super::*;
use crate::web::form::{Field, FormErrors};

/// The request form as the browser sends it: every value a string.
#[derive(Deserialize, Default)]
pub(in crate::web) struct RequestForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    source_network_id: String,
    #[serde(default)]
    source_cidr: String,
    #[serde(default)]
    destination_network_id: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    ports: String,
    #[serde(default)]
    target_address: String,
    #[serde(default)]
    target_port: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    record_type: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    ttl: String,
    #[serde(default)]
    expires_in_hours: String,
}

pub(super) fn some(text: &str) -> Option<String> {
    Some(text.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// An optional field that must parse; what does not becomes an error naming the field.
pub(super) fn parsed<T: FromStr>(
    field: &'static str,
    text: &str,
    expected: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let value = text.parse().ok();
    if value.is_none() {
        errors.push(FieldError::new(field, format!("must be {expected}")));
    }
    value
}

impl RequestForm {
    /// The service's request, and the fields that did not even parse.
    fn to_request(&self) -> (ConnectionRequest, Vec<FieldError>) {
        let mut errors = Vec::new();
        let request = ConnectionRequest {
            kind: self.kind.trim().to_owned(),
            reason: self.reason.clone(),
            source_network_id: parsed(
                "source_network_id",
                &self.source_network_id,
                "a network's id",
                &mut errors,
            ),
            source_cidr: some(&self.source_cidr),
            destination_network_id: parsed(
                "destination_network_id",
                &self.destination_network_id,
                "a network's id",
                &mut errors,
            ),
            protocol: some(&self.protocol),
            ports: some(&self.ports),
            target_address: some(&self.target_address),
            target_port: parsed(
                "target_port",
                &self.target_port,
                "a port number from 1 to 65535",
                &mut errors,
            ),
            hostname: some(&self.hostname),
            path: some(&self.path),
            team: some(&self.team),
            name: some(&self.name),
            record_type: some(&self.record_type),
            value: some(&self.value),
            ttl: parsed(
                "ttl",
                &self.ttl,
                "a number of seconds such as 300",
                &mut errors,
            ),
            expires_in_hours: parsed(
                "expires_in_hours",
                &self.expires_in_hours,
                "a whole number of hours such as 24",
                &mut errors,
            ),
        };
        (request, errors)
    }
}

/// The form's own errors together with the service's for the other fields, so
/// that everything to fix is said at once. Nothing is saved.
pub(super) async fn with_form_errors(
    ctx: &Context,
    caller: &Caller,
    req: &ConnectionRequest,
    mut errors: Vec<FieldError>,
) -> Error {
    let more = match connections::preview(ctx, caller, req).await {
        Ok(_) => Vec::new(),
        Err(Error::Invalid(more)) => more,
        Err(other) => return other,
    };
    for e in more {
        if !errors.iter().any(|mine| mine.field == e.field) {
            errors.push(e);
        }
    }
    Error::Invalid(errors)
}

/// The request form's fields, as its errors name them.
const FIELDS: &[Field] = &[
    Field {
        name: "kind",
        label: "Kind",
        input: "c-kind",
    },
    Field {
        name: "source_network_id",
        label: "From network",
        input: "c-source",
    },
    Field {
        name: "source_cidr",
        label: "From addresses (CIDR)",
        input: "c-source-cidr",
    },
    Field {
        name: "destination_network_id",
        label: "To network",
        input: "c-destination",
    },
    Field {
        name: "protocol",
        label: "Protocol",
        input: "c-protocol",
    },
    Field {
        name: "ports",
        label: "Ports",
        input: "c-ports",
    },
    Field {
        name: "target_address",
        label: "Service address",
        input: "c-target-address",
    },
    Field {
        name: "target_port",
        label: "Service port",
        input: "c-target-port",
    },
    Field {
        name: "hostname",
        label: "Public hostname",
        input: "c-hostname",
    },
    Field {
        name: "path",
        label: "Path",
        input: "c-path",
    },
    Field {
        name: "team",
        label: "Owning team",
        input: "c-team",
    },
    Field {
        name: "name",
        label: "Name",
        input: "c-name",
    },
    Field {
        name: "record_type",
        label: "Type",
        input: "c-record-type",
    },
    Field {
        name: "value",
        label: "Value",
        input: "c-value",
    },
    Field {
        name: "ttl",
        label: "TTL",
        input: "c-ttl",
    },
    Field {
        name: "reason",
        label: "Why is it needed",
        input: "c-reason",
    },
    Field {
        name: "expires_in_hours",
        label: "Remove after",
        input: "c-expires",
    },
];

#[derive(Template)]
#[template(path = "pages/connection_new.html")]
pub(super) struct NewPage {
    chrome: Chrome,
    form: RequestForm,
    errors: FormErrors,
    kinds: [Kind; 4],
    networks: Vec<NetworkDetail>,
    my_teams: Vec<TeamRole>,
    is_admin: bool,
    /// Why this person may not ask for what the form says, and who may.
    refusal: Option<String>,
}

pub(super) async fn new_page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    form: RequestForm,
    errors: Vec<FieldError>,
    refusal: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, Error> {
    let page = NewPage {
        refusal,
        chrome,
        form,
        errors: FormErrors::new(errors, FIELDS),
        kinds: Kind::ALL,
        networks: networks::list_networks(ctx, caller, &Default::default()).await?,
        my_teams: caller.actor.teams.clone(),
        is_admin: caller.actor.is_admin,
    };
    render_page(status, None, &page)
}

pub(in crate::web) async fn new(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    let form = RequestForm {
        kind: Kind::NetworkToNetwork.as_str().into(),
        ..RequestForm::default()
    };
    new_page(
        &ctx,
        chrome,
        &caller,
        form,
        Vec::new(),
        None,
        StatusCode::OK,
    )
    .await
}

pub(in crate::web) async fn create(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<RequestForm>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let (request, errors) = form.to_request();
    let result = if errors.is_empty() {
        connections::request(&ctx, &caller, request, None).await
    } else {
        Err(with_form_errors(&ctx, &caller, &request, errors).await)
    };
    match result {
        Ok(view) => Ok(Flash::success(format!(
            "Requested: {}. The leads of the teams involved are asked to approve it.",
            view.plan.summary
        ))
        .redirect(&format!("/connections/{}", view.connection.id))),
        Err(Error::Invalid(errors)) if !crate::web::errors::wants_json(&req) => {
            new_page(
                &ctx,
                chrome,
                &caller,
                form,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        // The form stays as typed, with who may ask for this instead.
        Err(Error::Forbidden(why)) if !crate::web::errors::wants_json(&req) => {
            new_page(
                &ctx,
                chrome,
                &caller,
                form,
                Vec::new(),
                Some(why),
                StatusCode::FORBIDDEN,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// A plan as approvers see it; without a plan, why there is none yet.
#[derive(Template)]
#[template(path = "partials/plan.html")]
pub(super) struct PlanPart {
    plan: Option<Plan>,
    hash: String,
    errors: FormErrors,
    /// This person may not ask for it: why, and who may.
    refusal: Option<String>,
}

impl PlanPart {
    pub(super) fn of(plan: Plan) -> Self {
        Self {
            hash: plan.hash(),
            plan: Some(plan),
            errors: FormErrors::new(Vec::new(), FIELDS),
            refusal: None,
        }
    }

    fn without_plan(errors: Vec<FieldError>, refusal: Option<String>) -> Self {
        Self {
            plan: None,
            hash: String::new(),
            errors: FormErrors::new(errors, FIELDS),
            refusal,
        }
    }
}

/// The form's live preview. Field errors come back as a 200 so that htmx shows them.
pub(in crate::web) async fn plan_preview(
    ctx: web::Data<Context>,
    caller: Caller,
    form: web::Query<RequestForm>,
) -> Result<HttpResponse, Error> {
    let (mut request, errors) = form.to_request();
    // The reason does not shape the plan: people see the plan before they
    // explain it, and submitting checks the reason.
    if request.reason.trim().is_empty() {
        request.reason = "preview".into();
    }
    let result = if errors.is_empty() {
        connections::preview(&ctx, &caller, &request).await
    } else {
        Err(with_form_errors(&ctx, &caller, &request, errors).await)
    };
    let part = match result {
        Ok(plan) => PlanPart::of(plan),
        Err(Error::Invalid(errors)) => PlanPart::without_plan(errors, None),
        Err(Error::Forbidden(why)) => PlanPart::without_plan(Vec::new(), Some(why)),
        Err(e) => return Err(e),
    };
    html(StatusCode::OK, &part)
}
