//! Builds the actix application: routes, middleware and shared state.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::services::Context;
use crate::telemetry::{Metrics, RequestSpan, record_metrics};
use crate::web::ratelimit::Limits;
use crate::web::{self as pages, errors, session};

/// Pages may load only what this portal serves; nothing may frame them. Forms
/// may post only here (and to the identity provider, which sign-out redirects to).
pub fn content_security_policy(identity_provider: Option<&url::Url>) -> String {
    let idp = identity_provider
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; form-action 'self'{idp}; frame-ancestors 'none'"
    )
}

fn security_headers(https: bool, csp: &str) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, csp.to_owned()))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ))
        .add(("Cross-Origin-Opener-Policy", "same-origin"));
    if https {
        headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
    } else {
        headers
    }
}

/// A bound, not yet running web server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `listener` (port 0 in tests) and prepares the server on it.
    pub fn build(
        listener: TcpListener,
        ctx: Context,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let https = ctx.settings.base_url.scheme() == "https";
        let csp = content_security_policy(ctx.settings.oidc.as_ref().map(|o| &o.issuer));
        let ctx = web::Data::new(ctx);
        let metrics = web::Data::new(metrics);
        let limits = web::Data::new(Limits::default());
        let server = HttpServer::new(move || {
            App::new()
                // Innermost first: text no handler may see is refused; then
                // authentication (and CSRF) errors are rendered
                // like every other error; metrics count the final status; the
                // tracing span (with its request id) wraps everything.
                .wrap(from_fn(crate::web::text::refuse_bad_text))
                .wrap(from_fn(session::authenticate))
                .wrap(from_fn(pages::errors::render_errors))
                .wrap(from_fn(pages::errors::refusals_to_htmx_as_pages))
                .wrap(from_fn(crate::web::flash_middleware))
                .wrap(security_headers(https, &csp))
                .wrap(from_fn(record_metrics))
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(ctx.clone())
                .app_data(metrics.clone())
                .app_data(limits.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(64 * 1024)
                        .error_handler(|e, _| {
                            errors::payload_error(format!("the form could not be read: {e}"))
                        }),
                )
                .app_data(
                    web::JsonConfig::default()
                        .limit(256 * 1024)
                        .error_handler(|e, _| {
                            errors::payload_error(format!("the JSON body could not be read: {e}"))
                        }),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    errors::payload_error(format!("the query string could not be read: {e}"))
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    errors::payload_error(format!("the path could not be read: {e}"))
                }))
                .configure(pages::routes)
                .configure(crate::api::v1::routes)
                .default_service(web::to(errors::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(30)
        .disable_signals()
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server handle: `await` it to serve; its handle stops it gracefully.
    pub fn into_server(self) -> Server {
        self.server
    }
}
