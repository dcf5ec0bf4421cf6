//! Issue 22: plugins written in TypeScript with `@scaffolder/plugin-sdk` (`plugins/sdk-ts`).
//! `examples/ts-plugin` is built once per test process with `scaffolder plugin build` (its
//! npm packages installed by `npm ci` from its lockfile when missing), then its sandbox
//! cases run with `plugin test` (among them a read of `/etc/passwd` and a fetch of an
//! undeclared origin, which fail with the host's named denial) and its action runs in a
//! template through the server. A package from `plugin new --lang typescript` builds and
//! passes its own cases, and runs in its example template. `examples/roadie-utils`, a port
//! of a public TypeScript action module, passes its cases.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use common::{Server, inspected_action_ids, repo, run_task, succeeds};
use scaffolder_test_artifacts::registry::Registry;
use serde_json::{Value as Json, json};

fn example() -> PathBuf {
    repo().join("examples/ts-plugin")
}

/// The example's component, built once; the compile cache in `data` is shared too.
fn component(data: &Path) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let example = example();
            let printed = succeeds(
                data,
                &["plugin", "build", example.to_str().unwrap(), "--json"],
            );
            let built: Json = serde_json::from_str(&printed)
                .unwrap_or_else(|e| panic!("{e}: `plugin build --json` printed {printed}"));
            PathBuf::from(built["component"].as_str().unwrap())
        })
        .clone()
}

#[test]
fn the_example_builds_and_its_sandbox_cases_pass() {
    let data = tempfile::tempdir().unwrap();
    let component = component(data.path());
    let built: Json = serde_json::from_str(&succeeds(
        data.path(),
        &["plugin", "inspect", component.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    let ids = inspected_action_ids(&built);
    assert_eq!(
        ids,
        [
            "example:hello",
            "example:github:latest-release",
            "example:read-file"
        ]
    );
    // The zod input schema arrives as JSON Schema.
    assert_eq!(
        built["actions"][0]["inputSchema"]["properties"]["name"]["type"], "string",
        "{built}"
    );

    // `plugin test DIR` builds the package and runs its `tests/cases`.
    let example = example();
    let report = succeeds(data.path(), &["plugin", "test", example.to_str().unwrap()]);
    let cases = std::fs::read_dir(example.join("tests/cases"))
        .unwrap()
        .count();
    assert!(
        report.contains(&format!("{cases} passed")),
        "every case passes:\n{report}"
    );
}

#[test]
fn a_typescript_action_runs_in_a_template_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let component = component(dir.path());
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("hello.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\n\
         kind: Template\n\
         metadata: { name: ts-hello }\n\
         spec:\n\
         \x20 type: service\n\
         \x20 parameters: [{ properties: { name: { type: string } } }]\n\
         \x20 steps:\n\
         \x20   - id: hello\n\
         \x20     action: example:hello\n\
         \x20     input: { name: '${{ parameters.name }}' }\n\
         \x20   - id: read\n\
         \x20     action: example:read-file\n\
         \x20     input: { path: '${{ steps.hello.output.path }}' }\n\
         \x20 output:\n\
         \x20   text: [{ title: Greeting, content: '${{ steps.read.output.text }}' }]\n",
    )
    .unwrap();
    let server = Server::spawn(
        dir.path(),
        &[
            "--templates",
            templates.to_str().unwrap(),
            "--plugin",
            component.to_str().unwrap(),
        ],
        &[],
    );
    let events = run_task(
        &server.base,
        "template:default/ts-hello",
        json!({ "name": "TypeScript" }),
    );
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["message"], "Run completed with status: completed",
        "{events:#?}"
    );
    assert_eq!(
        completion["body"]["output"]["text"][0]["content"],
        "Hello, TypeScript!\n"
    );
    assert!(
        events.iter().any(|e| e["body"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("wrote 19 bytes to greeting.txt"))),
        "the action's log line is a task event: {events:#?}"
    );
}

/// `plugin publish` takes the package directory as it takes a Rust crate's: it builds the
/// component and pushes it; a server's configuration pulling it by tag, pinned to the
/// printed digest, runs its action.
#[test]
fn a_typescript_plugin_is_published_from_its_directory_and_runs_from_the_registry() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let example = example();
    let reference = format!("{}/platform/ts-plugin:0.1.0", registry.address);
    let printed = succeeds(
        dir.path(),
        &[
            "plugin",
            "publish",
            example.to_str().unwrap(),
            &reference,
            "--insecure",
        ],
    );
    let digest = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("component:"))
        .unwrap_or_else(|| panic!("no component digest in {printed}"))
        .trim();
    assert!(
        printed.contains(&format!("source: oci://{reference}")),
        "{printed}"
    );

    let config = dir.path().join("scaffolder.yaml");
    std::fs::write(
        &config,
        format!(
            "scaffolder:\n  plugins:\n    - source: oci://{reference}\n      digest: {digest}\n      insecure: true\n"
        ),
    )
    .unwrap();
    let template = dir.path().join("template.yaml");
    std::fs::write(
        &template,
        "apiVersion: scaffolder.backstage.io/v1beta3\n\
         kind: Template\n\
         metadata: { name: ts-from-registry }\n\
         spec:\n\
         \x20 type: service\n\
         \x20 steps:\n\
         \x20   - id: hello\n\
         \x20     action: example:hello\n\
         \x20     input: { name: Registry }\n",
    )
    .unwrap();
    let ran = succeeds(
        dir.path(),
        &[
            "dry-run",
            template.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--json",
        ],
    );
    let result: Json = serde_json::from_str(&ran).unwrap_or_else(|e| panic!("{e}: {ran}"));
    let greeting = result["directoryContents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "greeting.txt")
        .unwrap_or_else(|| panic!("no greeting.txt in {result}"));
    assert_eq!(
        greeting["base64Content"],
        base64::engine::general_purpose::STANDARD.encode("Hello, Registry!\n")
    );
}

#[test]
fn a_new_typescript_plugin_builds_passes_its_cases_and_runs_in_its_template_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let created = succeeds(
        dir.path(),
        &["plugin", "new", "hello-ts", "--lang", "typescript"],
    );
    assert!(
        created.contains("Created the TypeScript plugin hello-ts"),
        "{created}"
    );
    let package: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("hello-ts/package.json")).unwrap(),
    )
    .unwrap();
    let sdk = package["dependencies"]["@scaffolder/plugin-sdk"]
        .as_str()
        .unwrap();
    assert_eq!(
        Path::new(sdk.strip_prefix("file:").unwrap()),
        repo().join("plugins/sdk-ts").canonicalize().unwrap()
    );

    // `plugin test DIR` installs the packages (no lockfile yet: `npm install`), builds the
    // component and runs the two cases the template wrote.
    let report = succeeds(dir.path(), &["plugin", "test", "hello-ts"]);
    assert!(report.contains("2 passed"), "{report}");
    let ran = succeeds(
        dir.path(),
        &[
            "dry-run",
            "hello-ts/example/template.yaml",
            "--plugin",
            "hello-ts",
            "--set",
            "who=TypeScript",
        ],
    );
    assert!(ran.contains("Hello, TypeScript!"), "{ran}");

    // The same package as a server's plugin (`--plugin DIR` builds it), its example
    // template run as a task.
    let package = dir.path().join("hello-ts");
    let server = Server::spawn(
        &dir.path().join("data"),
        &[
            "--templates",
            package.join("example").to_str().unwrap(),
            "--plugin",
            package.to_str().unwrap(),
        ],
        &[],
    );
    let events = run_task(
        &server.base,
        "template:default/hello-ts-example",
        json!({ "who": "the server" }),
    );
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["message"], "Run completed with status: completed",
        "{events:#?}"
    );
    assert!(
        completion["body"]["output"]["text"][0]["content"]
            .as_str()
            .is_some_and(|greeting| greeting.contains("Hello, the server!")),
        "{completion}"
    );
}

/// Roadie's `roadiehq:utils:json:merge` and `roadiehq:utils:merge`, ported: same ids,
/// inputs, outputs and messages, with the same merge and YAML libraries.
#[test]
fn the_ported_roadie_merge_actions_pass_their_cases() {
    let dir = tempfile::tempdir().unwrap();
    let port = repo().join("examples/roadie-utils");
    let report = succeeds(dir.path(), &["plugin", "test", port.to_str().unwrap()]);
    let cases = std::fs::read_dir(port.join("tests/cases")).unwrap().count();
    assert!(cases >= 20, "{cases} cases");
    assert!(
        report.contains(&format!("{cases} passed")),
        "every case passes:\n{report}"
    );
}

/// The SDK carries a copy of the WIT it was written against (it must build where the
/// repository is not), and that copy is the released `action@0.1.1`.
#[test]
fn the_sdk_carries_the_released_wit() {
    let root = repo();
    assert_eq!(
        std::fs::read_to_string(root.join("plugins/sdk-ts/wit/action.wit")).unwrap(),
        std::fs::read_to_string(root.join("wit/action@0.1.1/action.wit")).unwrap(),
        "plugins/sdk-ts/wit/action.wit differs from wit/action@0.1.1/action.wit"
    );
}
