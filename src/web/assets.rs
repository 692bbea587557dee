//! Static files, compiled into the binary so one file is the whole portal.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::Error;

const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/app.css"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/htmx.min.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
];

pub(super) async fn asset(name: web::Path<String>) -> Result<HttpResponse, Error> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or_else(|| Error::NotFound(format!("the file /static/{name}")))?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        // Links carry ?v=<version>, so a new release is fetched anew.
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(*body))
}
