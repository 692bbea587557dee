//! The guardrails: read by everyone, saved by admins as a new version.

use actix_web::web;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::GuardrailVerdict;
use crate::domain::guardrail::RuleSet;
use crate::error::Error;
use crate::services::{Caller, Context, guardrails};

/// A version of the guardrails. `rule_set` is `{"rules": [...], "tests": [...]}`:
/// each rule has a `name`, an optional `description`, what it looks at (`kinds`,
/// `from` and `to` labels matched against the networks' tags, `ports`,
/// `from_outside_team`, `source_covers`) and `then`: `"forbid"`,
/// `{"max_expiry_days": N}`, `{"approval_from": "<team>"}` or
/// `{"at_most": {"count": N, "per": "team" | "network"}}`. Each test has a
/// `name`, a `request` (`kind`, `from`/`to` with `team` and `labels`,
/// `source_cidr`, `ports`, `expires_in_days`, `open_for_team`,
/// `open_into_network`), `expect` (`allow`, `deny`, `approval`) and
/// optionally `by` (the rule that must decide). The README has examples.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuardrailsOut {
    /// 0 until an admin first saves some.
    pub version: i32,
    #[schema(value_type = Object)]
    pub rule_set: serde_json::Value,
    pub comment: String,
    pub saved_by: Option<String>,
    pub saved_at: Option<DateTime<Utc>>,
}

impl From<guardrails::Guardrails> for GuardrailsOut {
    fn from(g: guardrails::Guardrails) -> Self {
        Self {
            version: g.version,
            rule_set: serde_json::to_value(&g.rule_set).unwrap_or_default(),
            comment: g.comment,
            saved_by: g.saved_by,
            saved_at: g.saved_at,
        }
    }
}

/// A new version: the whole rule set, and the version it was edited from
/// (409 if another was saved since). Refused (422) while a rule is malformed
/// or one of the set's tests does not get its expected verdict.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsIn {
    /// See `GuardrailsOut.rule_set`.
    #[schema(value_type = Object)]
    pub rule_set: serde_json::Value,
    #[schema(minimum = 0)]
    pub based_on_version: i32,
    #[serde(default)]
    pub comment: String,
}

/// The saved version, and the open connections it would now refuse (their
/// owners and the admins are emailed; nothing is removed).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SavedGuardrailsOut {
    pub guardrails: GuardrailsOut,
    pub violations: Vec<ViolationOut>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ViolationOut {
    pub connection_id: Uuid,
    pub verdicts: Vec<GuardrailVerdict>,
}

/// The guardrails in force.
#[utoipa::path(get, path = "/api/v1/guardrails", operation_id = "get_guardrails", tag = "guardrails", responses((status = 200, body = GuardrailsOut)))]
pub(super) async fn get(
    ctx: web::Data<Context>,
    caller: Caller,
) -> Result<web::Json<GuardrailsOut>, Error> {
    Ok(web::Json(guardrails::current(&ctx, &caller).await?.into()))
}

/// Every saved version, newest first (the last 100).
#[utoipa::path(get, path = "/api/v1/guardrails/versions", operation_id = "list_guardrail_versions", tag = "guardrails", responses((status = 200, body = Vec<GuardrailsOut>)))]
pub(super) async fn versions(
    ctx: web::Data<Context>,
    caller: Caller,
) -> Result<web::Json<Vec<GuardrailsOut>>, Error> {
    let all = guardrails::history(&ctx, &caller).await?;
    Ok(web::Json(all.into_iter().map(Into::into).collect()))
}

/// Save a new version of the guardrails (admins).
#[utoipa::path(put, path = "/api/v1/guardrails", operation_id = "save_guardrails", tag = "guardrails", request_body = GuardrailsIn,
    responses((status = 200, body = SavedGuardrailsOut),
              (status = 409, body = crate::api::v1::Problem, content_type = "application/problem+json"),
              (status = 422, body = crate::api::v1::Problem, content_type = "application/problem+json")))]
pub(super) async fn save(
    ctx: web::Data<Context>,
    caller: Caller,
    body: web::Json<GuardrailsIn>,
) -> Result<web::Json<SavedGuardrailsOut>, Error> {
    let b = body.into_inner();
    let rule_set = rule_set(b.rule_set)?;
    let (saved, violations) = guardrails::save(
        &ctx,
        &caller,
        guardrails::SaveGuardrails {
            rule_set,
            based_on_version: b.based_on_version,
            comment: b.comment,
        },
    )
    .await?;
    Ok(web::Json(SavedGuardrailsOut {
        guardrails: saved.into(),
        violations: violations
            .into_iter()
            .map(|v| ViolationOut {
                connection_id: v.connection_id,
                verdicts: v.verdicts.into_iter().map(Into::into).collect(),
            })
            .collect(),
    }))
}

/// The rule set in a body, or what is wrong with it.
pub(crate) fn rule_set(value: serde_json::Value) -> Result<RuleSet, Error> {
    serde_json::from_value(value).map_err(|e| Error::invalid("rule_set", e.to_string()))
}
