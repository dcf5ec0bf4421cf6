//! `fs:rename`: moves files and directories inside the workspace, with the semantics of
//! fs-extra's `move` that Backstage uses: the destination's parent directories are
//! created, an existing destination is an error unless `overwrite` is set (then it is
//! replaced), and a directory cannot move into itself.

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result};
use serde::Deserialize;
use serde_json::json;

use crate::path::{WorkspacePath, is_missing, reason};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameInput {
    files: Vec<RenameEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameEntry {
    from: String,
    to: String,
    overwrite: Option<bool>,
}

/// Renames files and directories within the workspace.
pub struct Rename;

impl Action for Rename {
    const ID: &'static str = "fs:rename";
    type Input = RenameInput;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Renames files and directories within the workspace")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "from": {
                                    "type": "string",
                                    "description": "The source location of the file to be renamed"
                                },
                                "to": {
                                    "type": "string",
                                    "description": "The destination of the new file"
                                },
                                "overwrite": {
                                    "type": "boolean",
                                    "description": "Overwrite existing file or directory, default is false"
                                }
                            },
                            "required": ["from", "to"],
                            "additionalProperties": false
                        },
                        "description": "A list of file and directory names that will be renamed"
                    }
                },
                "required": ["files"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .supports_dry_run()
            .destructive(true)
            .idempotent(false)
            .example(
                "Rename specified files ",
                "steps:\n  - action: fs:rename\n    id: renameFiles\n    name: Rename files\n    input:\n      files:\n        - from: file1.txt\n          to: file1Renamed.txt\n        - from: file2.txt\n          to: file2Renamed.txt\n        - from: file3.txt\n          to: file3Renamed.txt\n          overwrite: true\n",
            )
    }

    fn run(ctx: &Context, input: RenameInput) -> Result<()> {
        let workspace = ctx.workspace();
        // Every entry is checked before anything is moved.
        let moves = input
            .files
            .iter()
            .map(|file| {
                if file.from.is_empty() || file.to.is_empty() {
                    return Err(ActionError::invalid_input(
                        "each file must have a from and to property",
                    ));
                }
                let from = WorkspacePath::resolve(workspace, &file.from)?;
                let to = WorkspacePath::resolve(workspace, &file.to)?;
                if from.is_root() || to.is_root() {
                    return Err(ActionError::invalid_input(format!(
                        "cannot rename {} to {}: the workspace itself cannot be renamed or replaced",
                        file.from, file.to
                    )));
                }
                Ok((from, to, file.overwrite.unwrap_or(false)))
            })
            .collect::<Result<Vec<_>>>()?;
        for (from, to, overwrite) in moves {
            let source = from.absolute(workspace);
            let destination = to.absolute(workspace);
            move_path(workspace, &from, &to, overwrite).map_err(|why| {
                ActionError::failed(format!("failed to rename {source} to {destination}: {why}"))
            })?;
            ctx.info(format!(
                "File {source} renamed to {destination} successfully"
            ));
        }
        Ok(())
    }
}

/// Moves `from` to `to`; the error is the reason, naming the path it concerns.
fn move_path(
    workspace: &str,
    from: &WorkspacePath,
    to: &WorkspacePath,
    overwrite: bool,
) -> std::result::Result<(), String> {
    let show = |path: &WorkspacePath| path.absolute(workspace);
    if let Err(err) = std::fs::symlink_metadata(from.local()) {
        return Err(format!("{}: {}", show(from), reason(&err)));
    }
    if from == to {
        return Err("source and destination are the same".to_owned());
    }
    if to.is_below(from) {
        return Err(format!("cannot move {} into itself", show(from)));
    }
    if let Some(parent) = to.parent().filter(|parent| !parent.is_root()) {
        std::fs::create_dir_all(parent.local())
            .map_err(|err| format!("creating {}: {}", show(&parent), reason(&err)))?;
    }
    match std::fs::symlink_metadata(to.local()) {
        Ok(_) if !overwrite => {
            return Err(format!(
                "{} already exists (set overwrite: true to replace it)",
                show(to)
            ));
        }
        Ok(existing) => {
            let removed = if existing.is_dir() {
                std::fs::remove_dir_all(to.local())
            } else {
                std::fs::remove_file(to.local())
            };
            removed.map_err(|err| format!("replacing {}: {}", show(to), reason(&err)))?;
        }
        Err(err) if is_missing(&err) => {}
        Err(err) => return Err(format!("{}: {}", show(to), reason(&err))),
    }
    std::fs::rename(from.local(), to.local()).map_err(|err| reason(&err))
}
