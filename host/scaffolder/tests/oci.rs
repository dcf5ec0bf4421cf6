//! Plugins through a real OCI registry (Debian's `docker-registry` on loopback):
//! `scaffolder plugin publish`, a server loading a plugin by tag with a digest pin and
//! running a template with it, a changed build pushed under the same tag refused, pulls
//! by manifest digest, and the cache standing in for a stopped registry.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, post, text, wait_for_event};
use scaffolder_test_artifacts::FRIENDLY_GUEST;
use scaffolder_test_artifacts::registry::Registry;
use serde_json::{Value as Json, json};

fn scaffolder(args: &[&str]) -> Output {
    common::run_scaffolder(Path::new("."), args)
}

/// `plugin publish FILE REF --insecure`; returns (manifest digest, component digest).
fn publish(file: &Path, reference: &str) -> (String, String) {
    let output = scaffolder(&[
        "plugin",
        "publish",
        file.to_str().unwrap(),
        reference,
        "--insecure",
    ]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let digest_after = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {stdout}"))
            .trim()
            .to_owned()
    };
    (digest_after("manifest:"), digest_after("component:"))
}

/// A configuration loading the plugin from `source`, pinned to `digest`.
fn config(dir: &Path, name: &str, source: &str, digest: &str) -> String {
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            "scaffolder:\n  plugins:\n    - source: {source}\n      digest: {digest}\n      insecure: true\n"
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_owned()
}

const TEMPLATE: &str = "apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: from-registry
spec:
  type: test
  steps:
    - id: write
      name: Write a file
      action: friendly:write-file
      input: { path: hello.txt, content: from the registry }
";

/// `scaffolder dry-run` of the template with `config`, as JSON.
fn dry_run(work: &Path, data: &Path, config: &str) -> Output {
    scaffolder(&[
        "dry-run",
        work.join("templates/template.yaml").to_str().unwrap(),
        "--config",
        config,
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ])
}

#[test]
fn plugins_from_a_registry_are_pinned_cached_and_refused_when_changed() {
    let mut registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    std::fs::create_dir_all(work.join("templates")).unwrap();
    std::fs::write(work.join("templates/template.yaml"), TEMPLATE).unwrap();
    let reference = format!("{}/plugins/friendly:1.0", registry.address);
    let (manifest, component) = publish(Path::new(FRIENDLY_GUEST), &reference);
    assert!(manifest.starts_with("sha256:") && component.starts_with("sha256:"));
    assert_ne!(manifest, component);

    // The registry holds the community Wasm layout.
    let manifest_json: Json = reqwest::blocking::Client::new()
        .get(format!(
            "http://{}/v2/plugins/friendly/manifests/1.0",
            registry.address
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        manifest_json["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest_json["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest_json["layers"][0]["digest"], component.as_str());
    let actions = manifest_json["annotations"]["dev.scaffolder.plugin.actions"]
        .as_str()
        .unwrap();
    assert!(
        actions.split(',').any(|a| a == "friendly:write-file"),
        "{actions}"
    );

    // A server loads it by tag with the pin and runs a template with it.
    let data = work.join("data");
    let by_tag = config(
        work,
        "by-tag.yaml",
        &format!("oci://{reference}"),
        &component,
    );
    let mut server = Server::spawn(
        &data,
        &[
            "--config",
            &by_tag,
            "--templates",
            work.join("templates").to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        server.output().contains("plugin resolved"),
        "{}",
        server.output()
    );
    assert!(
        server.output().contains(&manifest),
        "the resolved manifest is logged"
    );
    let (status, created) = post(
        &server.base,
        "/v2/tasks",
        json!({ "templateRef": "template:default/from-registry", "values": {} }),
    );
    assert_eq!(status, 201, "{created}");
    let events = wait_for_event(&server.base, created["id"].as_str().unwrap(), |e| {
        e["type"] == "completion"
    });
    assert_eq!(
        events.last().unwrap()["body"]["message"],
        "Run completed with status: completed",
        "{events:#?}"
    );
    server.terminate();

    // By manifest digest, with the registry stopped: the cache alone serves it.
    let by_digest = config(
        work,
        "by-digest.yaml",
        &format!("oci://{}/plugins/friendly@{manifest}", registry.address),
        &component,
    );
    registry.stop();
    let output = dry_run(work, &data, &by_digest);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["directoryContents"][0]["path"], "hello.txt");
    // By tag, with the registry stopped: the pinned component from the cache, with a warning.
    let output = dry_run(work, &data, &by_tag);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("using the cached component the pin names"));
    registry.resume();

    // One byte changed, pushed under the same tag: the pinned server refuses it.
    let mut changed = std::fs::read(FRIENDLY_GUEST).unwrap();
    let at = changed
        .windows(13)
        .position(|w| w == b"Does nothing.")
        .expect("the description is in the component");
    changed[at + 12] = b'!';
    let changed_file = work.join("changed.wasm");
    std::fs::write(&changed_file, &changed).unwrap();
    let (_, changed_component) = publish(&changed_file, &reference);
    assert_ne!(changed_component, component);
    let refused = scaffolder(&[
        "serve",
        "--port",
        "0",
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        &by_tag,
    ]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("its component digest is {changed_component}"))
            && stderr.contains(&format!("the configuration pins {component}")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was compiled"), "{stderr}");
}

/// A registry speaking plain HTTP without `--insecure`, and a reference that is not one,
/// are refused with what to do.
#[test]
fn publishing_mistakes_say_what_to_do() {
    let registry = Registry::start();
    let reference = format!("{}/plugins/friendly:1.0", registry.address);
    let output = scaffolder(&["plugin", "publish", FRIENDLY_GUEST, &reference]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("needs --insecure"),
        "{}",
        text(&output.stderr)
    );

    let output = scaffolder(&[
        "plugin",
        "publish",
        FRIENDLY_GUEST,
        "Not A Reference",
        "--insecure",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("host[:port]/name:tag"),
        "{}",
        text(&output.stderr)
    );

    let not_wasm = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_wasm.path(), b"not a component").unwrap();
    let output = scaffolder(&[
        "plugin",
        "publish",
        not_wasm.path().to_str().unwrap(),
        &reference,
        "--insecure",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("nothing was pushed"),
        "{}",
        text(&output.stderr)
    );
}
