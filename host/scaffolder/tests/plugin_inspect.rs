//! `scaffolder plugin inspect` on plugins and on files that are not plugins.

mod common;

use std::process::{Command, Output};

use common::inspected_action_ids;

use scaffolder_test_artifacts::{FRIENDLY_GUEST, FUTURE_VERSION_GUEST, NOT_A_PLUGIN_GUEST};

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scaffolder"))
        .args(["plugin", "inspect"])
        .args(args)
        .output()
        .expect("running scaffolder")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn inspect_prints_actions_capabilities_version_and_digest() {
    let out = inspect(&[FRIENDLY_GUEST]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let bytes = std::fs::read(FRIENDLY_GUEST).unwrap();
    let digest = sha256_hex(&bytes);
    assert!(
        text.contains(&format!("digest:  sha256:{digest}")),
        "{text}"
    );
    assert!(text.contains("wit:     scaffolder:action@0.1.1"), "{text}");
    assert!(text.contains("friendly:http-get"), "{text}");
    assert!(text.contains("outbound HTTP  http://127.0.0.1:*"), "{text}");
    assert!(text.contains("secret         deploy-token"), "{text}");
    assert!(
        text.contains("\"required\""),
        "input schemas are shown: {text}"
    );
}

#[test]
fn inspect_json_is_machine_readable() {
    let out = inspect(&["--json", FRIENDLY_GUEST]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["witPackage"], "scaffolder:action@0.1.1");
    let ids = inspected_action_ids(&json);
    assert!(ids.contains(&"friendly:noop"));
    assert_eq!(
        json["actions"][0]["capabilities"]["outboundHttp"],
        serde_json::json!([])
    );
}

#[test]
fn inspect_rejects_a_core_module() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.wasm");
    std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
    let out = inspect(&[file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is a core WebAssembly module, not a component"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("wasm32-wasip2"), "{}", stderr(&out));
}

#[test]
fn inspect_rejects_a_file_that_is_not_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.wasm");
    std::fs::write(&file, "just text").unwrap();
    let out = inspect(&[file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a WebAssembly file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_rejects_a_missing_file() {
    let out = inspect(&["/nonexistent/plugin.wasm"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/plugin.wasm does not exist; give a plugin component"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_rejects_a_newer_wit_version() {
    let out = inspect(&[FUTURE_VERSION_GUEST]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("targets scaffolder:action@0.2.0"), "{err}");
    assert!(err.contains("implements scaffolder:action@0.1.1"), "{err}");
}

#[test]
fn inspect_rejects_a_component_without_the_plugin_export() {
    let out = inspect(&[NOT_A_PLUGIN_GUEST]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("does not export `scaffolder:action/plugin@0.1.1`"),
        "{err}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
