//! Backstage's health routes, as `@backstage/backend-defaults` serves them at the root
//! of the backend, without authentication:
//!
//! - `GET /.backstage/health/v1/liveness`: `200 { status: 'ok' }` while the process answers;
//! - `GET /.backstage/health/v1/readiness`: `200 { status: 'ok' }` once the server is
//!   started (store open, plugins loaded, workers running), otherwise
//!   `503 { message, status: 'error' }`: `Backend has not started yet` before that, and
//!   `Backend is shutting down` from SIGTERM on, so a load balancer stops sending requests
//!   while the server drains.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Backstage's readiness route.
pub const READINESS_PATH: &str = "/.backstage/health/v1/readiness";
/// Backstage's liveness route.
pub const LIVENESS_PATH: &str = "/.backstage/health/v1/liveness";

/// Whether the server is ready: not until [`Health::mark_started`], and no longer once
/// the shutdown token is cancelled.
#[derive(Clone)]
pub struct Health {
    started: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl Health {
    /// Not ready yet; no longer ready once `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            started: Arc::new(AtomicBool::new(false)),
            shutdown,
        }
    }

    /// Everything is loaded and the server accepts requests.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// A token cancelled `delay` after the shutdown token (`backend.lifecycle.
    /// serverShutdownDelay`): the server keeps serving meanwhile, readiness answering 503,
    /// so a load balancer takes it out of rotation before connections drain.
    pub fn stop_serving_after(&self, delay: Duration) -> CancellationToken {
        let stop = CancellationToken::new();
        tokio::spawn({
            let (shutdown, stop) = (self.shutdown.clone(), stop.clone());
            async move {
                shutdown.cancelled().await;
                if !delay.is_zero() {
                    tracing::info!(
                        ?delay,
                        "readiness answers 503; still serving for backend.lifecycle.serverShutdownDelay"
                    );
                    tokio::time::sleep(delay).await;
                }
                stop.cancel();
            }
        });
        stop
    }

    /// The readiness answer: status and Backstage's body.
    pub fn readiness(&self) -> (StatusCode, serde_json::Value) {
        if self.shutdown.is_cancelled() {
            not_ready("Backend is shutting down")
        } else if !self.started.load(Ordering::Acquire) {
            not_ready("Backend has not started yet")
        } else {
            (StatusCode::OK, json!({ "status": "ok" }))
        }
    }
}

fn not_ready(message: &str) -> (StatusCode, serde_json::Value) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "message": message, "status": "error" }),
    )
}

/// The two routes, to merge at the root of the app (outside authentication).
pub fn router(health: Health) -> Router {
    Router::new()
        .route(READINESS_PATH, get(readiness))
        .route(LIVENESS_PATH, get(liveness))
        .with_state(health)
}

async fn readiness(State(health): State<Health>) -> Response {
    let (status, body) = health.readiness();
    (status, axum::Json(body)).into_response()
}

async fn liveness() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_is_false_until_started_and_from_shutdown_on() {
        let shutdown = CancellationToken::new();
        let health = Health::new(shutdown.clone());
        assert_eq!(
            health.readiness(),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "message": "Backend has not started yet", "status": "error" })
            )
        );
        health.mark_started();
        assert_eq!(
            health.readiness(),
            (StatusCode::OK, json!({ "status": "ok" }))
        );
        shutdown.cancel();
        assert_eq!(
            health.readiness(),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "message": "Backend is shutting down", "status": "error" })
            )
        );
    }
}
