//! Publishing a directory as a repository's first commit, shared by `publish:git` and
//! `publish:github` (Backstage's `initRepoAndPush`): stage the files, commit them with
//! the author and message from the inputs or the operator's defaults, push the branch.

use std::path::Path;

use scaffolder_plugin_sdk::{ActionError, Context, Result, Value, files, json, paths};
use serde::{Deserialize, Serialize};

use crate::objects::{self, ObjectId, Signature};
use crate::smart_http::Remote;
use crate::{pack, worktree};

/// Backstage's author when neither the inputs nor `scaffolder.defaultAuthor` name one.
const DEFAULT_AUTHOR_NAME: &str = "Scaffolder";
const DEFAULT_AUTHOR_EMAIL: &str = "scaffolder@backstage.io";
/// Backstage's message when neither the input nor `scaffolder.defaultCommitMessage` give one.
const DEFAULT_COMMIT_MESSAGE: &str = "initial commit";

/// The commit inputs both publishers share (flattened into their inputs).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInputs {
    pub source_path: Option<String>,
    pub git_commit_message: Option<String>,
    pub git_author_name: Option<String>,
    pub git_author_email: Option<String>,
}

impl CommitInputs {
    /// Their input schema properties, as Backstage's publishers describe them.
    pub fn schema_properties() -> Value {
        let string = |title: &str, description: &str| json!({ "title": title, "description": description, "type": "string" });
        json!({
            "sourcePath": string("Source Path", "Path within the workspace that will be used as the repository root. If omitted, the entire workspace will be published as the repository."),
            "gitCommitMessage": string("Git Commit Message", "Sets the commit message on the repository. The default value is 'initial commit'"),
            "gitAuthorName": string("Default Author Name", "Sets the default author name for the commit. The default value is 'Scaffolder'"),
            "gitAuthorEmail": string("Default Author Email", "Sets the default author email for the commit."),
        })
    }
}

/// What both publishers output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishOutput {
    pub remote_url: String,
    pub repo_contents_url: String,
    pub commit_hash: String,
}

impl PublishOutput {
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "remoteUrl": { "title": "A URL to the repository with the provider", "type": "string" },
                "repoContentsUrl": { "title": "A URL to the root of the repository", "type": "string" },
                "commitHash": { "title": "The git commit hash of the initial commit", "type": "string" }
            }
        })
    }
}

/// `properties` with the commit inputs' properties added.
pub fn with_commit_properties(mut properties: Value) -> Value {
    if let (Some(map), Value::Object(commit)) = (
        properties.as_object_mut(),
        CommitInputs::schema_properties(),
    ) {
        map.extend(commit);
    }
    properties
}

/// Commits the workspace (or `sourcePath` in it) and pushes it as `branch`; returns the
/// commit's name.
///
/// The commit time is kept in a checkpoint, so a re-run of the step (after a crash,
/// say) builds the very same commit; when the remote already has the branch at that
/// commit, nothing is pushed again. A branch holding anything else is never
/// overwritten.
pub fn publish(
    ctx: &Context,
    remote: &Remote,
    branch: &str,
    inputs: &CommitInputs,
) -> Result<ObjectId> {
    let source = match inputs.source_path.as_deref() {
        Some(path) => paths::workspace_child(ctx, path)?,
        None => ctx.workspace().to_owned(),
    };
    let (tree, file_count) = worktree::read(Path::new(&source), |path| files::mode(path))?;
    if file_count == 0 {
        return Err(ActionError::invalid_input(format!(
            "there are no files to publish in {}: fetch a skeleton into the workspace first, or check sourcePath",
            inputs.source_path.as_deref().unwrap_or("the workspace")
        )));
    }
    let time: i64 = ctx.checkpoint("commit-time", || Ok(now()))?;
    let author = Signature {
        name: setting(
            ctx,
            inputs.git_author_name.as_deref(),
            "scaffolder.defaultAuthor.name",
        )
        .unwrap_or_else(|| DEFAULT_AUTHOR_NAME.to_owned()),
        email: setting(
            ctx,
            inputs.git_author_email.as_deref(),
            "scaffolder.defaultAuthor.email",
        )
        .unwrap_or_else(|| DEFAULT_AUTHOR_EMAIL.to_owned()),
        time,
    };
    let message = setting(
        ctx,
        inputs.git_commit_message.as_deref(),
        "scaffolder.defaultCommitMessage",
    )
    .unwrap_or_else(|| DEFAULT_COMMIT_MESSAGE.to_owned());

    let mut objects = Vec::new();
    let tree = objects::write_tree(&tree, &mut objects);
    let commit = objects::root_commit(tree, &author, &message);
    let commit_id = commit.id;
    objects.push(commit);

    let advertised = remote.advertised_refs()?;
    let refname = format!("refs/heads/{branch}");
    match advertised.refs.get(&refname) {
        Some(existing) if *existing == commit_id => {
            ctx.info(format!(
                "{refname} is already at {commit_id}: an earlier run of this step pushed it"
            ));
            return Ok(commit_id);
        }
        Some(existing) => {
            return Err(ActionError::failed(format!(
                "the repository already has {refname} (at {existing}); publishing makes a repository's \
                 first commit and never overwrites history: use an empty repository or another defaultBranch"
            )));
        }
        None => {}
    }
    ctx.info(format!(
        "Pushing {file_count} files as {commit_id} to {refname} ({} objects)",
        objects.len()
    ));
    remote.push(branch, ObjectId::ZERO, commit_id, &pack::encode(&objects))?;
    Ok(commit_id)
}

/// The input when given and not blank, else the operator's configuration value.
fn setting(ctx: &Context, input: Option<&str>, key: &str) -> Option<String> {
    input
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| ctx.config(key))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Checks a branch name the way `git check-ref-format --branch` would for the common
/// mistakes; `Err` says what is wrong.
pub fn check_branch(branch: &str) -> Result<()> {
    let bad = branch.is_empty()
        || branch.starts_with(['-', '/', '.'])
        || branch.ends_with(['/', '.'])
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("@{")
        || branch.chars().any(|c| {
            c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        });
    if bad {
        return Err(ActionError::invalid_input(format!(
            "'{branch}' is not a valid git branch name"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_are_checked() {
        for good in ["main", "release/1.0", "feature-x"] {
            assert!(check_branch(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a:b", "refs/", "a~1"] {
            assert!(check_branch(bad).is_err(), "{bad}");
        }
    }
}
