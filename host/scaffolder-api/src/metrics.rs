//! `GET /metrics`: Prometheus text for operators, on the API's listener.
//!
//! The crates record through the `metrics` facade and know nothing of Prometheus:
//! steps in the engine ([`scaffolder_engine::STEP_DURATION_METRIC`]), store calls in the
//! store ([`scaffolder_store::QUERY_DURATION_METRIC`]), sandbox denials in the runtime
//! (`scaffolder_sandbox_denials_total{kind}`) and open event streams here. `scaffolder
//! serve` installs the recorder with [`install_recorder`]; this route renders it.
//!
//! Tasks by status and the queue depth are read from the store at each scrape (one
//! `GROUP BY` over the status index), so every replica reports the whole store, not what
//! it saw itself: sum nothing across replicas, take any one.
//!
//! The route authenticates as the API does: open in development mode (no `backend.auth`),
//! a bearer token (a static `externalAccess` token suits Prometheus' `authorization`
//! setting) otherwise.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use scaffolder_store::TaskStatus;

use crate::error::ApiError;
use crate::{ApiState, authenticate};

/// Where the route is served, outside the scaffolder's base path.
pub const PATH: &str = "/metrics";

const TASKS: &str = "scaffolder_tasks";
const QUEUE_DEPTH: &str = "scaffolder_queue_depth";
const STREAMS: &str = "scaffolder_event_streams_active";

/// Steps take from milliseconds (a skipped step) to many minutes (a build).
const STEP_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];
/// Store calls: sub-millisecond on SQLite, a few milliseconds over a network.
const STORE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const STATUSES: [TaskStatus; 6] = [
    TaskStatus::Open,
    TaskStatus::Processing,
    TaskStatus::Completed,
    TaskStatus::Failed,
    TaskStatus::Cancelled,
    TaskStatus::Skipped,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process; `/metrics` answers 404 until
/// then. Call once, inside the Tokio runtime (a task drains histograms every few seconds
/// between scrapes); a second call fails.
pub fn install_recorder() -> Result<(), BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(scaffolder_engine::STEP_DURATION_METRIC.into()),
            STEP_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(scaffolder_store::QUERY_DURATION_METRIC.into()),
            STORE_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(TASKS, "Tasks in the store by status (read at scrape time).");
    describe_gauge!(
        QUEUE_DEPTH,
        "Open tasks waiting for a worker (read at scrape time)."
    );
    describe_gauge!(
        STREAMS,
        "Event streams open on this replica, by kind (eventstream, long_poll)."
    );
    describe_histogram!(
        scaffolder_engine::STEP_DURATION_METRIC,
        Unit::Seconds,
        "Steps run, by action, plugin digest and outcome."
    );
    describe_histogram!(
        scaffolder_store::QUERY_DURATION_METRIC,
        Unit::Seconds,
        "Store calls, by operation."
    );
    describe_counter!(
        scaffolder_runtime::DENIALS_METRIC,
        "Operations the sandbox refused to plugins, by kind."
    );
}

/// The `/metrics` route, authenticated like the API's.
pub(crate) fn router(state: ApiState) -> Router {
    Router::new()
        .route(PATH, get(scrape))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(crate::error::standard_error_body))
        .with_state(state)
}

async fn scrape(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let Some(handle) = HANDLE.get() else {
        return Err(ApiError::not_found(
            "metrics are not recorded in this process (scaffolder serve records them)",
        ));
    };
    let counts = state.engine.store().task_counts().await?;
    let count = |status: TaskStatus| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    for status in STATUSES {
        metrics::gauge!(TASKS, "status" => status.as_str()).set(count(status) as f64);
    }
    metrics::gauge!(QUEUE_DEPTH).set(count(TaskStatus::Open) as f64);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}

/// An open event stream, counted in `scaffolder_event_streams_active{kind}` while it
/// lives.
pub(crate) struct OpenStream(&'static str);

impl OpenStream {
    /// `kind`: `eventstream` (Server-Sent Events) or `long_poll`.
    pub(crate) fn new(kind: &'static str) -> Self {
        metrics::gauge!(STREAMS, "kind" => kind).increment(1.0);
        Self(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(STREAMS, "kind" => self.0).decrement(1.0);
    }
}
