//! Backstage's health routes and the request span, against the real binary: readiness
//! answers 200 once the server serves and 503 from SIGTERM on, while liveness keeps
//! answering 200; both without a token. Every request gets an `x-request-id` (the
//! caller's when it is sane) that its log lines carry.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
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

/// With `SCAFFOLDER_LOG_FORMAT=json` every log line is one JSON object, a request's with
/// its span's fields (the request id among them), for a log collector to index.
#[test]
fn json_logs_are_one_object_a_line_with_the_request_span() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_fixtures(
        &dir.path().join("data"),
        &[],
        &[("SCAFFOLDER_LOG_FORMAT", "json")],
    );
    let response = client()
        .get(format!("{}/v2/tasks/not-a-uuid", server.base))
        .header("x-request-id", "json-probe-0001")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = server.output();
        let lines: Vec<Json> = output
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let of_request = lines
            .iter()
            .find(|l| l["span"]["request_id"] == "json-probe-0001");
        if let Some(line) = of_request {
            assert!(
                line["level"].is_string() && line["fields"]["message"].is_string(),
                "{line}"
            );
            assert_eq!(line["span"]["path"], "/api/scaffolder/v2/tasks/not-a-uuid");
            assert!(
                output
                    .lines()
                    .filter(|l| l.contains("INFO") || l.contains("WARN"))
                    .all(|l| l.starts_with('{')),
                "every log line is JSON:\n{output}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no JSON line of the request:\n{output}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// What a collector received: each request's line and body.
type Exports = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An OTLP/HTTP collector on a free port: the path and body of every request it receives.
struct Collector {
    endpoint: String,
    received: Exports,
}

impl Collector {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Exports::default();
        let kept = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let _ = serve_exports(stream, &kept);
                });
            }
        });
        Self { endpoint, received }
    }

    fn exports(&self) -> Vec<(String, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }
}

/// Answers 200 to each request on a kept-alive connection, keeping its line and body.
fn serve_exports(
    stream: TcpStream,
    received: &Mutex<Vec<(String, Vec<u8>)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        received
            .lock()
            .unwrap()
            .push((line.trim_end().to_owned(), body));
        writer.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        )?;
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn request_spans_are_exported_over_otlp_when_an_endpoint_is_configured() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_fixtures(
        &dir.path().join("data"),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let response = client()
        .get(format!("{}/v2/actions", server.base))
        .header("x-request-id", "otel-probe-0001")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Exit flushes whatever the batch has not sent yet.
    assert!(server.terminate().success());

    let exports = collector.exports();
    let span = exports.iter().find(|(line, body)| {
        line.starts_with("POST /v1/traces ")
            && contains(body, "request")
            && contains(body, "otel-probe-0001")
            && contains(body, "/api/scaffolder/v2/actions")
    });
    assert!(
        span.is_some(),
        "no exported span of the request among {:?}",
        exports
            .iter()
            .map(|(line, body)| format!("{line} ({} bytes)", body.len()))
            .collect::<Vec<_>>()
    );
}
