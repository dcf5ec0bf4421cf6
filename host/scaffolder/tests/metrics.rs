//! `GET /metrics` on the real binary: Prometheus text with tasks by status, queue depth,
//! step durations by action and plugin digest, store latency and sandbox denials.

mod common;

use std::time::{Duration, Instant};

use common::{Server, client, get, post, serve_fixtures, wait_for_event};
use serde_json::json;

/// `(status, body)` of `GET /metrics` on the server's listener.
fn scrape(server: &Server) -> (u16, String) {
    let origin = server.base.trim_end_matches("/api/scaffolder");
    let response = client().get(format!("{origin}/metrics")).send().unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap())
}

/// The value of the sample `name{labels}` (labels as the exporter prints them, in any
/// order: each `key="value"` given must be among the sample's).
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        (metric == name && labels.iter().all(|l| rest.contains(l))).then(|| value.parse().ok())?
    })
}

/// Creates a task and returns its id.
fn start_task(server: &Server, template: &str, values: serde_json::Value) -> String {
    let (status, body) = post(
        &server.base,
        "/v2/tasks",
        json!({ "templateRef": template, "values": values }),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Runs a task to completion and returns its id.
fn run_task(server: &Server, template: &str, values: serde_json::Value) -> String {
    let task_id = start_task(server, template, values);
    wait_for_event(&server.base, &task_id, |e| e["type"] == "completion");
    task_id
}

/// The metrics once `ready` accepts them; gauges are read from the store at scrape time,
/// and a task's status is written just after its completion event.
fn scrape_until(server: &Server, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, text) = scrape(server);
        assert_eq!(status, 200, "{text}");
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "metrics never matched:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_finished_task_shows_in_the_task_step_and_store_metrics() {
    let data = tempfile::tempdir().unwrap();
    let server = serve_fixtures(data.path(), &[], &[]);
    run_task(&server, "conformance", json!({ "name": "metrics" }));

    let text = scrape_until(&server, |text| {
        sample(text, "scaffolder_tasks", &["status=\"completed\""]) == Some(1.0)
    });
    assert_eq!(
        sample(&text, "scaffolder_tasks", &["status=\"open\""]),
        Some(0.0),
        "every status has a sample, zero included:\n{text}"
    );
    assert_eq!(
        sample(&text, "scaffolder_queue_depth", &[]),
        Some(0.0),
        "{text}"
    );

    // Both steps of `conformance`, by action, with the friendly plugin's digest.
    let (_, plugins) = get(&server.base, "/v2/plugins");
    let digest = plugins
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "friendly"))
        .and_then(|p| p["digest"].as_str())
        .map(str::to_owned);
    for action in ["friendly:write-file", "friendly:count"] {
        let action_label = format!("action=\"{action}\"");
        let mut labels = vec![action_label.as_str(), "outcome=\"completed\""];
        let digest_label = digest.as_ref().map(|d| format!("plugin_digest=\"{d}\""));
        if let Some(digest_label) = &digest_label {
            labels.push(digest_label);
        }
        assert_eq!(
            sample(&text, "scaffolder_step_duration_seconds_count", &labels),
            Some(1.0),
            "{action} ran once:\n{text}"
        );
    }
    assert!(
        text.contains("# TYPE scaffolder_step_duration_seconds histogram"),
        "{text}"
    );
    // A step's output is saved with its `Finished step` event; events go alone
    // (`append_events`) when no output goes with them, which a run of two completed
    // steps may or may not have.
    for operation in ["claim_task", "write_state_and_log_events", "complete_task"] {
        let label = format!("operation=\"{operation}\"");
        let count = sample(
            &text,
            "scaffolder_store_query_duration_seconds_count",
            &[&label],
        );
        assert!(count.is_some_and(|n| n >= 1.0), "{operation}:\n{text}");
    }
}

#[test]
fn a_sandbox_denial_is_counted_by_kind() {
    let data = tempfile::tempdir().unwrap();
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("escape.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\n\
         kind: Template\n\
         metadata:\n  name: escape\n\
         spec:\n  type: service\n  steps:\n\
         \x20   - id: escape\n      action: hostile:escape-dotdot\n",
    )
    .unwrap();
    let server = Server::spawn(
        data.path(),
        &[
            "--templates",
            templates.path().to_str().unwrap(),
            "--plugin",
            scaffolder_test_artifacts::HOSTILE_GUEST,
        ],
        &[],
    );
    run_task(&server, "escape", json!({}));

    let text = scrape_until(&server, |text| {
        sample(text, "scaffolder_tasks", &["status=\"failed\""]) == Some(1.0)
    });
    let denials = sample(
        &text,
        "scaffolder_sandbox_denials_total",
        &["kind=\"filesystem\""],
    );
    assert!(denials.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "scaffolder_step_duration_seconds_count",
            &["action=\"hostile:escape-dotdot\"", "outcome=\"failed\""],
        ),
        Some(1.0),
        "{text}"
    );
}

/// An open SSE stream and a waiting long poll count 1 each while the task sleeps, and 0
/// once the task's completion has ended both.
#[test]
fn open_event_streams_are_counted() {
    let data = tempfile::tempdir().unwrap();
    let server = serve_fixtures(data.path(), &[], &[]);
    let task_id = start_task(&server, "resume", json!({ "millis": 5000 }));
    wait_for_event(&server.base, &task_id, |e| {
        e["body"]["stepId"] == "sleep" && e["body"]["status"] == "processing"
    });
    let sse = {
        let url = format!("{}/v2/tasks/{task_id}/eventstream", server.base);
        std::thread::spawn(move || client().get(url).send().and_then(|r| r.text()))
    };
    // A long poll after every event so far waits for the next one.
    let poll = {
        let url = format!("{}/v2/tasks/{task_id}/events?after=999999999", server.base);
        std::thread::spawn(move || client().get(url).send().map(|r| r.status().as_u16()))
    };
    let text = scrape_until(&server, |text| {
        sample(text, STREAMS, &["kind=\"long_poll\""]) == Some(1.0)
            && sample(text, STREAMS, &["kind=\"eventstream\""]) == Some(1.0)
    });
    assert!(
        text.contains("# TYPE scaffolder_event_streams_active gauge"),
        "{text}"
    );

    let streamed = sse.join().unwrap().unwrap();
    assert!(streamed.contains("event: completion"), "{streamed}");
    assert_eq!(poll.join().unwrap().unwrap(), 200);
    scrape_until(&server, |text| {
        sample(text, STREAMS, &["kind=\"long_poll\""]) == Some(0.0)
            && sample(text, STREAMS, &["kind=\"eventstream\""]) == Some(0.0)
    });
}

/// A stream whose client goes away is over at once, though its task still runs: nothing
/// of it stays on the server.
#[test]
fn an_event_stream_ends_when_its_client_leaves() {
    let data = tempfile::tempdir().unwrap();
    let server = serve_fixtures(data.path(), &[], &[]);
    let task_id = start_task(&server, "resume", json!({ "millis": 20000 }));
    let mut response = client()
        .get(format!("{}/v2/tasks/{task_id}/eventstream", server.base))
        .send()
        .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut response, &mut first).unwrap();
    scrape_until(&server, |text| {
        sample(text, STREAMS, &["kind=\"eventstream\""]) == Some(1.0)
    });

    drop(response);
    scrape_until(&server, |text| {
        sample(text, STREAMS, &["kind=\"eventstream\""]) == Some(0.0)
    });
    let (status, task) = get(&server.base, &format!("/v2/tasks/{task_id}"));
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["status"], "processing", "{task}");
}

const STREAMS: &str = "scaffolder_event_streams_active";

/// With authentication configured, `/metrics` wants a token like the API (Prometheus
/// sends a static `externalAccess` token with its `authorization` setting).
#[test]
fn with_auth_configured_metrics_need_a_token() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options:\n          token: a-long-static-token\n          subject: prometheus\n",
    )
    .unwrap();
    let server = serve_fixtures(data.path(), &["--config", config.to_str().unwrap()], &[]);
    let (status, text) = scrape(&server);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("AuthenticationError"), "{text}");

    let origin = server.base.trim_end_matches("/api/scaffolder");
    let response = client()
        .get(format!("{origin}/metrics"))
        .bearer_auth("a-long-static-token")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().unwrap();
    assert!(text.contains("scaffolder_queue_depth 0"), "{text}");
}
