//! HTML pages (askama + htmx) and the plumbing every response goes through.

mod admin;
mod assets;
mod auth;
pub mod errors;
mod flash;
mod health;
mod home;
mod me;
mod outbox;
pub mod ratelimit;
pub mod session;
mod teams;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::web::ServiceConfig;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

pub use flash::{Flash, carry_flash as flash_middleware};
use session::Authenticated;

use crate::services::Context;

/// The signed-in person, as the layout shows them.
pub struct Viewer {
    pub name: String,
    pub is_admin: bool,
}

/// What the base layout needs on every page; extracted from the request.
pub struct Chrome {
    pub version: &'static str,
    pub flash: Option<Flash>,
    /// Mail goes to `/dev/outbox` (no SMTP configured).
    pub outbox: bool,
    /// No identity provider: the development sign-in is in use.
    pub dev_sign_in: bool,
    pub viewer: Option<Viewer>,
    /// This session's CSRF token, for every form and htmx request.
    pub csrf: String,
}

impl FromRequest for Chrome {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(ctx) = req.app_data::<web::Data<Context>>() else {
            return ready(Err(crate::Error::internal("no context").into()));
        };
        let ext = req.extensions();
        let auth = ext.get::<Authenticated>();
        ready(Ok(Chrome {
            version: env!("CARGO_PKG_VERSION"),
            flash: ext.get::<Flash>().cloned(),
            outbox: ctx.settings.mail_goes_to_outbox(),
            dev_sign_in: ctx.settings.oidc.is_none(),
            viewer: auth.and_then(|a| a.caller.as_ref()).map(|c| Viewer {
                name: c.actor.name.clone(),
                is_admin: c.actor.is_admin,
            }),
            csrf: auth
                .and_then(|a| a.session.as_ref())
                .map(|s| s.csrf.clone())
                .unwrap_or_default(),
        }))
    }
}

impl Chrome {
    /// The same layout with a CSRF token for a session just created.
    pub fn with_csrf(mut self, csrf: String) -> Self {
        self.csrf = csrf;
        self
    }
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(home::landing)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(assets::asset)
        .service(auth::login)
        .service(auth::callback)
        .service(auth::logout)
        .service(auth::dev_page)
        .service(auth::dev_submit)
        .service(me::profile)
        .service(me::create_token)
        .service(me::revoke_token)
        .service(teams::list)
        .service(teams::create)
        .service(teams::show)
        .service(teams::set_member)
        .service(teams::remove_member)
        .service(admin::users)
        .service(admin::revoke_sessions)
        .service(admin::audit)
        .service(outbox::outbox_page)
        .service(outbox::message_html)
        .service(outbox::send_test_email);
}
