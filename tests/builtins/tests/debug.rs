//! `debug:log` and `debug:wait` through the engine.

use std::time::{Duration, Instant};

use scaffolder_builtins_tests::{Harness, log_messages};
use serde_json::json;

const INFO: &str = "\u{1b}[32minfo\u{1b}[39m: ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_writes_the_input_the_message_and_the_workspace() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([
                { "id": "hello", "action": "debug:log", "input": { "message": "Hello ${{ parameters.who }}!" } },
                { "id": "list", "action": "debug:log", "input": { "listWorkspace": "with-filenames" } }
            ]),
            json!({ "who": "Backstage" }),
            &[],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    let messages = run.messages();
    assert!(
        messages.contains(&format!(
            "{INFO}{{\n  \"message\": \"Hello Backstage!\"\n}}"
        )),
        "{messages:#?}"
    );
    assert!(messages.contains(&format!("{INFO}Hello Backstage!")));
    assert!(
        messages.contains(&format!("{INFO}Workspace:\n")),
        "an empty workspace lists nothing: {messages:#?}"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lists_the_workspace_depth_first_as_backstage_does() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([
                { "id": "fetch", "action": "fetch:plain", "input": { "url": "./skeleton" } },
                { "id": "names", "action": "debug:log", "input": { "listWorkspace": true } },
                { "id": "contents", "action": "debug:log", "input": { "listWorkspace": "with-contents" } }
            ]),
            json!({}),
            &[
                ("skeleton/a.txt", "dot"),
                ("skeleton/a/x", "slash"),
                ("skeleton/b.bin", "\u{0}\u{ff}"),
            ],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    let messages = run.messages();
    // `a/` sorts before `a.txt` by name, though `a.txt` < `a/x` as paths.
    assert!(
        messages.contains(&format!("{INFO}Workspace:\n  - a/x\n  - a.txt\n  - b.bin")),
        "{messages:#?}"
    );
    // One space before the dash with contents; a binary file read as text (the host drops
    // control characters from log lines, so the NUL does not show).
    assert!(
        messages.contains(&format!(
            "{INFO}Workspace:\n - a/x:\n\n  slash\n - a.txt:\n\n  dot\n - b.bin:\n\n  \u{ff}"
        )),
        "{messages:#?}"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_validates_its_input() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([{ "id": "x", "action": "debug:log", "input": { "mesage": "typo" } }]),
            json!({}),
            &[],
        )
        .await;
    let error = run.error().unwrap();
    assert!(
        error.starts_with("Invalid input passed to action debug:log, "),
        "{error}"
    );
    assert!(error.contains("mesage"), "names the unknown key: {error}");
    let run = harness
        .run(json!([{ "id": "x", "action": "debug:log", "input": { "listWorkspace": "everything" } }]), json!({}), &[])
        .await;
    assert!(
        run.error()
            .unwrap()
            .starts_with("Invalid input passed to action debug:log")
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_runs_in_a_dry_run() {
    let harness = Harness::new().await;
    let result = harness
        .dry_run(
            json!([{ "id": "x", "action": "debug:log", "input": { "message": "dry" } }]),
            json!({}),
            &[],
        )
        .await
        .unwrap();
    let messages = log_messages(&result);
    assert!(
        messages.contains(&"\u{1b}[32minfo\u{1b}[39m: dry"),
        "{messages:#?}"
    );
    assert!(messages.contains(&"Finished step debug:log"));
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_waits_the_sum_of_its_inputs() {
    let harness = Harness::new().await;
    let started = Instant::now();
    let run = harness
        .run(json!([{ "id": "w", "action": "debug:wait", "input": { "seconds": 0.2, "milliseconds": 100 } }]), json!({}), &[])
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert!(started.elapsed() >= Duration::from_millis(300));
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_refuses_more_than_ten_minutes_and_unknown_or_wrong_inputs() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([{ "id": "w", "action": "debug:wait", "input": { "minutes": 11 } }]),
            json!({}),
            &[],
        )
        .await;
    assert_eq!(
        run.error(),
        Some("Waiting duration is longer than the maximum threshold of 10 minutes")
    );
    let run = harness
        .run(
            json!([{ "id": "w", "action": "debug:wait", "input": { "hours": 1 } }]),
            json!({}),
            &[],
        )
        .await;
    assert!(
        run.error()
            .unwrap()
            .starts_with("Invalid input passed to action debug:wait, ")
    );
    let run = harness
        .run(
            json!([{ "id": "w", "action": "debug:wait", "input": { "seconds": "five" } }]),
            json!({}),
            &[],
        )
        .await;
    assert!(
        run.error().unwrap().contains("seconds"),
        "{:?}",
        run.error()
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_is_skipped_in_a_dry_run() {
    let harness = Harness::new().await;
    let started = Instant::now();
    let result = harness
        .dry_run(
            json!([{ "id": "w", "action": "debug:wait", "input": { "minutes": 5 } }]),
            json!({}),
            &[],
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let messages = log_messages(&result);
    assert!(
        messages.contains(&"Skipping because debug:wait does not support dry-run"),
        "{messages:#?}"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ends_early_when_the_task_is_cancelled() {
    let harness = Harness::new().await;
    let engine = harness.engine.clone();
    let started = Instant::now();
    let run = {
        let run = harness.run(
            json!([{ "id": "w", "action": "debug:wait", "input": { "minutes": 5 } }]),
            json!({}),
            &[],
        );
        let cancel = async {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let (tasks, _) = engine
                    .store()
                    .list_tasks(&Default::default())
                    .await
                    .unwrap();
                if let Some(task) = tasks.first()
                    && task.status == scaffolder_store::TaskStatus::Processing
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    engine.cancel_task(&task.id).await.unwrap();
                    return;
                }
            }
        };
        let (run, ()) = tokio::join!(run, cancel);
        run
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        run.error().unwrap().contains("has been cancelled"),
        "{:?}",
        run.error()
    );
    harness.finish().await;
}
