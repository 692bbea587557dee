//! Logs (tracing to stdout) and Prometheus metrics.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init_tracing(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub queue: String,
    pub state: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Process-wide metrics, shared by the web server and the workers.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    jobs: Family<JobLabels, Gauge>,
    sweep_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    sweep_observed: Gauge,
    account_seconds: Family<AccountLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    account_observed: Family<AccountLabels, Gauge>,
    account_unknown: Family<AccountLabels, Gauge>,
    open_drift: Gauge,
    unreadable: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            requests.clone(),
        );
        let latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern",
            latency.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs in the queue by queue and state, read at scrape time",
            jobs.clone(),
        );
        let sweep_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "monitor_sweep_seconds",
            "How long the monitor's last sweep took",
            sweep_seconds.clone(),
        );
        let sweep_observed = Gauge::default();
        registry.register(
            "monitor_connections_observed",
            "Connections observed by the monitor's last sweep",
            sweep_observed.clone(),
        );
        let account_seconds =
            Family::<AccountLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "monitor_account_seconds",
            "How long each provider account took to answer the last sweep",
            account_seconds.clone(),
        );
        let account_observed = Family::<AccountLabels, Gauge>::default();
        registry.register(
            "monitor_account_connections",
            "Connections observed in each provider account by the last sweep",
            account_observed.clone(),
        );
        let account_unknown = Family::<AccountLabels, Gauge>::default();
        registry.register(
            "monitor_account_unreachable",
            "1 when the provider account could not be asked at the last sweep",
            account_unknown.clone(),
        );
        let open_drift = Gauge::default();
        registry.register(
            "drift_events_open",
            "Drift episodes not yet closed",
            open_drift.clone(),
        );
        let unreadable = Gauge::default();
        registry.register(
            "monitor_unreadable_connections",
            "Connections the monitor's last sweep skipped because their stored plan could not be read",
            unreadable.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            jobs,
            sweep_seconds,
            sweep_observed,
            account_seconds,
            account_observed,
            account_unknown,
            open_drift,
            unreadable,
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Replaces the job gauges with a fresh count from the queue.
    pub fn set_job_counts(&self, counts: &[(String, String, i64)]) {
        self.jobs.clear();
        for (queue, state, count) in counts {
            self.jobs
                .get_or_create(&JobLabels {
                    queue: queue.clone(),
                    state: state.clone(),
                })
                .set(*count);
        }
    }

    /// Replaces the monitor's gauges with figures read from the database.
    pub fn set_monitor(&self, m: &crate::store::monitoring::Figures) {
        self.sweep_seconds.set(m.sweep_seconds.unwrap_or(0.0));
        self.sweep_observed.set(m.observed.unwrap_or(0));
        self.open_drift.set(m.open_drift);
        self.unreadable.set(m.unreadable.0);
        self.account_seconds.clear();
        self.account_observed.clear();
        self.account_unknown.clear();
        for (account, seconds, observed, unknown) in &m.accounts {
            let labels = AccountLabels {
                account: account.clone(),
            };
            self.account_seconds.get_or_create(&labels).set(*seconds);
            self.account_observed.get_or_create(&labels).set(*observed);
            self.account_unknown
                .get_or_create(&labels)
                .set(i64::from(*unknown));
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: counts every request under its route *pattern* (so ids in paths do
/// not explode the label set).
pub async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let metrics = req.app_data::<web::Data<Arc<Metrics>>>().cloned();
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        metrics.observe_request(
            &method,
            &route,
            res.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(res)
}

/// The span of every request. Unlike the default it records the path *without*
/// the query string: sign-in callbacks carry codes there, which must not reach logs.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            route = %request.match_pattern().unwrap_or_else(|| "unmatched".into()),
            request_id = %request_id,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
