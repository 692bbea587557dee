//! HTML pages (askama + htmx) and the plumbing every response goes through.

mod address_plan;
mod admin;
mod assets;
mod auth;
mod changes;
mod connection_lines;
mod connections;
pub mod errors;
mod flash;
mod form;
mod guardrails;
mod health;
mod home;
mod map;
mod me;
mod monitoring;
mod networks;
mod outbox;
mod provider_accounts;
pub mod ratelimit;
mod reach;
mod renewals;
mod sandbox;
pub mod session;
mod teams;
pub mod text;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
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
        ready(Chrome::of(req).ok_or_else(|| crate::Error::internal("no context").into()))
    }
}

impl Chrome {
    /// The layout for this request: error pages keep the menu and the person too.
    pub fn of(req: &HttpRequest) -> Option<Chrome> {
        let ctx = req.app_data::<web::Data<Context>>()?;
        let ext = req.extensions();
        let auth = ext.get::<Authenticated>();
        Some(Chrome {
            version: env!("CARGO_PKG_VERSION"),
            flash: ext.get::<Flash>().cloned(),
            outbox: ctx.settings.mail_goes_to_outbox(),
            dev_sign_in: ctx.settings.dev_sign_in,
            viewer: auth.and_then(|a| a.caller.as_ref()).map(|c| Viewer {
                name: c.actor.name.clone(),
                is_admin: c.actor.is_admin,
            }),
            csrf: auth
                .and_then(|a| a.session.as_ref())
                .map(|s| s.csrf.clone())
                .unwrap_or_default(),
        })
    }
}

/// A rendered page. `push_url` is the address htmx shows when the page answers a
/// form post (so that reloading does not post again).
pub fn render_page(
    status: actix_web::http::StatusCode,
    push_url: Option<&str>,
    page: &impl askama::Template,
) -> Result<actix_web::HttpResponse, crate::Error> {
    let mut res = actix_web::HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8");
    if let Some(url) = push_url {
        res.insert_header(("HX-Push-Url", url.to_owned()));
    }
    Ok(res.body(page.render().map_err(crate::Error::internal)?))
}

impl Chrome {
    /// The same layout with a CSRF token for a session just created.
    pub fn with_csrf(mut self, csrf: String) -> Self {
        self.csrf = csrf;
        self
    }
}

/// Leaves a path to a fixed route that names it: `/api/v1/connections/plan`
/// is that route's, never the connection `plan` of `/api/v1/connections/{id}`
/// (whatever the method, so a GET there is a 405 saying POST).
pub struct NotShadowed(pub &'static str);

impl actix_web::guard::Guard for NotShadowed {
    fn check(&self, ctx: &actix_web::guard::GuardContext<'_>) -> bool {
        if !self.0.contains('{') {
            return true;
        }
        let path = ctx.head().uri.path();
        !ROUTES
            .iter()
            .chain(crate::api::v1::ROUTES)
            .any(|(_, pattern)| !pattern.contains('{') && *pattern == path)
    }
}

/// Declares every route once: the registration and the list tests check
/// (`ROUTES`) come from the same lines, so no route can escape the
/// authorization test.
macro_rules! route_table {
    ($( $method:ident $path:literal => $handler:path ),* $(,)?) => {
        /// Every route here: (method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[$( (stringify!($method), $path) ),*];

        pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
            $( cfg.route(
                $path,
                actix_web::web::$method()
                    .guard($crate::web::NotShadowed($path))
                    .to($handler),
            ); )*
        }
    };
}
pub(crate) use route_table;

route_table! {
    get "/" => home::landing,
    get "/healthz" => health::healthz,
    get "/readyz" => health::readyz,
    get "/metrics" => health::metrics,
    get "/static/{name}" => assets::asset,
    get "/auth/login" => auth::login,
    get "/auth/callback" => auth::callback,
    post "/auth/logout" => auth::logout,
    get "/auth/dev" => auth::dev_page,
    post "/auth/dev" => auth::dev_submit,
    get "/me" => me::profile,
    post "/me/tokens" => me::create_token,
    post "/me/notifications" => me::set_notifications,
    post "/me/tokens/{id}/revoke" => me::revoke_token,
    get "/teams" => teams::list,
    post "/teams" => teams::create,
    get "/teams/{slug}" => teams::show,
    post "/teams/{slug}/members" => teams::set_member,
    post "/teams/{slug}/members/{user_id}/remove" => teams::remove_member,
    post "/teams/{slug}/webhook" => teams::set_webhook,
    post "/teams/{slug}/webhook/delete" => teams::delete_webhook,
    get "/admin/users" => admin::users,
    post "/admin/users/{id}/revoke-sessions" => admin::revoke_sessions,
    get "/admin/audit" => admin::audit,
    get "/address-plan" => address_plan::overview,
    post "/address-plan/pools" => address_plan::create_pool,
    get "/address-plan/check-cidr" => address_plan::check_cidr,
    get "/address-plan/pools/{id}" => address_plan::pool,
    post "/address-plan/pools/{id}/allocations" => address_plan::allocate,
    post "/address-plan/allocations/{id}/release" => address_plan::release,
    get "/reach" => reach::show,
    get "/guardrails" => guardrails::show,
    post "/guardrails" => guardrails::save,
    get "/admin/provider-accounts" => provider_accounts::list,
    post "/admin/provider-accounts" => provider_accounts::create,
    get "/admin/sandbox" => sandbox::list,
    post "/admin/sandbox/{id}/change" => sandbox::change,
    post "/admin/sandbox/{id}/delete" => sandbox::delete,
    get "/networks" => networks::list,
    post "/networks" => networks::create,
    get "/networks/{id}" => networks::show,
    post "/networks/{id}/delete" => networks::delete,
    post "/networks/{id}/ownership/confirm" => networks::confirm_ownership,
    post "/networks/{id}/ownership/refuse" => networks::refuse_ownership,
    post "/networks/{id}/ownership/check" => networks::check_ownership,
    post "/networks/{id}/approve" => networks::approve,
    post "/networks/{id}/reject" => networks::reject,
    get "/admin/registrations" => networks::registrations,
    get "/connections" => connections::list,
    post "/connections" => connections::create,
    // Before "/connections/{id}", which would take these names as ids.
    get "/connections/new" => connections::new,
    get "/connections/plan-preview" => connections::plan_preview,
    get "/connections/{id}" => connections::show,
    post "/connections/{id}/approve" => connections::approve,
    post "/connections/{id}/reject" => connections::reject,
    post "/connections/{id}/cancel" => connections::cancel,
    get "/connections/{id}/progress" => connections::progress,
    post "/connections/{id}/remove" => connections::remove,
    post "/connections/{id}/retry" => connections::retry,
    get "/connections/{id}/renew" => renewals::show,
    post "/connections/{id}/renew" => renewals::renew,
    post "/renewals/{id}/approve" => renewals::approve,
    post "/renewals/{id}/reject" => renewals::reject,
    get "/connections/{id}/change" => changes::show,
    post "/connections/{id}/changes" => changes::create,
    post "/changes/{id}/approve" => changes::approve,
    post "/changes/{id}/reject" => changes::reject,
    get "/approvals" => connections::approvals,
    get "/status" => monitoring::status,
    get "/map" => map::show,
    get "/status/board" => monitoring::board,
    get "/connections/{id}/monitoring" => monitoring::monitoring,
    post "/connections/{id}/repair" => monitoring::repair,
    post "/connections/{id}/repair-mode" => monitoring::repair_mode,
    get "/dev/outbox" => outbox::outbox_page,
    get "/dev/outbox/{id}/html" => outbox::message_html,
    post "/dev/outbox/test-email" => outbox::send_test_email,
}
