//! Backstage's `debug:log` and `debug:wait`, for developing and testing templates.

use std::path::Path;
use std::time::{Duration, Instant};

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, plugin};
use serde::Deserialize;
use serde_json::{Value, json};

/// `listWorkspace`: `true`/`"with-filenames"` lists paths, `"with-contents"` adds contents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ListWorkspace {
    Flag(bool),
    Mode(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogInput {
    message: Option<String>,
    list_workspace: Option<ListWorkspace>,
}

/// Writes a message into the log and/or lists all files in the workspace.
pub struct Log;

impl Action for Log {
    const ID: &'static str = "debug:log";
    type Input = Value;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Writes a message into the log and/or lists all files in the workspace.")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "message": { "type": "string", "description": "Message to output." },
                    "listWorkspace": {
                        "anyOf": [
                            { "type": "boolean" },
                            { "type": "string", "enum": ["with-filenames", "with-contents"] }
                        ],
                        "description": "List all files in the workspace, if true or \"with-filenames\". Use \"with-contents\" to display file contents as well."
                    }
                },
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .supports_dry_run()
            .read_only()
            .example(
                "Write a debug message",
                "steps:\n  - action: debug:log\n    id: write-debug-line\n    name: Write \"Hello Backstage!\" log line\n    input:\n      message: Hello Backstage!\n",
            )
            .example(
                "List the workspace directory",
                "steps:\n  - action: debug:log\n    id: write-workspace-directory\n    name: List the workspace directory\n    input:\n      listWorkspace: true\n",
            )
            .example(
                "List the workspace directory with file contents",
                "steps:\n  - action: debug:log\n    id: write-workspace-directory\n    name: List the workspace directory with file contents\n    input:\n      listWorkspace: with-contents\n",
            )
    }

    fn run(ctx: &Context, raw: Value) -> Result<()> {
        ctx.info(serde_json::to_string_pretty(&raw).unwrap_or_default());
        let input: LogInput = serde_json::from_value(raw)
            .map_err(|e| ActionError::invalid_input(format!("debug:log: {e}")))?;
        if let Some(message) = input.message.filter(|m| !m.is_empty()) {
            ctx.info(message);
        }
        let with_contents = match input.list_workspace {
            None | Some(ListWorkspace::Flag(false)) => return Ok(()),
            Some(ListWorkspace::Flag(true)) => false,
            Some(ListWorkspace::Mode(mode)) => mode == "with-contents",
        };
        let mut files = Vec::new();
        list_files(Path::new("."), &mut files)
            .map_err(|e| ActionError::failed(format!("could not list the workspace: {e}")))?;
        let lines: Vec<String> = files
            .iter()
            .map(|path| {
                let relative = path.strip_prefix("./").unwrap_or(path);
                if with_contents {
                    // Node reads the file as UTF-8 (invalid bytes become U+FFFD); an
                    // unreadable one is skipped. This entry's indent is Backstage's.
                    match std::fs::read(path) {
                        Ok(bytes) => {
                            format!(" - {relative}:\n\n  {}", String::from_utf8_lossy(&bytes))
                        }
                        Err(_) => format!(" - {relative}: [skipped]"),
                    }
                } else {
                    format!("  - {relative}")
                }
            })
            .collect();
        ctx.info(format!("Workspace:\n{}", lines.join("\n")));
        Ok(())
    }
}

/// Every file below `dir`, depth first with each folder's names sorted, as Backstage's
/// `recursiveReadDir` lists them (Node's `readdir` sorts).
fn list_files(dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        // `fs.stat` follows links.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            list_files(&path, out)?;
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitInput {
    minutes: Option<f64>,
    seconds: Option<f64>,
    milliseconds: Option<f64>,
}

/// Backstage's upper bound on `debug:wait`.
const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// Waits for a certain period of time, ending early when the task is cancelled.
pub struct Wait;

impl Action for Wait {
    const ID: &'static str = "debug:wait";
    type Input = WaitInput;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Waits for a certain period of time.")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "minutes": { "type": "number", "description": "Waiting period in minutes." },
                    "seconds": { "type": "number", "description": "Waiting period in seconds." },
                    "milliseconds": { "type": "number", "description": "Waiting period in milliseconds." }
                },
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .read_only()
            .example(
                "Waiting for 50 milliseconds",
                "steps:\n  - action: debug:wait\n    id: wait-milliseconds\n    name: Waiting for 50 milliseconds\n    input:\n      milliseconds: 50\n",
            )
            .example(
                "Waiting for 5 seconds",
                "steps:\n  - action: debug:wait\n    id: wait-5sec\n    name: Waiting for 5 seconds\n    input:\n      seconds: 5\n",
            )
            .example(
                "Waiting for 1 minute",
                "steps:\n  - action: debug:wait\n    id: wait-1min\n    name: Waiting for 1 minute\n    input:\n      minutes: 1\n",
            )
    }

    fn run(ctx: &Context, input: WaitInput) -> Result<()> {
        let millis = input.minutes.unwrap_or(0.0) * 60_000.0
            + input.seconds.unwrap_or(0.0) * 1000.0
            + input.milliseconds.unwrap_or(0.0);
        if !millis.is_finite() || millis < 0.0 {
            return Err(ActionError::invalid_input(
                "debug:wait: the waiting period must be a positive number",
            ));
        }
        let wait = Duration::from_millis(millis as u64);
        if wait > MAX_WAIT {
            return Err(ActionError::failed(
                "Waiting duration is longer than the maximum threshold of 10 minutes",
            ));
        }
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if ctx.is_cancelled() {
                ctx.info("Waiting ended early: the task was cancelled");
                return Ok(());
            }
            let left = until.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        Ok(())
    }
}

plugin!(Log, Wait);
