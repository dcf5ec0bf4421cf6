//! `scaffolder serve --templates DIR`: what the server says about its template
//! directories at start, and the README's first command, `scaffolder serve --port 7007
//! --templates ./examples`, on a fresh checkout: no warning, every template loaded, and
//! every template run there (issue 20, items 3 and 4).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::postgres::{ADMIN_URL, database_exists, drop_database};
use common::{Server, get, post, repo, wait_for_event};
use serde_json::{Value as Json, json};

/// How each example is run by the tests. A template added to `examples/` without a row
/// here fails `every_example_is_loaded_and_has_a_way_to_run`.
const EXAMPLES: &[(&str, Run)] = &[
    ("backstage-registry", Run::HereWithPostgres),
    ("components", Run::Here),
    ("docs-site", Run::Here),
    // It needs a git server, PostgreSQL and a Backstage catalog: tests/golden_path.rs
    // runs it against real ones, tests/cli.rs dry-runs it against a server.
    ("golden-path", Run::Elsewhere("tests/golden_path.rs")),
    // Even its dry run asks a Backstage catalog (catalog:fetch supports dry runs):
    // host/scaffolder-api/tests/examples.rs runs it against the real Backstage backend.
    (
        "register-existing",
        Run::Elsewhere("host/scaffolder-api/tests/examples.rs"),
    ),
    ("rust-service", Run::Here),
    ("typescript-plugin", Run::Here),
    ("wasm-plugin", Run::Here),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Run {
    /// As a task on the server of the README's command, to completion.
    Here,
    /// As a task on a server serving the examples with a PostgreSQL grant.
    HereWithPostgres,
    /// By the named test, against the external servers it needs.
    Elsewhere(&'static str),
}

/// The values each example runs with.
fn values(name: &str) -> Json {
    match name {
        "components" => {
            json!({ "system": "shop", "components": [{ "name": "cart", "type": "service" }] })
        }
        "docs-site" => json!({ "name": "handbook", "keepDrafts": false }),
        "rust-service" => {
            json!({ "name": "billing", "owner": "group:default/payments", "docker": true, "port": 9000 })
        }
        "wasm-plugin" => json!({ "name": "hello", "sdkPath": "/opt/scaffolder/plugins/sdk" }),
        "typescript-plugin" => {
            json!({ "name": "hello", "sdkPath": "/opt/scaffolder/plugins/sdk-ts" })
        }
        other => panic!("no values for {other}"),
    }
}

/// Runs `scaffolder serve` with `args` and returns its exit status and output if it
/// exits within a minute; `None` if it is still running (then it is killed).
fn serve_until_exit(args: &[&str]) -> Option<(bool, String)> {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scaffolder"))
        .env("NO_COLOR", "1")
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data.path().join("data"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return Some((output.status.success(), text));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The server's output once it holds `needle` (its log reaches us a little after it
/// listens); panics after half a minute.
fn output_with(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = server.output();
        if output.contains(needle) {
            return output;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{output}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 20, item 3: a typo in `--templates` refuses to start, naming the path, instead
/// of serving no template.
#[test]
fn a_missing_template_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("exmaples");
    let (success, output) = serve_until_exit(&["--templates", missing.to_str().unwrap()])
        .expect("the server started with a template directory that does not exist");
    assert!(!success, "{output}");
    assert!(
        output.contains(&format!(
            "the template directory {} (from --templates) cannot be read",
            missing.display()
        )),
        "{output}"
    );
    // A file is not a directory of templates either.
    let file = dir.path().join("template.yaml");
    std::fs::write(&file, "kind: Template\n").unwrap();
    let (success, output) = serve_until_exit(&["--templates", file.to_str().unwrap()])
        .expect("the server started with a file as its template directory");
    assert!(!success, "{output}");
    assert!(output.contains("is not a directory"), "{output}");
    // The same for the configuration's directories, resolved against its file.
    let config = dir.path().join("app-config.yaml");
    std::fs::write(&config, "scaffolder:\n  templates: [./nope]\n").unwrap();
    let (success, output) = serve_until_exit(&["--config", config.to_str().unwrap()])
        .expect("the server started with a configured template directory that does not exist");
    assert!(!success, "{output}");
    assert!(
        output.contains(&format!(
            "the template directory {} (from scaffolder.templates in the configuration) cannot be read",
            dir.path().join("./nope").display()
        )),
        "{output}"
    );
}

/// Issue 20, item 3: a directory that exists but holds no template starts, with a
/// warning that says so.
#[test]
fn an_empty_template_directory_warns_at_start() {
    let data = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("ci.yaml"), "on: push\n").unwrap();
    let server = Server::spawn(
        &data.path().join("data"),
        &["--templates", empty.path().to_str().unwrap()],
        &[("NO_COLOR", "1")],
    );
    let output = output_with(&server, "serving the scaffolder API");
    let warning = output
        .lines()
        .find(|l| l.contains("no template found under"))
        .unwrap_or_else(|| panic!("no warning about the empty directory:\n{output}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&empty.path().display().to_string()),
        "{warning}"
    );
}

/// Issue 20, item 4: the README's first command loads every example without a warning
/// (the wasm-plugin skeleton's `template.yaml` is content, not a template), lists each
/// as loaded, and every example runs there, or in the test its row names.
#[test]
fn every_example_is_loaded_and_has_a_way_to_run() {
    let data = tempfile::tempdir().unwrap();
    let examples = repo().join("examples").canonicalize().unwrap();
    let server = Server::spawn(
        &data.path().join("data"),
        &["--templates", examples.to_str().unwrap()],
        &[("NO_COLOR", "1")],
    );
    let output = output_with(&server, "serving the scaffolder API");
    let warnings: Vec<&str> = output.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");

    let (status, listing) = get(&server.base, "/v2/templates");
    assert_eq!(status, 200, "{listing}");
    let listed: Vec<(String, String, String)> = listing["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["ref"].as_str().unwrap_or_default().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
                t["file"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = EXAMPLES
        .iter()
        .map(|(name, _)| {
            let name = match *name {
                "backstage-registry" => "registry-database",
                other => other,
            };
            (
                format!("template:default/{name}"),
                "loaded".to_owned(),
                String::new(),
            )
        })
        .collect();
    assert_eq!(
        listed
            .iter()
            .map(|(r, s, _)| (r.clone(), s.clone()))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(r, s, _)| (r.clone(), s.clone()))
            .collect::<Vec<_>>(),
        "every example, and nothing else, is listed as loaded: {listing:#}"
    );
    for ((_, _, file), (name, _)) in listed.iter().zip(EXAMPLES) {
        assert_eq!(
            *file,
            examples
                .join(name)
                .join("template.yaml")
                .display()
                .to_string()
        );
    }

    for (name, run) in EXAMPLES {
        if *run != Run::Here {
            continue;
        }
        let (status, created) = post(
            &server.base,
            "/v2/tasks",
            json!({ "templateRef": format!("template:default/{name}"), "values": values(name) }),
        );
        assert_eq!(status, 201, "{name}: {created}");
        let id = created["id"].as_str().unwrap();
        let events = wait_for_event(&server.base, id, |e| e["type"] == "completion");
        let completion = events.iter().find(|e| e["type"] == "completion").unwrap();
        assert!(
            completion["body"]["error"].is_null(),
            "{name} failed: {events:#?}"
        );
    }
    let output = server.output();
    let warnings: Vec<&str> = output.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warnings.is_empty(),
        "running the examples warned: {warnings:#?}"
    );
}

/// Issue 20, item 4: `registry-database`, written for Backstage's scaffolder (its step
/// is `wasm-actions:postgres:database:create`, the actions registry's id), runs on our
/// server too: the server answers as `wasm-actions`, so the step is its own
/// `postgres:database:create`, here creating a real database.
#[test]
fn the_registry_template_runs_on_our_server_too() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "scaffolder:\n  defaultEnvironment:\n    secrets:\n      POSTGRES_ADMIN_URL: {ADMIN_URL}\n  plugins:\n    - source: builtin:builtin-postgres\n      grants:\n        tcp: [\"127.0.0.1:5432\"]\n        secrets: [POSTGRES_ADMIN_URL]\n"
        ),
    )
    .unwrap();
    let examples = repo().join("examples");
    let server = Server::spawn(
        &data.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--templates",
            examples.to_str().unwrap(),
        ],
        &[],
    );
    let name = format!("registry_here_{}", std::process::id());
    drop_database(&name);
    let (status, created) = post(
        &server.base,
        "/v2/tasks",
        json!({ "templateRef": "template:default/registry-database", "values": { "name": name } }),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let events = wait_for_event(&server.base, id, |e| e["type"] == "completion");
    let completion = events.last().unwrap();
    assert!(
        completion["body"]["error"].is_null(),
        "{events:#?}\n{}",
        server.output()
    );
    let connection = completion["body"]["output"]["text"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        connection.starts_with("postgres") && connection.contains(&name),
        "{completion:#}"
    );
    assert!(database_exists(&name), "the database {name} was created");
    drop_database(&name);
}
