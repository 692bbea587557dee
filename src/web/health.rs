//! Liveness, readiness and metrics for operators and load balancers.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::services::Context;
use crate::store;
use crate::telemetry::Metrics;

/// The process is up and serving HTTP.
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can do useful work: the database answers within two seconds.
pub(super) async fn readyz(ctx: web::Data<Context>) -> HttpResponse {
    match tokio::time::timeout(Duration::from_secs(2), store::ping(&ctx.pool)).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            not_ready()
        }
        Err(_) => {
            tracing::warn!("not ready: database did not answer within 2 s");
            not_ready()
        }
    }
}

fn not_ready() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .json(json!({ "status": "unavailable", "database": "unreachable" }))
}

/// Prometheus scrape endpoint (OpenMetrics text).
pub(super) async fn metrics(
    ctx: web::Data<Context>,
    metrics: web::Data<Arc<Metrics>>,
) -> HttpResponse {
    // Queue depth is read at scrape time; a slow database must not hang the scrape.
    if let Ok(Ok(counts)) =
        tokio::time::timeout(Duration::from_secs(2), store::queue::job_counts(&ctx.pool)).await
    {
        metrics.set_job_counts(&counts);
    }
    if let Ok(Ok(figures)) = tokio::time::timeout(
        Duration::from_secs(2),
        store::monitoring::figures(&ctx.pool),
    )
    .await
    {
        metrics.set_monitor(&figures);
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}
