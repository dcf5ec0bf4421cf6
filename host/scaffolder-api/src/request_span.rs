//! A span per request: method, path (never the query string, which may carry values a
//! caller considers private), and a request id, so every log line written while the
//! request is handled carries them; a closing line adds the status and the latency.
//!
//! The request id is the caller's `x-request-id` when it is sane (1 to 128 characters of
//! letters, digits, `-`, `_`, `.`, `:`), such as a load balancer's, otherwise a new UUID;
//! the response returns it in `x-request-id`.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Middleware: runs the request inside its span and returns the request id.
pub async fn request_span(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    // Health probes and metric scrapes come every few seconds: logged only on demand.
    let probe = path.starts_with("/.backstage/health/") || path == "/metrics";
    async move {
        let started = Instant::now();
        let mut response = next.run(request).await;
        let status = response.status().as_u16();
        let latency = started.elapsed();
        if probe {
            tracing::debug!(status, ?latency, "request finished");
        } else {
            tracing::info!(status, ?latency, "request finished");
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
    .instrument(span)
    .await
}

/// An incoming request id safe to log and return.
fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(is_sane("lb-7f3a-0001"));
        assert!(is_sane(
            "Root=1-67891233-abcdef012345678912345678"[5..].as_ref()
        ));
        assert!(!is_sane(""));
        assert!(!is_sane("two words"));
        assert!(!is_sane("line\nbreak"));
        assert!(!is_sane(&"x".repeat(129)));
    }
}
