//! Pages of a list over HTTP: `limit` and `cursor` in the query; the body is
//! the page's items (an array, as before pages existed), and the next page is
//! named by `Link: <…>; rel="next"` and `Next-Cursor`, absent on the last page.

use actix_web::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::page::{MAX_LIMIT, Page, Paged};
use crate::error::Error;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// Items on the page, 1 to 500 (50 when absent).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Where the page starts: the `Next-Cursor` of the page before.
    cursor: Option<String>,
}

impl PageQuery {
    pub(super) fn page<K: Serialize + DeserializeOwned>(&self) -> Result<Page<K>, Error> {
        let limit = match self.limit.as_deref().map(str::trim) {
            None => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                Error::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )
            })?),
        };
        Page::parse(limit, self.cursor.as_deref()).map_err(|e| Error::invalid(e.field, e.reason))
    }
}

/// A query parameter documented as a number, an id or an instant is absent or
/// one: `?pool=` is a mistake to name, not "any pool".
pub(super) fn not_blank(fields: &[(&str, &Option<String>)]) -> Result<(), Error> {
    for (field, value) in fields {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Error::invalid(
                *field,
                "is empty: leave it out, or give a value",
            ));
        }
    }
    Ok(())
}

/// The page as a JSON array, with the way to the next one in the headers.
pub(super) fn respond<T: Serialize>(req: &HttpRequest, page: Paged<T>) -> HttpResponse {
    let mut answer = HttpResponse::Ok();
    if let Some(next) = &page.next {
        answer.insert_header(("Link", format!("<{}>; rel=\"next\"", next_url(req, next))));
        answer.insert_header(("Next-Cursor", next.as_str()));
    }
    answer.json(page.items)
}

/// The same request with `cursor` set to the next page's.
fn next_url(req: &HttpRequest, cursor: &str) -> String {
    let kept = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name != "cursor");
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(kept);
    query.append_pair("cursor", cursor);
    format!("{}?{}", req.path(), query.finish())
}
