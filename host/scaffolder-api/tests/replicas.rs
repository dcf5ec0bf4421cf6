//! Two replicas on one PostgreSQL database: what one writes reaches the other through the
//! store's notifications, not its poll. Both poll only every ten minutes here, so a test
//! that passes within its (generous) deadline was woken by a notification.

mod common;

use std::time::Duration;

use common::{Options, TestServer};
use scaffolder_store::Backend;
use serde_json::{Value as Json, json};

/// Far beyond what a notification takes, far below the poll (streams wait a minute).
const DEADLINE: Duration = Duration::from_secs(30);

fn options(concurrent_tasks_limit: usize) -> Options {
    Options {
        concurrent_tasks_limit,
        poll_interval: Some(Duration::from_secs(600)),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_another_replica_sends_the_events_and_the_completion() {
    let runner = TestServer::start_with(Backend::Postgres, options(4)).await;
    let api_only = runner.start_beside(options(0)).await;
    runner.wait_for_listeners(2).await;

    let id = runner
        .scaffold("conformance-slow", json!({ "name": "svc", "millis": 1000 }))
        .await;
    let (_, frames) = api_only
        .event_stream(&format!("/v2/tasks/{id}/eventstream"))
        .await;
    let frames: Vec<Json> = frames.into_iter().map(|(_, data)| data).collect();

    let (_, stored) = runner.get(&format!("/v2/tasks/{id}/events")).await;
    let ids = |events: &[Json]| -> Vec<i64> {
        events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(
        ids(&frames),
        ids(stored.as_array().unwrap()),
        "every event once, in order"
    );
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "completion");
    assert_eq!(
        last["body"]["message"],
        "Run completed with status: completed"
    );

    api_only.finish().await;
    runner.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_on_a_replica_without_workers_is_claimed_by_another_at_once() {
    let api_only = TestServer::start_with(Backend::Postgres, options(0)).await;
    let runner = api_only.start_beside(options(4)).await;
    api_only.wait_for_listeners(2).await;

    let id = api_only
        .scaffold("conformance", json!({ "name": "svc" }))
        .await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, task) = api_only.get(&format!("/v2/tasks/{id}")).await;
        if task["status"] == "completed" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other replica's worker never claimed the task: {task}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    runner.finish().await;
    api_only.finish().await;
}
