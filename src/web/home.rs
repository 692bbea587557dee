use actix_web::{get, web};
use askama::Template;
use askama_web::WebTemplate;

use super::{Chrome, Flash};
use crate::services::Context;

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct Landing {
    chrome: Chrome,
}

#[get("/")]
pub(super) async fn landing(ctx: web::Data<Context>, flash: Option<Flash>) -> Landing {
    Landing {
        chrome: Chrome::new(&ctx, flash),
    }
}
