//! `scaffolder serve` as a user runs it: a process with a data directory, templates and
//! plugins; driven by the real Backstage `ScaffolderClient`, killed with SIGKILL in the
//! middle of a task, stopped with SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fixture_templates as templates;
use common::{
    Server, client, get, post, post_as, repo, serve_fixtures, wait_for_event, wait_for_event_as,
};

use scaffolder_store::Backend;
use scaffolder_store::testing::TestDatabase;
use scaffolder_test_artifacts::backstage::Backstage;
use serde_json::{Value as Json, json};

/// `scaffolder serve` with the test templates and the friendly plugin, plus `extra`.
fn start(data_dir: &Path, extra: &[&str]) -> Server {
    serve_fixtures(data_dir, extra, &[])
}

#[test]
fn backstage_scaffolder_client_runs_against_the_server() {
    let conformance = repo().join("tests/conformance");
    let npm = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&conformance)
        .status()
        .expect("npm is needed for the conformance test");
    assert!(npm.success(), "npm ci failed in {}", conformance.display());

    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let template = scaffolder_template::Template::from_yaml(
        &std::fs::read_to_string(templates().join("conformance.yaml")).unwrap(),
        None,
    )
    .unwrap();
    let template_json = data.path().join("conformance.json");
    std::fs::write(&template_json, template.entity.to_string()).unwrap();

    let output = Command::new("node")
        .arg("scaffolder-client.mjs")
        .current_dir(&conformance)
        .env("SCAFFOLDER_BASE_URL", &server.base)
        .env("SCAFFOLDER_TEMPLATE_JSON", &template_json)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the ScaffolderClient conformance script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok - streamLogs"), "{stdout}");
    assert!(!stdout.contains("# SKIP"), "every check ran: {stdout}");
}

/// Kill -9 during the sleep step of `resume` (count → sleep → after), start again on the
/// same data: the task completes, and the count step, which had completed, did not run
/// again.
fn resumes_after_sigkill(extra: &[&str], data_dir: &Path) {
    let mut first = start(data_dir, extra);
    let (status, body) = post(
        &first.base,
        "/v2/tasks",
        json!({ "templateRef": "resume", "values": { "millis": 1500 } }),
    );
    assert_eq!(status, 201, "{body}");
    let task_id = body["id"].as_str().unwrap().to_owned();
    wait_for_event(&first.base, &task_id, |e| {
        e["body"]["stepId"] == "sleep" && e["body"]["status"] == "processing"
    });
    first.kill();

    let second = start(data_dir, extra);
    let events = wait_for_event(&second.base, &task_id, |e| e["type"] == "completion");
    let completion = events.iter().find(|e| e["type"] == "completion").unwrap();
    assert_eq!(
        completion["body"]["message"], "Run completed with status: completed",
        "{events:#?}"
    );
    assert_eq!(
        completion["body"]["output"],
        json!({ "runs": 1 }),
        "count ran once"
    );
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["body"]["message"].as_str())
        .collect();
    assert_eq!(
        messages
            .iter()
            .filter(|m| **m == "Beginning step Count")
            .count(),
        1,
        "{messages:#?}"
    );
    assert!(
        messages
            .contains(&"Skipping step count because it was already completed in a previous run")
    );
    assert!(events.iter().any(|e| e["type"] == "recovered"));
    let (_, task) = get(&second.base, &format!("/v2/tasks/{task_id}"));
    assert_eq!(task["status"], "completed");
}

const FAST_RECOVERY: &str = "scaffolder:\n  taskRecovery:\n    staleTimeout: { seconds: 3 }\n";

#[test]
fn a_task_survives_sigkill_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(&config, FAST_RECOVERY).unwrap();
    resumes_after_sigkill(&["--config", config.to_str().unwrap()], data.path());
}

#[test]
fn a_task_survives_sigkill_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(TestDatabase::new(Backend::Postgres));
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "{FAST_RECOVERY}  taskSecrets:\n    key: {}\nbackend:\n  database:\n    client: pg\n    connection: {}\n",
            database.secrets_key.to_base64(),
            database.url
        ),
    )
    .unwrap();
    resumes_after_sigkill(&["--config", config.to_str().unwrap()], data.path());
    runtime.block_on(database.finish());
}

#[test]
fn postgres_without_a_task_secrets_key_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        "backend:\n  database:\n    client: pg\n    connection: postgres://postgres@127.0.0.1:5432/postgres\n",
    )
    .unwrap();
    let stderr = refused_start(&config, data.path());
    assert!(
        stderr.contains("refusing to store task secrets on PostgreSQL in plaintext")
            && stderr.contains("openssl rand -base64 32")
            && stderr.contains("key: ${SCAFFOLDER_TASK_SECRETS_KEY}"),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), &[]);
    let (status, _) = get(&server.base, "/v2/actions");
    assert_eq!(status, 200);
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn static_tokens_are_required_when_configured() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options:\n          token: ${TEST_SCAFFOLDER_TOKEN}\n          subject: ci-bot\n",
    )
    .unwrap();
    let server = serve_fixtures(
        data.path(),
        &["--config", config.to_str().unwrap()],
        &[("TEST_SCAFFOLDER_TOKEN", "a-long-static-token")],
    );
    let (status, body) = get(&server.base, "/v2/actions");
    assert_eq!(status, 401);
    assert_eq!(body["error"]["name"], "AuthenticationError");
    assert_eq!(body["response"]["statusCode"], 401);
    let response = client()
        .get(format!("{}/v2/actions", server.base))
        .bearer_auth("wrong-token-value")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = client()
        .get(format!("{}/v2/actions", server.base))
        .bearer_auth("a-long-static-token")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn refuses_to_serve_a_public_address_without_authentication() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_scaffolder"))
        .args(["serve", "--port", "0", "--host", "0.0.0.0", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve 0.0.0.0 without authentication"),
        "{stderr}"
    );
}

/// `scaffolder serve --config <config>`, which must refuse to start; its stderr.
fn refused_start(config: &Path, data_dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_scaffolder"))
        .args(["serve", "--port", "0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the server started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_actions_registry_needs_the_backstage_it_serves() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    for (yaml, expected) in [
        (
            "scaffolder:\n  actionsRegistry: {}\n",
            "scaffolder.actionsRegistry needs backstage.baseUrl",
        ),
        (
            "backstage:\n  baseUrl: http://127.0.0.1:1\nscaffolder:\n  actionsRegistry:\n    pluginId: Wasm Actions\n",
            "'Wasm Actions' must be a Backstage plugin id",
        ),
        (
            "backstage:\n  baseUrl: http://127.0.0.1:1\nscaffolder:\n  actionsRegistry:\n    actions: ['postgres:[']\n",
            "'postgres:[' is not a valid action pattern",
        ),
    ] {
        std::fs::write(&config, yaml).unwrap();
        let stderr = refused_start(&config, data.path());
        assert!(stderr.contains(expected), "{yaml}: {stderr}");
    }
}

#[test]
fn a_wrong_digest_pin_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    let pin = format!("sha256:{}", "0".repeat(64));
    std::fs::write(
        &config,
        format!(
            "scaffolder:\n  plugins:\n    - source: {}\n      digest: {pin}\n",
            scaffolder_test_artifacts::FRIENDLY_GUEST
        ),
    )
    .unwrap();
    let stderr = refused_start(&config, data.path());
    assert!(
        stderr.contains(&pin) && stderr.contains("its digest is sha256:"),
        "{stderr}"
    );
}

#[test]
fn cors_lets_the_configured_frontend_origin_call() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        "backend:\n  cors:\n    origin: http://localhost:3000\n    credentials: true\n",
    )
    .unwrap();
    let server = start(data.path(), &["--config", config.to_str().unwrap()]);
    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v2/tasks", server.base),
        )
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let other = client()
        .get(format!("{}/v2/actions", server.base))
        .header("origin", "http://evil.example")
        .send()
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn templates_come_from_a_backstage_catalog() {
    let data = tempfile::tempdir().unwrap();
    let catalog = data.path().join("catalog.yaml");
    std::fs::write(
        &catalog,
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: from-catalog\n  title: From the catalog\nspec:\n  type: service\n  owner: guests\n  parameters:\n    - required: [name]\n      properties:\n        name: { type: string }\n  steps:\n    - id: write\n      action: friendly:write-file\n      input:\n        path: README.md\n        content: \"# ${{ parameters.name }}\"\n    - id: fetch\n      action: catalog:fetch\n      input:\n        entityRef: template:default/from-catalog\n  output:\n    owner: ${{ steps.fetch.output.entity.spec.owner }}\n",
    )
    .unwrap();
    let backstage = Backstage::start(Some(&catalog), "backstage-test-token");
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "backstage:\n  baseUrl: {}\n  catalog:\n    token: backstage-test-token\nbackend:\n  auth:\n    externalAccess:\n      - type: static\n        options: {{ token: our-test-token, subject: tests }}\n      - type: static\n        options: {{ token: backstage-test-token, subject: backstage-user }}\n",
            backstage.base
        ),
    )
    .unwrap();
    let server = start(data.path(), &["--config", config.to_str().unwrap()]);
    // The caller's token reaches catalog:fetch as `backstageToken`; Backstage accepts
    // it, as it would accept a user's own Backstage token.
    let authed = |request: reqwest::blocking::RequestBuilder| {
        request.bearer_auth("backstage-test-token").send().unwrap()
    };

    let schema: Json = authed(client().get(format!(
        "{}/v2/templates/default/template/from-catalog/parameter-schema",
        server.base
    )))
    .json()
    .unwrap();
    assert_eq!(schema["title"], "From the catalog", "{schema}");

    let created = authed(client().post(format!("{}/v2/tasks", server.base)).json(
        &json!({ "templateRef": "template:default/from-catalog", "values": { "name": "cat" } }),
    ));
    assert_eq!(created.status().as_u16(), 201);
    let id = created.json::<Json>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let task = loop {
        let task: Json = authed(client().get(format!("{}/v2/tasks/{id}", server.base)))
            .json()
            .unwrap();
        if task["status"] == "completed" || task["status"] == "failed" {
            break task;
        }
        assert!(Instant::now() < deadline, "{task}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(
        task["spec"]["templateInfo"]["entityRef"],
        "template:default/from-catalog"
    );
    // catalog:fetch ran with the built-in catalog plugin's default grants.
    let events: Json = authed(client().get(format!("{}/v2/tasks/{id}/events", server.base)))
        .json()
        .unwrap();
    let completion = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        completion["body"]["output"]["owner"], "guests",
        "{completion}"
    );
    let base_url = task["spec"]["templateInfo"]["baseUrl"]
        .as_str()
        .unwrap_or_default();
    assert!(
        base_url.starts_with("file://"),
        "the catalog's location is the base URL: {task}"
    );

    let missing = authed(client().get(format!(
        "{}/v2/templates/default/template/not-there/parameter-schema",
        server.base
    )));
    assert_eq!(missing.status().as_u16(), 404);
}

/// A task holding secrets of each kind: the caller's `secrets` (one larger than a database
/// page), its token as `backstageToken`, and a value a step adds (derived from a caller's
/// secret inside the run, so it is in no request and no spec); a sleep keeps it running.
const SECRETS_TEMPLATE: &str = "\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: secrets-at-rest
spec:
  type: service
  parameters:
    properties:
      millis:
        type: integer
  steps:
    - id: add
      name: Add
      action: friendly:add-secret
      input:
        name: generated
        value: ${{ secrets.seed | upper }}
    - id: hold
      name: Hold
      action: friendly:sleep
      input:
        millis: ${{ parameters.millis }}
";

/// Runs [`SECRETS_TEMPLATE`] on SQLite, with or without `scaffolder.taskSecrets.key`, and
/// kills the server with SIGKILL as soon as the task has completed: no file under the data
/// directory holds any of the values (and, with a key, none did while the task ran). The
/// data directory and its files are private to the server's user.
fn secrets_leave_no_trace(encrypted: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data"); // created by the server
    let templates = tmp.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("secrets-at-rest.yaml"), SECRETS_TEMPLATE).unwrap();
    let unique = format!(
        "{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let token = format!("caller-token-{unique}");
    let seed = format!("seed-secret-{unique}");
    let large = format!("large-{unique}-{}", "z9".repeat(5_000));
    let secrets: Vec<(&str, String)> = vec![
        ("the caller's secret", seed.clone()),
        ("the secret added by a step", seed.to_uppercase()),
        ("the large secret", "z9".repeat(40)),
        ("backstageToken", token.clone()),
    ];
    let key = scaffolder_store::SecretsKey::generate().to_base64();
    let config = tmp.path().join("app-config.yaml");
    let mut yaml = "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options:\n          token: ${TEST_SCAFFOLDER_TOKEN}\n          subject: ci-bot\n".to_owned();
    if encrypted {
        yaml.push_str("scaffolder:\n  taskSecrets:\n    key: ${TEST_TASK_SECRETS_KEY}\n");
    }
    std::fs::write(&config, yaml).unwrap();
    let mut server = serve_fixtures(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--templates",
            templates.to_str().unwrap(),
        ],
        &[
            ("TEST_SCAFFOLDER_TOKEN", &token),
            ("TEST_TASK_SECRETS_KEY", &key),
        ],
    );

    let (status, body) = post_as(
        &server.base,
        "/v2/tasks",
        json!({
            "templateRef": "secrets-at-rest",
            "values": { "millis": 1500 },
            "secrets": { "seed": seed, "large": large },
        }),
        Some(&token),
    );
    assert_eq!(status, 201, "{body}");
    let task_id = body["id"].as_str().unwrap().to_owned();
    wait_for_event_as(&server.base, &task_id, Some(&token), |e| {
        e["body"]["stepId"] == "hold" && e["body"]["status"] == "processing"
    });
    let while_running = files_holding(&data, &secrets);
    if encrypted {
        assert_eq!(
            while_running,
            Vec::<String>::new(),
            "with a key, no secret is in plaintext in any file while the task runs"
        );
    } else {
        assert!(
            while_running
                .iter()
                .any(|found| found.starts_with("the caller's secret in ")),
            "without a key the running task's secrets are in the database (the search works): {while_running:?}"
        );
    }

    let events = wait_for_event_as(&server.base, &task_id, Some(&token), |e| {
        e["type"] == "completion"
    });
    server.kill(); // SIGKILL, at once
    let completion = events.iter().find(|e| e["type"] == "completion").unwrap();
    assert_eq!(
        completion["body"]["message"], "Run completed with status: completed",
        "{events:#?}"
    );
    assert_eq!(
        files_holding(&data, &secrets),
        Vec::<String>::new(),
        "no secret value is left in the data directory after the task"
    );
    let logged = server.output();
    for (name, value) in &secrets {
        assert!(
            !logged.contains(value.as_str()),
            "{name} in the server's log"
        );
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700, "the data directory");
        for name in [
            "scaffolder.sqlite",
            "scaffolder.sqlite-wal",
            "scaffolder.sqlite-shm",
        ] {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
        for path in walk(&data) {
            let expected = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&path), expected, "{}", path.display());
        }
    }
}

#[test]
fn secrets_leave_no_trace_in_the_data_directory_on_sqlite() {
    secrets_leave_no_trace(false);
}

#[test]
fn encrypted_secrets_leave_no_trace_in_the_data_directory_on_sqlite() {
    secrets_leave_no_trace(true);
}

/// `"<name> in <file>"` for each secret found in the bytes of a file under `dir`.
fn files_holding(dir: &Path, secrets: &[(&str, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for path in walk(dir).into_iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        for (name, value) in secrets {
            if bytes.windows(value.len()).any(|w| w == value.as_bytes()) {
                found.push(format!("{name} in {}", path.display()));
            }
        }
    }
    found
}

/// Every file and directory under `dir`, recursively (links not followed).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}
