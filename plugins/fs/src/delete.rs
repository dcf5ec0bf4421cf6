//! `fs:delete`: deletes the files matched by glob patterns.
//!
//! Matching follows Backstage 4.2.0, which resolves each entry in the workspace and hands
//! it to `globby` with `dot: true`: backslashes count as separators, wildcards match
//! files (dotfiles included) but never directories, and a pattern matching nothing is not
//! an error. An entry that names an existing directory means every file below it (globby's
//! `expandDirectories`): the files are deleted one by one, the empty directories stay.
//! Files are deleted, and logged, in the order globby lists them: breadth first, names
//! sorted.

use globset::{GlobBuilder, GlobMatcher};
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result};
use serde::Deserialize;
use serde_json::json;

use crate::path::{WorkspacePath, is_missing, list, reason};

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
        for entry in &input.files {
            let target = WorkspacePath::resolve(workspace, &entry.replace('\\', "/"))?;
            for file in matches(workspace, &target)? {
                remove(ctx, &file)?;
            }
        }
        Ok(())
    }
}

/// The files an entry names, in globby's order.
fn matches(workspace: &str, target: &WorkspacePath) -> Result<Vec<WorkspacePath>> {
    let pattern = if has_wildcards(target.relative()) {
        target.relative().to_owned()
    } else {
        match std::fs::symlink_metadata(target.local()) {
            Ok(metadata) if metadata.is_dir() && target.is_root() => "**".to_owned(),
            Ok(metadata) if metadata.is_dir() => format!("{}/**", target.relative()),
            Ok(_) => return Ok(vec![target.clone()]),
            Err(err) if is_missing(&err) => return Ok(Vec::new()),
            Err(err) => {
                return Err(ActionError::failed(format!(
                    "failed to delete {}: {}",
                    target.absolute(workspace),
                    reason(&err)
                )));
            }
        }
    };
    let matcher = GlobBuilder::new(&pattern)
        .literal_separator(true)
        .backslash_escape(false)
        .build()
        .map_err(|err| {
            ActionError::invalid_input(format!(
                "'{pattern}' is not a valid glob pattern: {}",
                err.kind()
            ))
        })?
        .compile_matcher();
    let prefix = WorkspacePath::resolve(workspace, &literal_prefix(&pattern))?;
    let mut files = Vec::new();
    collect_matches(workspace, &prefix, &matcher, &mut files)?;
    Ok(files)
}

const WILDCARDS: &[char] = &['*', '?', '[', '{'];

fn has_wildcards(path: &str) -> bool {
    path.contains(WILDCARDS)
}

/// The folders of `pattern` before its first wildcard: where matching starts.
fn literal_prefix(pattern: &str) -> String {
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts
        .iter()
        .take(parts.len() - 1)
        .take_while(|part| !has_wildcards(part))
        .copied()
        .collect::<Vec<_>>();
    literal.join("/")
}

/// The files below `dir` that `matcher` matches, breadth first with names sorted, as
/// fast-glob walks.
fn collect_matches(
    workspace: &str,
    dir: &WorkspacePath,
    matcher: &GlobMatcher,
    out: &mut Vec<WorkspacePath>,
) -> Result<()> {
    let mut folders = std::collections::VecDeque::from([dir.clone()]);
    while let Some(dir) = folders.pop_front() {
        let entries = match list(workspace, &dir) {
            Ok(entries) => entries,
            Err(_) if !dir.local().is_dir() => continue,
            Err(err) => return Err(err),
        };
        for (path, is_dir) in entries {
            if is_dir {
                folders.push_back(path);
            } else if matcher.is_match(path.relative()) {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// fs-extra's `remove` of one file, and Backstage's log line.
fn remove(ctx: &Context, path: &WorkspacePath) -> Result<()> {
    let absolute = path.absolute(ctx.workspace());
    std::fs::remove_file(path.local()).map_err(|err| {
        ActionError::failed(format!("failed to delete {absolute}: {}", reason(&err)))
    })?;
    ctx.info(format!("File {absolute} deleted successfully"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_starts_below_the_literal_part_of_a_pattern() {
        assert_eq!(literal_prefix("*.txt"), "");
        assert_eq!(literal_prefix("**"), "");
        assert_eq!(literal_prefix("src/**/*.rs"), "src");
        assert_eq!(literal_prefix("a/b/c?.md"), "a/b");
        assert_eq!(literal_prefix("a/{b,c}/d"), "a");
        assert_eq!(literal_prefix("gone/**"), "gone");
    }
}
