//! The compile cache: a plugin this host loaded before is described from the cache and
//! its code is mapped at its first step; a missing or damaged compilation is handled.

use std::path::{Path, PathBuf};

use scaffolder_runtime::{Plugin, PluginConfig, Runtime, RuntimeConfig, StepFailureKind};
use scaffolder_sandbox_tests::{request, run, workspace};
use scaffolder_test_artifacts::FRIENDLY_GUEST;
use serde_json::json;

/// Loads the friendly guest with a new runtime (as a restarted server does) on `cache`.
async fn load_with_cache(cache: &Path) -> Plugin {
    let runtime = Runtime::new(&RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    runtime
        .load_file(Path::new(FRIENDLY_GUEST), PluginConfig::default())
        .await
        .unwrap()
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

/// Writes a file with `friendly:write-file` and returns the step's outcome.
async fn write_file(plugin: &Plugin) -> Result<String, scaffolder_runtime::StepFailure> {
    let ws = workspace();
    let input = json!({ "path": "hello.txt", "content": "hi" });
    let (outcome, _) = run(plugin, request("friendly:write-file", input, ws.path())).await;
    outcome.map(|_| std::fs::read_to_string(ws.path().join("hello.txt")).unwrap())
}

#[tokio::test]
async fn a_plugin_loaded_before_is_described_from_the_cache_and_runs() {
    let cache = tempfile::tempdir().unwrap();
    let first = load_with_cache(cache.path()).await;
    assert!(!first.cache_hit());
    assert_eq!(files_ending(cache.path(), ".cwasm").len(), 1);
    assert_eq!(files_ending(cache.path(), ".json").len(), 1);

    let again = load_with_cache(cache.path()).await;
    assert!(again.cache_hit());
    assert_eq!(again.info(), first.info());
    assert_eq!(again.wit_version(), first.wit_version());
    assert_eq!(again.digest(), first.digest());
    // The code is mapped by the first step, and the second reuses it.
    assert_eq!(write_file(&again).await.unwrap(), "hi");
    assert_eq!(write_file(&again).await.unwrap(), "hi");
}

#[tokio::test]
async fn metadata_without_its_compilation_is_not_trusted() {
    let cache = tempfile::tempdir().unwrap();
    load_with_cache(cache.path()).await;
    for code in files_ending(cache.path(), ".cwasm") {
        std::fs::remove_file(code).unwrap();
    }
    let plugin = load_with_cache(cache.path()).await;
    assert!(
        !plugin.cache_hit(),
        "the plugin is compiled and described again"
    );
    assert_eq!(write_file(&plugin).await.unwrap(), "hi");
}

#[tokio::test]
async fn a_damaged_compilation_fails_the_step_and_says_what_to_do() {
    let cache = tempfile::tempdir().unwrap();
    load_with_cache(cache.path()).await;
    let plugin = load_with_cache(cache.path()).await;
    let code = files_ending(cache.path(), ".cwasm").remove(0);
    std::fs::write(&code, b"not a compiled component").unwrap();

    let failure = write_file(&plugin).await.unwrap_err();
    assert_eq!(failure.kind, StepFailureKind::Host);
    assert!(
        failure.message.contains(&code.display().to_string())
            && failure.message.contains("remove the file and restart"),
        "{}",
        failure.message
    );
}
