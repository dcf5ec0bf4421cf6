//! `fs:delete`: deletes files and directories matched by glob patterns.
//!
//! Matching follows Backstage 4.2.0, which resolves each entry in the workspace and hands
//! it to `globby` with `dot: true`: backslashes count as separators, wildcards match
//! files (dotfiles included) but never directories, and a pattern matching nothing is not
//! an error. An entry that names an existing directory deletes the directory with
//! everything in it (Backstage deletes the files inside and leaves the empty directories);
//! the workspace itself (`.`) is emptied but kept.

use globset::{GlobBuilder, GlobMatcher};
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result};
use serde::Deserialize;
use serde_json::json;

use crate::path::{WorkspacePath, is_missing, list, read_failed, reason};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteInput {
    files: Vec<String>,
}

/// Deletes files and directories from the workspace.
pub struct Delete;

impl Action for Delete {
    const ID: &'static str = "fs:delete";
    type Input = DeleteInput;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Deletes files and directories from the workspace")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "files": {
                        "type": "array",
                        "items": { "type": "string" },
                        "description": "A list of files and directories that will be deleted"
                    }
                },
                "required": ["files"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .supports_dry_run()
            .destructive(true)
            .idempotent(true)
            .example(
                "Delete specified files",
                "steps:\n  - action: fs:delete\n    id: deleteFiles\n    name: Delete files\n    input:\n      files:\n        - file1.txt\n        - file2.txt\n",
            )
            .example(
                "Delete files with wildcard",
                "steps:\n  - action: fs:delete\n    id: deleteFiles\n    name: Delete files\n    input:\n      files:\n        - \"*.txt\"\n",
            )
            .example(
                "Delete all files in workspace",
                "steps:\n  - action: fs:delete\n    id: deleteFiles\n    name: Delete files\n    input:\n      files:\n        - \"**\"\n",
            )
    }

    fn run(ctx: &Context, input: DeleteInput) -> Result<()> {
        let workspace = ctx.workspace();
        // Every entry is checked before anything is deleted.
        let targets = input
            .files
            .iter()
            .map(|entry| {
                // Backstage turns Windows-style separators into `/` before globbing.
                let target =
                    WorkspacePath::resolve(workspace, &entry.replace('\\', "/")).map_err(|_| {
                        ActionError::invalid_input(format!("'{entry}' is outside the workspace"))
                    })?;
                Ok((entry, target))
            })
            .collect::<Result<Vec<_>>>()?;
        for (entry, target) in targets {
            let deleted = delete(ctx, entry, &target)?;
            if deleted == 0 {
                ctx.info(format!("Nothing to delete for {entry}"));
            }
        }
        Ok(())
    }
}

/// Deletes what `target` names or matches; returns how many entries were deleted.
fn delete(ctx: &Context, entry: &str, target: &WorkspacePath) -> Result<usize> {
    let found = match std::fs::symlink_metadata(target.local()) {
        Ok(metadata) => Some(metadata),
        Err(err) if is_missing(&err) => None,
        Err(err) => {
            return Err(ActionError::failed(format!(
                "failed to delete {}: {}",
                target.absolute(ctx.workspace()),
                reason(&err)
            )));
        }
    };
    match found {
        Some(_) if target.is_root() => {
            let entries = list(ctx.workspace(), target)?;
            for (path, is_dir) in &entries {
                remove(ctx, path, *is_dir)?;
            }
            Ok(entries.len())
        }
        Some(metadata) => {
            remove(ctx, target, metadata.is_dir())?;
            Ok(1)
        }
        None if has_wildcards(target.relative()) => {
            let matcher = GlobBuilder::new(target.relative())
                .literal_separator(true)
                .backslash_escape(false)
                .build()
                .map_err(|err| {
                    ActionError::invalid_input(format!(
                        "'{entry}' is not a valid glob pattern: {}",
                        err.kind()
                    ))
                })?
                .compile_matcher();
            let mut files = Vec::new();
            collect_matches(
                ctx.workspace(),
                &literal_prefix(target),
                &matcher,
                &mut files,
            )?;
            files.sort_by(|a, b| a.relative().cmp(b.relative()));
            for file in &files {
                remove(ctx, file, false)?;
            }
            Ok(files.len())
        }
        None => Ok(0),
    }
}

/// Characters that make a path component a pattern rather than a name.
const WILDCARDS: &[char] = &['*', '?', '[', '{'];

fn has_wildcards(path: &str) -> bool {
    path.contains(WILDCARDS)
}

/// The deepest directory of `pattern` written without wildcards: where matching starts.
fn literal_prefix(pattern: &WorkspacePath) -> WorkspacePath {
    pattern
        .relative()
        .split('/')
        .take_while(|part| !has_wildcards(part))
        .fold(WorkspacePath::root(), |dir, part| dir.join(part))
}

/// Adds every file below `dir` (symlinks included, never followed) that `matcher` matches.
fn collect_matches(
    workspace: &str,
    dir: &WorkspacePath,
    matcher: &GlobMatcher,
    out: &mut Vec<WorkspacePath>,
) -> Result<()> {
    let entries = match std::fs::read_dir(dir.local()) {
        Ok(entries) => entries,
        Err(err) if is_missing(&err) => return Ok(()),
        Err(err) => return Err(read_failed(workspace, dir, &err)),
    };
    for entry in entries {
        let entry = entry.map_err(|err| read_failed(workspace, dir, &err))?;
        let file_type = entry
            .file_type()
            .map_err(|err| read_failed(workspace, dir, &err))?;
        let path = dir.join(&entry.file_name().to_string_lossy());
        if file_type.is_dir() {
            collect_matches(workspace, &path, matcher, out)?;
        } else if matcher.is_match(path.relative()) {
            out.push(path);
        }
    }
    Ok(())
}

fn remove(ctx: &Context, path: &WorkspacePath, is_dir: bool) -> Result<()> {
    let absolute = path.absolute(ctx.workspace());
    let removed = if is_dir {
        std::fs::remove_dir_all(path.local())
    } else {
        std::fs::remove_file(path.local())
    };
    removed.map_err(|err| {
        ActionError::failed(format!("failed to delete {absolute}: {}", reason(&err)))
    })?;
    ctx.info(format!("File {absolute} deleted successfully"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(pattern: &str) -> String {
        let pattern = WorkspacePath::resolve("/workspace", pattern).unwrap();
        literal_prefix(&pattern).relative().to_owned()
    }

    #[test]
    fn matching_starts_below_the_literal_part_of_a_pattern() {
        assert_eq!(prefix("*.txt"), "");
        assert_eq!(prefix("**"), "");
        assert_eq!(prefix("src/**/*.rs"), "src");
        assert_eq!(prefix("a/b/c?.md"), "a/b");
        assert_eq!(prefix("a/{b,c}/d"), "a");
    }
}
