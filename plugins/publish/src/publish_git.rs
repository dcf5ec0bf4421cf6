//! `publish:git`: pushes the workspace as the first commit of an existing, empty
//! repository on any smart-HTTP git server (GitHub, GitLab, Gitea, Forgejo, Bitbucket,
//! `git http-backend`).

use scaffolder_plugin_sdk::integrations;
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, json};
use serde::Deserialize;

use crate::catalog_url::{self, Patterns};
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
    repo_contents_url: Option<String>,
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
                },
                "repoContentsUrl": {
                    "title": "Repository Contents URL",
                    "description": "The pattern of the output repoContentsUrl, under which the catalog reads the pushed files (catalogInfoUrl: <repoContentsUrl>/catalog-info.yaml), with the placeholders {repository} (the clone URL without credentials and .git), {origin}, {host}, {path} and {branch}. Without it, the layout of the host's kind, from its integrations entry or its name: GitHub {repository}/blob/{branch}, GitLab {repository}/-/blob/{branch}, Gitea and Forgejo {repository}/src/branch/{branch}, Bitbucket Cloud {repository}/src/{branch}, Bitbucket Server <base>/projects/<KEY>/repos/<slug>/browse, Azure {repository}; any other host, the plugin's repoContentsUrl configuration, else {repository}/raw/branch/{branch} (Gitea's raw files, read with a plain GET).",
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
        let integrations = integrations::integrations(ctx)?;
        let repo_contents_url = catalog_url::repo_contents_url(
            &remote_url,
            &input.default_branch,
            &integrations,
            Patterns {
                step: input.repo_contents_url.as_deref(),
                operator: ctx.config(catalog_url::CONFIG_KEY).as_deref(),
            },
        )?;
        let token = input
            .token
            .filter(|t| !t.is_empty())
            .or_else(|| ctx.secret(TOKEN_SECRET));
        let remote = Remote::new(&remote_url, token.as_deref());
        let commit = initial_commit::publish(ctx, &remote, &input.default_branch, &input.commit)?;
        Ok(PublishOutput {
            repo_contents_url,
            remote_url,
            commit_hash: commit.to_hex(),
        })
    }
}
