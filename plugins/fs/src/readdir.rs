//! `fs:readdir`: lists directories of the workspace, as Node's
//! `fs.readdir(path, { recursive, withFileTypes: true })` does for Backstage: entries of a
//! directory sorted by name, a recursive listing descending from the last directory found
//! first, symlinks listed as files and never followed.

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, files};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::path::{WorkspacePath, list};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadDirInput {
    paths: Vec<String>,
    #[serde(default)]
    recursive: bool,
}

/// One file or directory found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The entry's own name.
    pub name: String,
    /// Relative to the workspace, e.g. `docs/index.md`.
    pub path: String,
    /// Absolute in the sandbox, e.g. `/workspace/docs/index.md`.
    pub full_path: String,
}

#[derive(Debug, Default, Serialize)]
pub struct ReadDirOutput {
    pub files: Vec<Entry>,
    pub folders: Vec<Entry>,
}

/// Reads files and directories from the workspace.
pub struct ReadDir;

impl Action for ReadDir {
    const ID: &'static str = "fs:readdir";
    type Input = ReadDirInput;
    type Output = ReadDirOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Reads files and directories from the workspace")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "paths": {
                        "type": "array",
                        "items": { "type": "string", "minLength": 1 }
                    },
                    "recursive": { "type": "boolean", "default": false }
                },
                "required": ["paths"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .output_schema(json!({
                "type": "object",
                "properties": {
                    "files": { "type": "array", "items": entry_schema() },
                    "folders": { "type": "array", "items": entry_schema() }
                },
                "required": ["files", "folders"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .supports_dry_run()
            .read_only()
            .example(
                "Read complete content of workspace",
                "steps:\n  - action: fs:readdir\n    id: read-workdir\n    name: Read workspace directory\n    input:\n      paths:\n        - .\n",
            )
            .example(
                "Get content of the docs folder",
                "steps:\n  - action: fs:readdir\n    id: read-workdir\n    name: Read workspace directory\n    input:\n      paths:\n        - docs\n      recursive: true\n",
            )
            .example(
                "Get content of multiple folders",
                "steps:\n  - action: fs:readdir\n    id: read-workdir\n    name: Read workspace directory\n    input:\n      paths:\n        - foo\n        - bar\n      recursive: true\n",
            )
    }

    fn run(ctx: &Context, input: ReadDirInput) -> Result<ReadDirOutput> {
        let workspace = ctx.workspace();
        let mut output = ReadDirOutput::default();
        // Backstage resolves and reads one path after the other, and logs nothing.
        for path in &input.paths {
            let dir = WorkspacePath::resolve(workspace, path)?;
            if let Err(err) = std::fs::read_dir(dir.local()) {
                return Err(ActionError::failed(files::node_error(
                    &err,
                    "scandir",
                    &dir.absolute(workspace),
                    None,
                )));
            }
            read_dir(workspace, &dir, input.recursive, &mut output)?;
        }
        Ok(output)
    }
}

fn entry_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "Name of the file or directory" },
            "path": {
                "type": "string",
                "description": "path to the file or directory relative to the workspace"
            },
            "fullPath": { "type": "string", "description": "full path to the file or directory" }
        },
        "required": ["name", "path", "fullPath"],
        "additionalProperties": false
    })
}

/// Appends the entries of `dir` (and, when `recursive`, of every directory below it).
fn read_dir(
    workspace: &str,
    dir: &WorkspacePath,
    recursive: bool,
    output: &mut ReadDirOutput,
) -> Result<()> {
    // Node keeps a stack of listed directories and takes the most recent one next.
    let mut pending = vec![list(workspace, dir)?];
    while let Some(listing) = pending.pop() {
        for (path, is_dir) in listing {
            let name = path.relative().rsplit('/').next().unwrap_or_default();
            let entry = Entry {
                name: name.to_owned(),
                path: path.relative().to_owned(),
                full_path: path.absolute(workspace),
            };
            if is_dir {
                output.folders.push(entry);
                if recursive {
                    pending.push(list(workspace, &path)?);
                }
            } else {
                output.files.push(entry);
            }
        }
    }
    Ok(())
}
