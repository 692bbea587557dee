//! `/reach`: who can reach an address, range or network (on a port), and
//! through which open connection.

use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use super::form::{Field, FormErrors};
use super::{Chrome, render_page};
use crate::domain::reach::Flow;
use crate::error::{Error, FieldError};
use crate::services::{Caller, Context, reach};

#[derive(Template)]
#[template(path = "pages/reach.html")]
struct ReachPage {
    chrome: Chrome,
    q: ReachForm,
    /// The flows found, once asked.
    flows: Option<Vec<Flow>>,
    errors: FormErrors,
}

const FIELDS: &[Field] = &[
    Field::new("from", "From", "r-from"),
    Field::new("to", "To", "r-to"),
    Field::new("port", "Port", "r-port"),
];

#[derive(Deserialize, Default)]
pub(super) struct ReachForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    port: String,
}

pub(super) async fn show(
    ctx: web::Data<Context>,
    chrome: Chrome,
    caller: Caller,
    q: web::Query<ReachForm>,
) -> Result<HttpResponse, Error> {
    let q = q.into_inner();
    let (flows, errors, status) = if q.to.trim().is_empty() {
        caller
            .actor
            .require(crate::auth::policy::Action::ViewNetworks)?;
        (None, Vec::<FieldError>::new(), StatusCode::OK)
    } else {
        match reach::reach(
            &ctx,
            &caller,
            Some(q.from.as_str()),
            &q.to,
            Some(q.port.as_str()),
        )
        .await
        {
            Ok(answer) => (Some(answer.flows), Vec::new(), StatusCode::OK),
            Err(e) => {
                let (errors, status) = super::form::refusal(e)?;
                (None, errors, status)
            }
        }
    };
    render_page(
        status,
        None,
        &ReachPage {
            chrome,
            q,
            flows,
            errors: FormErrors::new(errors, FIELDS),
        },
    )
}
