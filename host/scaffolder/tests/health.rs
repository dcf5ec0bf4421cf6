//! Backstage's health routes and the request span, against the real binary: readiness
//! answers 200 once the server serves and 503 from SIGTERM on, while liveness keeps
//! answering 200; both without a token. Every request gets an `x-request-id` (the
//! caller's when it is sane) that its log lines carry.

mod common;

use std::time::{Duration, Instant};

use common::{Server, client, serve_fixtures};
use serde_json::{Value as Json, json};

const TOKEN: &str = "health-test-token";
const READINESS: &str = "/.backstage/health/v1/readiness";
const LIVENESS: &str = "/.backstage/health/v1/liveness";

/// A server that requires a token, keeps serving `delay` after SIGTERM, and its origin.
fn server(dir: &tempfile::TempDir, delay: &str) -> (Server, String) {
    let config = dir.path().join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "backend:\n  lifecycle:\n    serverShutdownDelay: {delay}\n  auth:\n    externalAccess:\n      - type: static\n        options: {{ token: {TOKEN}, subject: tests }}\n"
        ),
    )
    .unwrap();
    let server = serve_fixtures(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let origin = server
        .base
        .strip_suffix("/api/scaffolder")
        .unwrap()
        .to_owned();
    (server, origin)
}

/// `(status, body)` of an unauthenticated GET.
fn probe(origin: &str, path: &str) -> (u16, Json) {
    let response = client().get(format!("{origin}{path}")).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Json::Null))
}

#[test]
fn health_routes_flip_during_startup_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, origin) = server(&dir, "3s");

    // Started: both answer 200 with Backstage's body, without a token (the API needs one).
    assert_eq!(probe(&origin, READINESS), (200, json!({ "status": "ok" })));
    assert_eq!(probe(&origin, LIVENESS), (200, json!({ "status": "ok" })));
    assert_eq!(probe(&origin, "/api/scaffolder/v2/actions").0, 401);

    // SIGTERM: readiness says 503 at once, while the server still answers during the
    // configured shutdown delay (so a load balancer takes it out before it stops).
    server.signal("TERM");
    let terminated = Instant::now();
    let (status, body) = probe(&origin, READINESS);
    assert_eq!(
        (status, &body),
        (
            503,
            &json!({ "message": "Backend is shutting down", "status": "error" })
        ),
        "readiness after SIGTERM"
    );
    assert_eq!(probe(&origin, LIVENESS), (200, json!({ "status": "ok" })));
    assert!(
        terminated.elapsed() < Duration::from_secs(3),
        "the probes took the whole shutdown delay"
    );
    let status = server.terminate();
    assert!(status.success(), "exit after the delay: {status:?}");
    assert!(
        terminated.elapsed() >= Duration::from_secs(3),
        "the server stopped before its serverShutdownDelay"
    );
}

#[test]
fn every_request_gets_a_request_id_in_its_header_and_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (server, origin) = server(&dir, "0s");

    // A sane incoming id is kept, and the request's log lines carry it (this one is
    // refused with 401, which is logged with the reason).
    let response = client()
        .get(format!("{origin}/api/scaffolder/v2/actions?secret=hunter2"))
        .header("x-request-id", "lb-7f3a-0001")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["x-request-id"], "lb-7f3a-0001");

    // Without one (or with one that is not sane) the server makes a UUID.
    let mut generated = Vec::new();
    for incoming in [
        None,
        Some("spaces are not allowed"),
        Some(&*"x".repeat(300)),
    ] {
        let mut request = client()
            .get(format!("{origin}/api/scaffolder/v2/actions"))
            .bearer_auth(TOKEN);
        if let Some(incoming) = incoming {
            request = request.header("x-request-id", incoming);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            uuid_like(&id),
            "{incoming:?} answered with request id {id:?}"
        );
        generated.push(id);
    }
    generated.dedup();
    assert_eq!(generated.len(), 3, "ids are unique: {generated:?}");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = server.output();
        let refused = output
            .lines()
            .any(|l| l.contains("lb-7f3a-0001") && l.contains("refused with 401"));
        let finished = generated.iter().all(|id| {
            output
                .lines()
                .any(|l| l.contains(id.as_str()) && l.contains("/api/scaffolder/v2/actions"))
        });
        if refused && finished {
            assert!(!output.contains("hunter2"), "the query string was logged");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with the request ids (refused: {refused}, finished: {finished}):\n{output}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
