//! What a plugin may do when granted: the positive side of the sandbox.

use std::time::Duration;

use scaffolder_runtime::{Grants, LogLevel, PluginConfig, StepFailureKind};
use scaffolder_sandbox_tests::{CountingServer, RecordingHost, load, request, run, workspace};
use scaffolder_test_artifacts::{FRIENDLY_GUEST, HOSTILE_GUEST, LEGACY_0_1_0_GUEST};
use serde_json::json;

async fn friendly_with(grants: Grants) -> scaffolder_runtime::Plugin {
    load(
        FRIENDLY_GUEST,
        PluginConfig {
            grants,
            ..PluginConfig::default()
        },
    )
    .await
}

fn template_grant() -> Grants {
    Grants {
        template_directory: true,
        ..Grants::default()
    }
}

#[tokio::test]
async fn granted_host_is_reachable() {
    let server = CountingServer::start().await;
    let friendly = friendly_with(Grants {
        outbound_http: vec![format!("http://127.0.0.1:{}", server.port)],
        ..Grants::default()
    })
    .await;
    let ws = workspace();
    let url = format!("http://127.0.0.1:{}/hello", server.port);
    let (outcome, _) = run(
        &friendly,
        request("friendly:http-get", json!({ "url": url }), ws.path()),
    )
    .await;
    let output = outcome.expect("the granted request succeeds");
    assert_eq!(output, json!({ "status": 200, "body": "hello" }));
    assert_eq!(server.requests(), 1);
}

/// A run whose replica stalled long enough for another to take its task over sends
/// nothing, even to a granted origin, before any write tells it so.
#[tokio::test]
async fn a_run_that_may_have_lost_its_task_opens_no_connection() {
    let server = CountingServer::start().await;
    let friendly = friendly_with(Grants {
        outbound_http: vec![format!("http://127.0.0.1:{}", server.port)],
        ..Grants::default()
    })
    .await;
    let ws = workspace();
    let url = format!("http://127.0.0.1:{}/hello", server.port);
    let host = RecordingHost::new();
    host.lose_task();
    let outcome = friendly
        .execute(
            request("friendly:http-get", json!({ "url": url }), ws.path()),
            host.clone(),
        )
        .await;
    let failure = outcome.expect_err("no request goes out");
    assert!(
        failure.message.contains("may no longer hold the task"),
        "{failure:?}"
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn granted_host_on_another_port_is_denied() {
    let server = CountingServer::start().await;
    let friendly = friendly_with(Grants {
        outbound_http: vec![format!("http://127.0.0.1:{}", server.port.wrapping_add(1))],
        ..Grants::default()
    })
    .await;
    let ws = workspace();
    let url = format!("http://127.0.0.1:{}/", server.port);
    let (outcome, _) = run(
        &friendly,
        request("friendly:http-get", json!({ "url": url }), ws.path()),
    )
    .await;
    let failure = outcome.unwrap_err();
    assert_eq!(failure.kind, StepFailureKind::Denied, "{}", failure.message);
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn granted_secret_is_visible() {
    let friendly = friendly_with(Grants {
        secrets: vec!["deploy-token".into()],
        ..Grants::default()
    })
    .await;
    let ws = workspace();
    let mut req = request("friendly:secret", json!({}), ws.path());
    req.secrets.insert("deploy-token".into(), "s3cr3t".into());
    req.secrets.insert("other".into(), "nope".into());
    let (outcome, _) = run(&friendly, req).await;
    assert_eq!(outcome.unwrap(), json!({ "value": "s3cr3t" }));
}

#[tokio::test]
async fn secret_requested_but_not_granted_is_invisible() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let mut req = request("friendly:secret", json!({}), ws.path());
    req.secrets.insert("deploy-token".into(), "s3cr3t".into());
    let (outcome, _) = run(&friendly, req).await;
    let failure = outcome.unwrap_err();
    assert_eq!(failure.kind, StepFailureKind::Denied);
    assert!(
        failure.message.contains("secret 'deploy-token' denied"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn workspace_writes_are_visible_to_the_next_step() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let (write, _) = run(
        &friendly,
        request(
            "friendly:write-file",
            json!({"path": "src/main.rs", "content": "fn main() {}"}),
            ws.path(),
        ),
    )
    .await;
    write.unwrap();
    assert_eq!(
        std::fs::read_to_string(ws.path().join("src/main.rs")).unwrap(),
        "fn main() {}"
    );
    let (read, _) = run(
        &friendly,
        request(
            "friendly:read-file",
            json!({"path": "src/main.rs"}),
            ws.path(),
        ),
    )
    .await;
    assert_eq!(read.unwrap(), json!({ "content": "fn main() {}" }));
}

#[tokio::test]
async fn stdout_and_stderr_become_log_lines() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let (outcome, host) = run(&friendly, request("friendly:stdio", json!({}), ws.path())).await;
    outcome.unwrap();
    let lines = host.lines();
    assert!(
        lines.contains(&(LogLevel::Info, "hello from stdout".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogLevel::Warn, "hello from stderr".into())),
        "{lines:?}"
    );
}

#[tokio::test]
async fn checkpoint_skips_work_done_in_an_earlier_run() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let host = RecordingHost::new();
    for _ in 0..2 {
        let output = friendly
            .execute(
                request("friendly:checkpoint", json!({}), ws.path()),
                host.clone(),
            )
            .await
            .unwrap();
        assert_eq!(output, json!({ "runs": 1 }));
    }
    assert_eq!(
        std::fs::read_to_string(ws.path().join("runs.txt")).unwrap(),
        "1"
    );
}

#[tokio::test]
async fn added_secret_reaches_the_host() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let (outcome, host) = run(
        &friendly,
        request(
            "friendly:add-secret",
            json!({"name": "db-password", "value": "pw-123"}),
            ws.path(),
        ),
    )
    .await;
    outcome.unwrap();
    assert_eq!(
        host.added_secrets().get("db-password").map(String::as_str),
        Some("pw-123")
    );
}

#[tokio::test]
async fn cancel_stops_a_sleeping_step() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let req = request("friendly:sleep", json!({"millis": 60_000}), ws.path());
    let cancel = req.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let (outcome, _) = run(&friendly, req).await;
    assert_eq!(outcome.unwrap_err().kind, StepFailureKind::Cancelled);
}

#[tokio::test]
async fn cancel_stops_a_spinning_step() {
    let hostile = load(HOSTILE_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let req = request("hostile:infinite-loop", json!({}), ws.path());
    let cancel = req.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let (outcome, _) = run(&hostile, req).await;
    assert_eq!(outcome.unwrap_err().kind, StepFailureKind::Cancelled);
}

#[tokio::test]
async fn invalid_input_is_reported_as_such() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let (outcome, _) = run(
        &friendly,
        request("friendly:write-file", json!({"path": 1}), ws.path()),
    )
    .await;
    let failure = outcome.unwrap_err();
    assert_eq!(failure.kind, StepFailureKind::InvalidInput);
    assert!(
        failure.message.contains("friendly:write-file"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn unknown_action_is_a_host_failure() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let ws = workspace();
    let (outcome, _) = run(&friendly, request("friendly:nope", json!({}), ws.path())).await;
    let failure = outcome.unwrap_err();
    assert!(
        failure.message.contains("has no action 'friendly:nope'"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn load_reports_metadata_digest_and_cache() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    assert!(friendly.digest().starts_with("sha256:") && friendly.digest().len() == 7 + 64);
    assert_eq!(friendly.wit_version(), "0.1.1");
    let http = friendly.action("friendly:http-get").unwrap();
    assert_eq!(
        http.capabilities.outbound_http,
        vec!["http://127.0.0.1:*".to_owned()]
    );
    assert!(http.attributes.read_only);
    let write = friendly.action("friendly:write-file").unwrap();
    assert_eq!(write.input_schema["required"], json!(["path", "content"]));
    assert!(!write.attributes.read_only && write.attributes.destructive);
    // The second load of the same bytes comes from the compile cache.
    let again = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    assert!(again.cache_hit());
}

/// Runs `friendly:read-template` with a fresh template directory, which it returns for
/// checks after the step.
async fn read_template(
    friendly: &scaffolder_runtime::Plugin,
    input: serde_json::Value,
) -> (
    Result<serde_json::Value, scaffolder_runtime::StepFailure>,
    tempfile::TempDir,
) {
    let (ws, template) = (workspace(), template_dir());
    let mut req = request("friendly:read-template", input, ws.path());
    req.template_directory = Some(template.path().to_owned());
    let (outcome, _) = run(friendly, req).await;
    (outcome, template)
}

fn template_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("skeleton")).unwrap();
    std::fs::write(
        dir.path().join("skeleton/README.md"),
        "# ${{ values.name }}",
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn granted_template_directory_is_readable() {
    let friendly = friendly_with(template_grant()).await;
    let (outcome, _template) =
        read_template(&friendly, json!({"path": "skeleton/README.md"})).await;
    assert_eq!(
        outcome.unwrap(),
        json!({ "content": "# ${{ values.name }}" })
    );
}

#[tokio::test]
async fn template_directory_is_read_only() {
    let friendly = friendly_with(template_grant()).await;
    let (outcome, template) = read_template(
        &friendly,
        json!({"path": "skeleton/README.md", "overwrite": true}),
    )
    .await;
    let failure = outcome.unwrap_err();
    assert_eq!(failure.kind, StepFailureKind::Denied, "{}", failure.message);
    assert!(
        failure
            .message
            .contains("write to the read-only template directory denied: skeleton/README.md"),
        "{}",
        failure.message
    );
    assert_eq!(
        std::fs::read_to_string(template.path().join("skeleton/README.md")).unwrap(),
        "# ${{ values.name }}"
    );
}

#[tokio::test]
async fn template_directory_is_absent_unless_granted() {
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let (outcome, _template) =
        read_template(&friendly, json!({"path": "skeleton/README.md"})).await;
    let failure = outcome.unwrap_err();
    assert_eq!(failure.kind, StepFailureKind::Denied, "{}", failure.message);
    assert!(
        failure
            .message
            .contains("access outside the workspace denied: /template/skeleton/README.md"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn runtime_without_pooling_runs_steps() {
    let runtime = scaffolder_runtime::Runtime::new(&scaffolder_runtime::RuntimeConfig {
        pooling: false,
        ..Default::default()
    })
    .unwrap();
    assert!(!runtime.uses_pooling());
    let friendly = runtime
        .load_file(
            std::path::Path::new(FRIENDLY_GUEST),
            PluginConfig::default(),
        )
        .await
        .unwrap();
    let ws = workspace();
    let (outcome, _) = run(&friendly, request("friendly:noop", json!({}), ws.path())).await;
    assert_eq!(outcome.unwrap(), json!({}));
}

#[tokio::test]
async fn configuration_reaches_the_plugin_by_key() {
    let friendly = load(
        FRIENDLY_GUEST,
        PluginConfig {
            config: [(
                "backstage.baseUrl".to_owned(),
                "http://backstage:7007".to_owned(),
            )]
            .into(),
            ..PluginConfig::default()
        },
    )
    .await;
    let ws = workspace();
    let read = |key: &str| request("friendly:config", json!({ "key": key }), ws.path());
    let (set, _) = run(&friendly, read("backstage.baseUrl")).await;
    assert_eq!(set.unwrap(), json!({ "value": "http://backstage:7007" }));
    let (unset, _) = run(&friendly, read("scaffolder.defaultCommitMessage")).await;
    assert_eq!(unset.unwrap(), json!({ "value": null }));
}

#[tokio::test]
async fn file_modes_are_read_and_set_in_the_workspace_only() {
    use std::os::unix::fs::PermissionsExt;

    let friendly = friendly_with(template_grant()).await;
    let ws = workspace();
    let template = workspace();
    std::fs::write(ws.path().join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(template.path().join("gradlew"), "").unwrap();
    std::fs::set_permissions(
        template.path().join("gradlew"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    let chmod = |input: serde_json::Value| {
        let mut req = request("friendly:chmod", input, ws.path());
        req.template_directory = Some(template.path().to_owned());
        req
    };

    let (set, _) = run(&friendly, chmod(json!({ "path": "run.sh", "mode": 0o755 }))).await;
    assert_eq!(set.unwrap(), json!({ "mode": 0o755 }));
    let on_disk = std::fs::metadata(ws.path().join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(on_disk & 0o777, 0o755);

    let (read, _) = run(&friendly, chmod(json!({ "path": "/template/gradlew" }))).await;
    assert_eq!(read.unwrap(), json!({ "mode": 0o751 }));

    let (refused, _) = run(
        &friendly,
        chmod(json!({ "path": "/template/gradlew", "mode": 0o777 })),
    )
    .await;
    let failure = refused.unwrap_err();
    assert!(failure.message.contains("read-only"), "{}", failure.message);

    let (outside, _) = run(&friendly, chmod(json!({ "path": "/etc/passwd" }))).await;
    let failure = outside.unwrap_err();
    assert!(
        failure.message.contains("outside the workspace"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_plugin_built_for_wit_0_1_0_still_loads_and_runs() {
    let legacy = load(LEGACY_0_1_0_GUEST, PluginConfig::default()).await;
    assert_eq!(legacy.wit_version(), "0.1.0");
    let ws = workspace();
    let (outcome, host) = run(
        &legacy,
        request("legacy:echo", json!({ "a": 1 }), ws.path()),
    )
    .await;
    assert_eq!(outcome.unwrap(), json!({ "echo": { "a": 1 } }));
    assert!(
        host.lines()
            .iter()
            .any(|(_, line)| line == r#"echo {"a":1}"#)
    );
}

/// Each capability accounts what a step used of it, and the step reports it when it
/// ends: what a step did shows in its own counter and in no other.
#[tokio::test]
async fn each_capability_reports_what_a_step_used() {
    let ws = workspace();
    let usage = |host: &RecordingHost| host.usage().expect("the ended step reports its usage");

    let server = CountingServer::start().await;
    let friendly = friendly_with(Grants {
        outbound_http: vec![format!("http://127.0.0.1:{}", server.port)],
        ..Grants::default()
    })
    .await;
    let url = format!("http://127.0.0.1:{}/hello", server.port);
    let (outcome, host) = run(
        &friendly,
        request("friendly:http-get", json!({ "url": url }), ws.path()),
    )
    .await;
    outcome.unwrap();
    let used = usage(&host);
    assert_eq!((used.http_requests, used.denials), (1, 0), "{used:?}");
    assert_eq!(used.tcp_connections, 0, "{used:?}");

    // A refused request is a denial, not a request.
    let (outcome, host) = run(
        &friendly,
        request(
            "friendly:http-get",
            json!({ "url": "http://127.0.0.1:9/" }),
            ws.path(),
        ),
    )
    .await;
    assert!(outcome.is_err());
    let used = usage(&host);
    assert_eq!((used.http_requests, used.denials), (0, 1), "{used:?}");

    let (outcome, host) = run(
        &friendly,
        request(
            "friendly:write-file",
            json!({"path": "src/main.rs", "content": "fn main() {}"}),
            ws.path(),
        ),
    )
    .await;
    outcome.unwrap();
    let used = usage(&host);
    assert_eq!(used.workspace_bytes_written, 12, "{used:?}");
    assert_eq!(
        used.workspace_files_created, 2,
        "src/ and main.rs: {used:?}"
    );
    assert_eq!(used.http_requests, 0, "{used:?}");

    let (outcome, host) = run(&friendly, request("friendly:stdio", json!({}), ws.path())).await;
    outcome.unwrap();
    let used = usage(&host);
    let lines = host.lines();
    assert_eq!(used.log_lines, lines.len() as u64, "{used:?} {lines:?}");
    let bytes: u64 = lines
        .iter()
        .map(|(_, line)| line.len() as u64 + scaffolder_runtime::LOG_LINE_OVERHEAD_BYTES)
        .sum();
    assert_eq!(used.log_bytes, bytes, "{used:?}");
    assert_eq!(used.workspace_bytes_written, 0, "{used:?}");

    let (outcome, host) = run(
        &friendly,
        request(
            "friendly:add-secret",
            json!({"name": "db-password", "value": "pw-123"}),
            ws.path(),
        ),
    )
    .await;
    outcome.unwrap();
    assert_eq!(usage(&host).secrets_added, 1);

    let (outcome, host) = run(
        &friendly,
        request("friendly:checkpoint", json!({}), ws.path()),
    )
    .await;
    outcome.unwrap();
    assert_eq!(usage(&host).checkpoints_written, 1);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hostile = load(
        HOSTILE_GUEST,
        PluginConfig {
            grants: Grants {
                tcp: vec![addr.to_string()],
                ..Grants::default()
            },
            ..PluginConfig::default()
        },
    )
    .await;
    let (outcome, host) = run(
        &hostile,
        request(
            "hostile:tcp-ungranted",
            json!({ "address": addr.to_string() }),
            ws.path(),
        ),
    )
    .await;
    outcome.expect("the granted peer is connected");
    let used = usage(&host);
    assert_eq!(
        (used.tcp_connections, used.http_requests),
        (1, 0),
        "{used:?}"
    );
}
