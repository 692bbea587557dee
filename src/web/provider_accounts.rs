//! Provider accounts (admins): where networks live and what provisions them.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use super::form::{Field, FormErrors};
use super::{Chrome, Flash, render_page};
use crate::error::{Error, FieldError};
use crate::services::networks::{self, AccountRequest, PROVIDER_KINDS};
use crate::services::{Caller, Context};
use crate::store::provider_accounts::ProviderAccount;

#[derive(Template)]
#[template(path = "pages/provider_accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<ProviderAccount>,
    problems: std::collections::HashMap<String, String>,
    kinds: &'static [&'static str],
    form: AccountForm,
    errors: FormErrors,
}

/// The provider-account form's fields, as its errors name them.
const FIELDS: &[Field] = &[
    Field::new("kind", "Kind", "pa-kind"),
    Field::new("name", "Name", "pa-name"),
    Field::new("regions", "Regions", "pa-regions"),
    Field::new("settings", "Settings", "pa-settings"),
    Field::new("credentials_ref", "Credentials from", "pa-creds"),
];

#[derive(Deserialize, Default)]
pub(super) struct AccountForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    /// Comma-separated.
    #[serde(default)]
    regions: String,
    /// One `key=value` per line.
    #[serde(default)]
    settings: String,
    #[serde(default)]
    credentials_ref: String,
}

async fn page(
    ctx: &Context,
    chrome: Chrome,
    caller: &Caller,
    form: AccountForm,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, Error> {
    let accounts = networks::list_accounts(ctx, caller).await?;
    render_page(
        status,
        None,
        &AccountsPage {
            chrome,
            accounts,
            problems: networks::account_problems(ctx).await?,
            kinds: PROVIDER_KINDS,
            form,
            errors: FormErrors::new(errors, FIELDS),
        },
    )
}

pub(super) async fn list(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    caller
        .actor
        .require(crate::auth::policy::Action::ManageProviderAccounts)?;
    page(
        &ctx,
        chrome,
        &caller,
        AccountForm {
            kind: "sandbox".into(),
            ..AccountForm::default()
        },
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// `key=value` lines as a JSON object; a line without `=` names the field.
fn settings_from_lines(text: &str) -> Result<serde_json::Value, FieldError> {
    let mut map = serde_json::Map::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(FieldError::new(
                "settings",
                format!("{line:?} is not key=value"),
            ));
        };
        map.insert(key.trim().to_owned(), value.trim().into());
    }
    Ok(serde_json::Value::Object(map))
}

pub(super) async fn create(
    req: HttpRequest,
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, Error> {
    let form = form.into_inner();
    let result = async {
        let settings = settings_from_lines(&form.settings).map_err(|settings| {
            // Said together with a missing name, so that both are fixed at once.
            let mut errors = vec![settings];
            if form.name.trim().is_empty() {
                errors.insert(0, FieldError::new("name", "is required"));
            }
            Error::Invalid(errors)
        })?;
        networks::create_account(
            &ctx,
            &caller,
            AccountRequest {
                kind: form.kind.trim().to_owned(),
                name: form.name.clone(),
                regions: form
                    .regions
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect(),
                settings,
                credentials_ref: Some(form.credentials_ref.trim())
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
            },
        )
        .await
    }
    .await;
    match result {
        Ok(account) => Ok(Flash::success(format!(
            "Provider account {} ({}) added.",
            account.name, account.kind
        ))
        .redirect("/admin/provider-accounts")),
        Err(e) if super::errors::wants_json(&req) => Err(e),
        Err(e) => {
            let (errors, status) = super::form::refusal(e)?;
            page(&ctx, chrome, &caller, form, errors, status).await
        }
    }
}
