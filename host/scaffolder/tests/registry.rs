//! `examples/backstage-registry` end to end: the real Backstage backend of
//! `tests/backstage/` (backend-defaults 0.18, scaffolder-backend 4.2.0) with the
//! example's `backstage-app-config.yaml`, our server with the example's
//! `app-config.yaml`, and the real PostgreSQL on 127.0.0.1:5432. Backstage's own
//! scaffolder lists our action and runs the example template to completion; the
//! database is checked on PostgreSQL itself.

mod common;

use std::time::{Duration, Instant};

use common::postgres::{ADMIN_URL, database_exists, drop_database};
use common::{Server, get_as, post_as, repo};
use scaffolder_test_artifacts::backstage::{Backstage, free_port};
use serde_json::{Value as Json, json};

/// Backstage's static external-access token (the tasks' initiator).
const TOKEN: &str = "registry-e2e-caller-token";

/// Backstage's task once it has ended, and its events.
fn wait_for_backstage_task(backstage: &str, task_id: &str) -> (Json, Vec<Json>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, task) = get_as(
            backstage,
            &format!("/api/scaffolder/v2/tasks/{task_id}"),
            Some(TOKEN),
        );
        assert_eq!(status, 200, "{task}");
        if matches!(
            task["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            let (_, events) = get_as(
                backstage,
                &format!("/api/scaffolder/v2/tasks/{task_id}/events"),
                Some(TOKEN),
            );
            return (task, events.as_array().cloned().unwrap_or_default());
        }
        assert!(
            Instant::now() < deadline,
            "Backstage's task never ended: {task}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn backstage_runs_a_template_with_our_action_through_its_actions_registry() {
    let data = tempfile::tempdir().unwrap();
    let example = repo().join("examples/backstage-registry");
    let backstage_port = free_port();
    let backstage_url = format!("http://127.0.0.1:{backstage_port}");
    let server = Server::spawn(
        &data.path().join("scaffolder"),
        &[
            "--config",
            example.join("app-config.yaml").to_str().unwrap(),
        ],
        &[
            ("BACKSTAGE_BASE_URL", &backstage_url),
            ("POSTGRES_ADMIN_URL", ADMIN_URL),
            ("POSTGRES_ADDRESS", "127.0.0.1:5432"),
        ],
    );
    let ours = server.base.strip_suffix("/api/scaffolder").unwrap();
    let backstage = Backstage::start_with(
        Some(&example.join("template.yaml")),
        TOKEN,
        backstage_port,
        Some(&example.join("backstage-app-config.yaml")),
        &[("WASM_ACTIONS_URL", ours)],
    );

    let (status, actions) = get_as(&backstage.base, "/api/scaffolder/v2/actions", Some(TOKEN));
    assert_eq!(status, 200, "{actions}");
    let ours_listed: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .filter(|id| id.starts_with("wasm-actions:"))
        .collect();
    assert_eq!(
        ours_listed,
        ["wasm-actions:postgres:database:create"],
        "Backstage lists the exposed action: {actions}"
    );

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("registry_{}_{nanos}", std::process::id());
    drop_database(&name);
    let (status, created) = post_as(
        &backstage.base,
        "/api/scaffolder/v2/tasks",
        json!({ "templateRef": "template:default/registry-database", "values": { "name": name } }),
        Some(TOKEN),
    );
    assert_eq!(status, 201, "{created}");
    let task_id = created["id"].as_str().unwrap();
    let (task, events) = wait_for_backstage_task(&backstage.base, task_id);
    assert_eq!(
        task["status"],
        "completed",
        "Backstage's task failed: {events:#?}\nour log:\n{}",
        server.output()
    );
    assert!(database_exists(&name), "the database {name} exists");
    let completion = events.iter().find(|e| e["type"] == "completion").unwrap();
    assert_eq!(
        completion["body"]["output"]["text"][0]["content"],
        format!("postgres://{name}@127.0.0.1:5432/{name}"),
        "the action's output reached Backstage's step outputs"
    );

    let log = server.output();
    let invoked = log
        .lines()
        .find(|l| l.contains("action invoked"))
        .unwrap_or_else(|| panic!("no audit line in:\n{log}"));
    assert!(
        invoked.contains("scaffolder::audit")
            && invoked.contains("plugin:scaffolder")
            && invoked.contains("postgres:database:create"),
        "{invoked}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("action finished") && l.contains("completed")),
        "{log}"
    );
    assert!(
        !log.contains("postgres://postgres@"),
        "the admin URL is never logged"
    );
    drop_database(&name);
}
