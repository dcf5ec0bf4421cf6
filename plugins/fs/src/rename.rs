//! `fs:rename`: moves files and directories inside the workspace, with the semantics of
//! fs-extra's `move` that Backstage uses: the destination's parent directories are
//! created, an existing destination is an error unless `overwrite` is set (then it is
//! replaced), and a directory cannot move into itself.

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result};
use serde::Deserialize;
use serde_json::json;

use scaffolder_plugin_sdk::files;

use crate::path::{WorkspacePath, is_missing};

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
        // Backstage checks and moves one entry after the other.
        for file in &input.files {
            if file.from.is_empty() || file.to.is_empty() {
                return Err(ActionError::invalid_input(
                    "each file must have a from and to property",
                ));
            }
            let from = WorkspacePath::resolve(workspace, &file.from)?;
            let to = WorkspacePath::resolve(workspace, &file.to)?;
            let source = from.absolute(workspace);
            let destination = to.absolute(workspace);
            if from.is_root() || to.is_root() {
                return Err(ActionError::invalid_input(format!(
                    "cannot rename {source} to {destination}: the workspace itself cannot be renamed or replaced"
                )));
            }
            move_path(workspace, &from, &to, file.overwrite.unwrap_or(false))
                .map_err(ActionError::failed)?;
            ctx.info(format!(
                "File {source} renamed to {destination} successfully"
            ));
        }
        Ok(())
    }
}

/// fs-extra's `move`, with its error messages.
fn move_path(
    workspace: &str,
    from: &WorkspacePath,
    to: &WorkspacePath,
    overwrite: bool,
) -> std::result::Result<(), String> {
    let (src, dest) = (from.absolute(workspace), to.absolute(workspace));
    let node = |err: &std::io::Error, syscall: &str, path: &str| {
        files::node_error(err, syscall, path, None)
    };
    // `stat.checkPaths`: an `lstat` of both.
    let source =
        std::fs::symlink_metadata(from.local()).map_err(|err| node(&err, "lstat", &src))?;
    let existing = match std::fs::symlink_metadata(to.local()) {
        Ok(metadata) => Some(metadata),
        Err(err) if is_missing(&err) => None,
        Err(err) => return Err(node(&err, "lstat", &dest)),
    };
    if let Some(existing) = &existing {
        if from == to {
            return Err("Source and destination must not be the same.".to_owned());
        }
        if source.is_dir() && !existing.is_dir() {
            return Err(format!(
                "Cannot overwrite non-directory '{dest}' with directory '{src}'."
            ));
        }
        if !source.is_dir() && existing.is_dir() {
            return Err(format!(
                "Cannot overwrite directory '{dest}' with non-directory '{src}'."
            ));
        }
    }
    if source.is_dir() && to.is_below(from) {
        return Err(format!(
            "Cannot move '{src}' to a subdirectory of itself, '{dest}'."
        ));
    }
    if let Some(parent) = to.parent().filter(|parent| !parent.is_root()) {
        std::fs::create_dir_all(parent.local())
            .map_err(|err| node(&err, "mkdir", &parent.absolute(workspace)))?;
    }
    if let Some(existing) = existing {
        if !overwrite {
            return Err("dest already exists.".to_owned());
        }
        let removed = if existing.is_dir() {
            std::fs::remove_dir_all(to.local())
        } else {
            std::fs::remove_file(to.local())
        };
        removed.map_err(|err| node(&err, "rm", &dest))?;
    }
    std::fs::rename(from.local(), to.local())
        .map_err(|err| files::node_error(&err, "rename", &src, Some(&dest)))
}
