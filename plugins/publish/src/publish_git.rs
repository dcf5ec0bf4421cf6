//! `publish:git`: pushes the workspace as the first commit of an existing, empty
//! repository on any smart-HTTP git server (GitHub, GitLab, Gitea, Forgejo, Bitbucket,
//! `git http-backend`).

use scaffolder_plugin_sdk::integrations::{self, Integration};
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, json};
use serde::Deserialize;

use crate::initial_commit::{self, CommitInputs, PublishOutput, with_commit_properties};
use crate::smart_http::Remote;

/// The secret holding the operator's token for git servers, read when the step has no
/// `token` input.
pub const TOKEN_SECRET: &str = "GIT_TOKEN";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    remote_url: String,
    #[serde(default = "default_branch")]
    default_branch: String,
    token: Option<String>,
    #[serde(flatten)]
    commit: CommitInputs,
}

fn default_branch() -> String {
    "main".to_owned()
}

/// Pushes the workspace to a git repository as its initial commit.
pub struct PublishGit;

impl Action for PublishGit {
    const ID: &'static str = "publish:git";
    type Input = Input;
    type Output = PublishOutput;

    fn info() -> ActionInfo {
        ActionInfo::new(
            "Initializes a git repository of the content in the workspace, and publishes it to an existing, empty repository on any git server that speaks smart HTTP.",
        )
        .input_schema(json!({
            "type": "object",
            "required": ["remoteUrl"],
            "properties": with_commit_properties(json!({
                "remoteUrl": {
                    "title": "Remote URL",
                    "description": "The repository's HTTP(S) clone URL, e.g. https://git.example.com/team/service.git. The repository must exist and be empty.",
                    "type": "string"
                },
                "defaultBranch": {
                    "title": "Default Branch",
                    "description": "Sets the default branch on the repository. The default value is 'main'",
                    "type": "string"
                },
                "token": {
                    "title": "Authentication Token",
                    "description": "The token to push with. Without it, the operator's GIT_TOKEN secret is used when granted.",
                    "type": "string"
                }
            })),
            "additionalProperties": false
        }))
        .output_schema(PublishOutput::schema())
        .requests_http("https://*:*")
        .requests_http("http://*:*")
        .requests_secret(TOKEN_SECRET)
        .idempotent(true)
        .destructive(false)
        .example(
            "Publish the workspace to a Gitea repository",
            "steps:\n  - id: publish\n    action: publish:git\n    name: Publish\n    input:\n      remoteUrl: https://gitea.example.com/team/my-service.git\n      gitCommitMessage: Initial commit\n",
        )
    }

    fn run(ctx: &Context, input: Input) -> Result<PublishOutput> {
        let remote_url = input.remote_url.trim().trim_end_matches('/').to_owned();
        if !(remote_url.starts_with("https://") || remote_url.starts_with("http://")) {
            return Err(ActionError::invalid_input(format!(
                "remoteUrl '{remote_url}' is not an http(s) URL: publish:git pushes over smart HTTP, give the repository's HTTP clone URL"
            )));
        }
        initial_commit::check_branch(&input.default_branch)?;
        let token = input
            .token
            .filter(|t| !t.is_empty())
            .or_else(|| ctx.secret(TOKEN_SECRET));
        let remote = Remote::new(&remote_url, token.as_deref());
        let commit = initial_commit::publish(ctx, &remote, &input.default_branch, &input.commit)?;
        let integrations = integrations::integrations(ctx)?;
        Ok(PublishOutput {
            repo_contents_url: contents_url(&integrations, &remote_url, &input.default_branch),
            remote_url,
            commit_hash: commit.to_hex(),
        })
    }
}

/// Where the branch's files can be browsed: the layout of the host's integration kind
/// (what Backstage's publishers output and its URL readers understand), or, for a host
/// without one, `<repository>/raw/branch/<branch>`, under which a plain HTTP `GET` of
/// `/<path>` returns a file on Gitea and Forgejo.
fn contents_url(integrations: &[Integration], remote_url: &str, branch: &str) -> String {
    let repository = remote_url.strip_suffix(".git").unwrap_or(remote_url);
    let host = repository
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .map(|authority| authority.rsplit_once('@').map_or(authority, |(_, h)| h))
        .unwrap_or("");
    match integrations::find(integrations, host).map(|i| i.kind.as_str()) {
        Some("github") => format!("{repository}/blob/{branch}"),
        Some("gitlab") => format!("{repository}/-/blob/{branch}"),
        Some("gitea") => format!("{repository}/src/branch/{branch}"),
        Some("bitbucketCloud") => format!("{repository}/src/{branch}"),
        _ => format!("{repository}/raw/branch/{branch}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_urls_follow_the_hosts_layout() {
        let integrations = vec![
            Integration::new("github", "github.com"),
            Integration::new("gitlab", "gitlab.example.com"),
            Integration::new("gitea", "gitea.example.com:3000"),
        ];
        let cases = [
            (
                "https://github.com/o/r.git",
                "https://github.com/o/r/blob/main",
            ),
            (
                "https://gitlab.example.com/g/s/r.git",
                "https://gitlab.example.com/g/s/r/-/blob/main",
            ),
            (
                "http://gitea.example.com:3000/o/r.git",
                "http://gitea.example.com:3000/o/r/src/branch/main",
            ),
            (
                "http://127.0.0.1:8080/o/r.git",
                "http://127.0.0.1:8080/o/r/raw/branch/main",
            ),
        ];
        for (remote, expected) in cases {
            assert_eq!(contents_url(&integrations, remote, "main"), expected);
        }
    }
}
