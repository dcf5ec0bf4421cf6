//! `scaffolder plugin test`: runs a plugin's actions in the production sandbox (the same
//! runtime, grants and default limits as a server), each case in a fresh temporary
//! workspace, and checks what came out: the output, the files, the log, or the failure.
//! Before the action runs, its input is checked against its schema by the engine's own
//! check (`scaffolder_engine::check_step_input`), so an input a template step would
//! refuse is refused here too, with the same message. Failure kinds are spelt as
//! `StepFailureKind` serialises them (`invalidInput`), in case files and in messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use scaffolder_runtime::{
    Checkpoint, LogLevel, Plugin, StepContext, StepFailure, StepFailureKind, StepHost, StepRequest,
};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use tokio_util::sync::CancellationToken;

use crate::values;

/// A case file: one action run and what it must produce.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    pub action: String,
    #[serde(default)]
    pub input: Json,
    /// Run as in a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// Secrets for this case (test values), on top of `--secret`.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// A directory copied into the workspace first, relative to the case file.
    pub workspace: Option<PathBuf>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The whole output, exactly.
    pub output: Option<Json>,
    /// Files the workspace must hold afterwards, with exactly this text.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Texts that some log line must contain.
    #[serde(default)]
    pub logs: Vec<String>,
    /// The run must fail like this.
    pub failure: Option<ExpectedFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// `invalidInput`, `failed`, `denied`, `trap`, `timeout`, `outOfMemory`, ...; another
    /// spelling is refused with the list of kinds.
    pub kind: Option<StepFailureKind>,
    /// Text the failure message must contain.
    pub message: Option<String>,
}

/// `--input`: JSON or YAML text, or `@FILE`.
pub fn read_input(input: &str) -> anyhow::Result<Json> {
    match input.strip_prefix('@') {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the input file {file}"))?;
            values::parse_yaml(&text, file)
        }
        None => values::parse_yaml(input, "--input"),
    }
}

/// `--case` files, else every `tests/cases/*.yaml` of the crate, sorted.
pub fn read_cases(plugin: &Path, given: &[PathBuf]) -> anyhow::Result<Vec<(String, Case)>> {
    let files: Vec<PathBuf> = if given.is_empty() {
        let dir = plugin.join("tests/cases");
        let entries = std::fs::read_dir(&dir).with_context(|| {
            format!(
                "no test cases: {} does not exist; add case files there, give --case FILE, or run one \
                 action with --action ID --input JSON",
                dir.display()
            )
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        files
    } else {
        given.to_vec()
    };
    if files.is_empty() {
        bail!("no test cases found; add tests/cases/*.yaml or give --case FILE");
    }
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let value = values::parse_yaml(&text, &file.display().to_string())?;
            let mut case: Case = serde_json::from_value(value)
                .with_context(|| format!("{} is not a test case", file.display()))?;
            if let Some(dir) = &case.workspace {
                case.workspace = Some(file.parent().unwrap_or(Path::new(".")).join(dir));
            }
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, case))
        })
        .collect()
}

/// What one run produced.
pub struct Ran {
    pub result: Result<Json, StepFailure>,
    pub logs: Vec<String>,
    /// Every file in the workspace afterwards, as text (lossy).
    pub files: BTreeMap<String, String>,
}

pub async fn run_case(
    plugin: &Plugin,
    case: &Case,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<Ran> {
    let workspace = tempfile::Builder::new()
        .prefix("scaffolder-plugin-test-")
        .tempdir()
        .context("cannot create a temporary workspace")?;
    if let Some(dir) = &case.workspace {
        copy_dir(dir, workspace.path())
            .with_context(|| format!("cannot copy {} into the workspace", dir.display()))?;
    }
    let host = Arc::new(TestHost::default());
    if let Err(message) = check_input(plugin, case) {
        return Ok(Ran {
            result: Err(StepFailure::new(StepFailureKind::InvalidInput, message)),
            logs: Vec::new(),
            files: BTreeMap::new(),
        });
    }
    let result = plugin
        .execute(
            StepRequest {
                action_id: case.action.clone(),
                input: case.input.clone(),
                context: StepContext {
                    task_id: "plugin-test".into(),
                    step_id: "test".into(),
                    step_name: case.action.clone(),
                    dry_run: case.dry_run,
                    ..StepContext::default()
                },
                workspace: workspace.path().to_path_buf(),
                template_directory: None,
                secrets: secrets.clone(),
                cancel: CancellationToken::new(),
                workspace_cap: None,
            },
            host.clone(),
        )
        .await;
    let mut files = BTreeMap::new();
    read_tree(workspace.path(), workspace.path(), &mut files)
        .context("cannot read the workspace after the run")?;
    let logs = std::mem::take(&mut *host.logs.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Ran {
        result,
        logs,
        files,
    })
}

/// The engine's check of the case's input against the action's input schema, as a
/// template step gets it; an action the plugin lacks is left to the plugin to refuse.
fn check_input(plugin: &Plugin, case: &Case) -> Result<(), String> {
    let actions = &plugin.info().actions;
    match actions.iter().find(|a| a.id == case.action) {
        Some(action) => {
            scaffolder_engine::check_step_input(&case.action, &action.input_schema, &case.input)
        }
        None => Ok(()),
    }
}

/// Every way the run differs from the case's expectations.
pub fn check(case: &Case, ran: &Ran) -> Vec<String> {
    let expect = &case.expect;
    let mut problems = Vec::new();
    match (&ran.result, &expect.failure) {
        (Ok(output), None) => {
            if let Some(expected) = &expect.output
                && expected != output
            {
                problems.push(format!(
                    "output differs\nexpected: {expected}\n  actual: {output}"
                ));
            }
        }
        (Ok(output), Some(_)) => {
            problems.push(format!(
                "expected a failure, but it succeeded with {output}"
            ));
        }
        (Err(failure), None) => {
            problems.push(format!(
                "failed ({}): {}",
                kind_name(failure.kind),
                failure.message
            ));
        }
        (Err(failure), Some(expected)) => {
            if let Some(kind) = expected.kind
                && kind != failure.kind
            {
                problems.push(format!(
                    "failed as {}, expected {}: {}",
                    kind_name(failure.kind),
                    kind_name(kind),
                    failure.message
                ));
            }
            if let Some(text) = &expected.message
                && !failure.message.contains(text.as_str())
            {
                problems.push(format!(
                    "the failure message does not contain '{text}': {}",
                    failure.message
                ));
            }
        }
    }
    for (path, expected) in &expect.files {
        match ran.files.get(path) {
            None => problems.push(format!("{path} was not written")),
            Some(actual) if actual != expected => problems.push(format!(
                "{path} differs\nexpected: {expected:?}\n  actual: {actual:?}"
            )),
            Some(_) => {}
        }
    }
    for text in &expect.logs {
        if !ran.logs.iter().any(|line| line.contains(text.as_str())) {
            problems.push(format!("no log line contains '{text}'"));
        }
    }
    problems
}

/// The kind as case files name it (`invalidInput`).
pub fn kind_name(kind: StepFailureKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The sandbox's host side for a test: logs collected, checkpoints in memory, added
/// secrets kept for the run.
#[derive(Default)]
struct TestHost {
    logs: Mutex<Vec<String>>,
    checkpoints: Mutex<Map<String, Json>>,
}

#[async_trait::async_trait]
impl StepHost for TestHost {
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{level}: {message}"));
    }

    async fn add_secret(&self, _name: &str, _value: &str) -> Result<(), String> {
        Ok(())
    }

    async fn checkpoint_get(&self, key: &str) -> Result<Option<Checkpoint>, String> {
        let checkpoints = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        checkpoints
            .get(key)
            .map(|v| serde_json::from_value(v.clone()).map_err(|e| e.to_string()))
            .transpose()
    }

    async fn checkpoint_set(&self, key: &str, value: Checkpoint) -> Result<(), String> {
        let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
        self.checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), value);
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            read_tree(root, &path, out)?;
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let content = std::fs::read(&path)?;
            out.insert(relative, String::from_utf8_lossy(&content).into_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ran(result: Result<Json, StepFailure>) -> Ran {
        Ran {
            result,
            logs: vec!["info: Hello, World!".into()],
            files: [("GREETING.txt".to_owned(), "Hello, World!\n".to_owned())].into(),
        }
    }

    fn case(expect: Json) -> Case {
        serde_json::from_value(json!({ "action": "hello:greet", "expect": expect })).unwrap()
    }

    #[test]
    fn a_matching_run_passes() {
        let case = case(json!({
            "output": { "greeting": "Hello, World!" },
            "files": { "GREETING.txt": "Hello, World!\n" },
            "logs": ["Hello"]
        }));
        assert!(check(&case, &ran(Ok(json!({ "greeting": "Hello, World!" })))).is_empty());
    }

    #[test]
    fn each_difference_is_named() {
        let case = case(json!({
            "output": { "greeting": "Hi" },
            "files": { "GREETING.txt": "Hi\n", "missing.txt": "" },
            "logs": ["Goodbye"]
        }));
        let problems = check(&case, &ran(Ok(json!({ "greeting": "Hello, World!" }))));
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("output differs"));
        assert!(problems[1].starts_with("GREETING.txt differs"));
        assert_eq!(problems[2], "missing.txt was not written");
        assert_eq!(problems[3], "no log line contains 'Goodbye'");
    }

    #[test]
    fn failures_are_checked_by_kind_and_message() {
        let failure = StepFailure::new(StepFailureKind::InvalidInput, "unknown field `nmae`");
        let expected = case(json!({ "failure": { "kind": "invalidInput", "message": "nmae" } }));
        assert!(check(&expected, &ran(Err(failure.clone()))).is_empty());
        let wrong_kind = case(json!({ "failure": { "kind": "denied" } }));
        assert_eq!(check(&wrong_kind, &ran(Err(failure.clone()))).len(), 1);
        let unexpected = case(json!({}));
        assert!(check(&unexpected, &ran(Err(failure)))[0].starts_with("failed (invalidInput)"));
        assert!(check(&expected, &ran(Ok(json!({}))))[0].starts_with("expected a failure"));
    }

    #[test]
    fn case_files_refuse_unknown_keys() {
        let err =
            serde_json::from_value::<Case>(json!({ "action": "a:b", "expected": {} })).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `expected`"),
            "{err}"
        );
        // The WIT's spelling (`invalid-input`) is not the case files'.
        let err = serde_json::from_value::<Case>(json!({
            "action": "a:b", "expect": { "failure": { "kind": "invalid-input" } }
        }))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown variant `invalid-input`, expected one of `invalidInput`"),
            "{err}"
        );
    }
}
