//! HTML pages (askama + htmx) and the plumbing every response goes through.

mod assets;
pub mod errors;
mod flash;
pub use flash::carry_flash as flash_middleware;
mod health;
mod home;
mod outbox;

use actix_web::web::ServiceConfig;

pub use flash::Flash;

/// What the base layout needs on every page.
pub struct Chrome {
    pub version: &'static str,
    pub flash: Option<Flash>,
    /// Mail goes to `/dev/outbox` (no SMTP configured): show the link and banner.
    pub outbox: bool,
}

impl Chrome {
    pub fn new(ctx: &crate::services::Context, flash: Option<Flash>) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            flash,
            outbox: ctx.settings.mail_goes_to_outbox(),
        }
    }
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(home::landing)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(assets::asset)
        .service(outbox::outbox_page)
        .service(outbox::message_html)
        .service(outbox::send_test_email);
}
