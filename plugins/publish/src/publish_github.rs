//! `publish:github`: creates a repository through GitHub's REST API (github.com or GitHub
//! Enterprise via `integrations.github[].apiBaseUrl`), configures it as Backstage's
//! `publish:github` of `@backstage/plugin-scaffolder-backend-module-github` 0.10.0 does
//! for the inputs below, and pushes the workspace to it over git.

use std::collections::BTreeMap;

use scaffolder_plugin_sdk::integrations::{self, Integration};
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, Value, json};
use serde::Deserialize;

use crate::github_api::GithubApi;
use crate::initial_commit::{self, CommitInputs, PublishOutput, with_commit_properties};
use crate::smart_http::Remote;

/// The operator's GitHub token, read when the step has no `token` input.
pub const TOKEN_SECRET: &str = "GITHUB_TOKEN";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    repo_url: String,
    description: Option<String>,
    homepage: Option<String>,
    #[serde(default = "private")]
    repo_visibility: String,
    #[serde(default = "main")]
    default_branch: String,
    #[serde(default = "yes")]
    protect_default_branch: bool,
    #[serde(default = "yes")]
    protect_enforce_admins: bool,
    #[serde(default = "one")]
    required_approving_review_count: u32,
    #[serde(default)]
    require_code_owner_reviews: bool,
    #[serde(default)]
    dismiss_stale_reviews: bool,
    #[serde(default)]
    required_status_check_contexts: Vec<String>,
    #[serde(default = "yes")]
    require_branches_to_be_up_to_date: bool,
    #[serde(default)]
    required_conversation_resolution: bool,
    #[serde(default)]
    required_linear_history: bool,
    #[serde(default)]
    delete_branch_on_merge: bool,
    #[serde(default = "yes")]
    allow_merge_commit: bool,
    #[serde(default = "yes")]
    allow_squash_merge: bool,
    #[serde(default = "yes")]
    allow_rebase_merge: bool,
    #[serde(default)]
    allow_auto_merge: bool,
    has_projects: Option<bool>,
    has_wiki: Option<bool>,
    has_issues: Option<bool>,
    token: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    repo_variables: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(flatten)]
    commit: CommitInputs,
}

fn private() -> String {
    "private".to_owned()
}
fn main() -> String {
    "main".to_owned()
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}

/// The repository a `repoUrl` names.
#[derive(Debug, PartialEq, Eq)]
struct RepoUrl {
    host: String,
    owner: String,
    repo: String,
}

/// Initializes a git repository of the workspace and publishes it to GitHub.
pub struct PublishGithub;

impl Action for PublishGithub {
    const ID: &'static str = "publish:github";
    type Input = Input;
    type Output = PublishOutput;

    fn info() -> ActionInfo {
        let string = |title: &str, description: &str| json!({ "title": title, "description": description, "type": "string" });
        let boolean = |title: &str, description: &str| json!({ "title": title, "description": description, "type": "boolean" });
        ActionInfo::new(
            "Initializes a git repository of contents in workspace and publishes it to GitHub.",
        )
        .input_schema(json!({
            "type": "object",
            "required": ["repoUrl"],
            "properties": with_commit_properties(json!({
                "repoUrl": string("Repository Location", "Accepts the format 'github.com?repo=reponame&owner=owner' where 'reponame' is the new repository name and 'owner' is an organization or username"),
                "description": string("Repository Description", ""),
                "homepage": string("Repository Homepage", ""),
                "repoVisibility": {
                    "title": "Repository Visibility",
                    "description": "Sets the visibility of the repository. The default value is 'private'.",
                    "type": "string",
                    "enum": ["private", "public", "internal"]
                },
                "defaultBranch": string("Default Branch", "Sets the default branch on the repository. The default value is 'main'"),
                "protectDefaultBranch": boolean("Protect Default Branch", "Protect the default branch after creating the repository. The default value is 'true'"),
                "protectEnforceAdmins": boolean("Enforce Admins On Protected Branches", "Enforce admins to adhere to default branch protection. The default value is 'true'"),
                "requiredApprovingReviewCount": {
                    "title": "Required approving review count",
                    "description": "Specify the number of reviewers required to approve pull requests. Can be between 0 and 6. The default value is 1",
                    "type": "number", "minimum": 0, "maximum": 6
                },
                "requireCodeOwnerReviews": boolean("Require CODEOWNER Reviews?", "Require an approved review in PR including files with a designated Code Owner"),
                "dismissStaleReviews": boolean("Dismiss Stale Reviews", "New reviewable commits pushed to a matching branch will dismiss pull request review approvals."),
                "requiredStatusCheckContexts": {
                    "title": "Required Status Check Contexts",
                    "description": "The list of status checks to require in order to merge into this branch",
                    "type": "array", "items": { "type": "string" }
                },
                "requireBranchesToBeUpToDate": boolean("Require Branches To Be Up To Date?", "Require branches to be up to date before merging. The default value is 'true'"),
                "requiredConversationResolution": boolean("Required Conversation Resolution", "Requires all conversations on code to be resolved before a pull request can be merged into this branch"),
                "requiredLinearHistory": boolean("Require Linear History", "Prevent merge commits from being pushed to matching branches"),
                "deleteBranchOnMerge": boolean("Delete Branch On Merge", "Delete the branch after merging the PR. The default value is 'false'"),
                "allowMergeCommit": boolean("Allow Merge Commits", "Allow merge commits. The default value is 'true'"),
                "allowSquashMerge": boolean("Allow Squash Merges", "Allow squash merges. The default value is 'true'"),
                "allowRebaseMerge": boolean("Allow Rebase Merges", "Allow rebase merges. The default value is 'true'"),
                "allowAutoMerge": boolean("Allow Auto Merges", "Allow individual PRs to merge automatically when all merge requirements are met. The default value is 'false'"),
                "hasProjects": boolean("Enable projects", "Enable projects for the repository. The default value is 'true' unless the organization has disabled repository projects"),
                "hasWiki": boolean("Enable the wiki", "Enable the wiki for the repository. The default value is 'true'"),
                "hasIssues": boolean("Enable issues", "Enable issues for the repository. The default value is 'true'"),
                "token": string("Authentication Token", "The token to use for authorization to GitHub"),
                "topics": {
                    "title": "Topics",
                    "description": "Adds topics to the repository",
                    "type": "array", "items": { "type": "string" }
                },
                "repoVariables": {
                    "title": "Repository Variables",
                    "description": "Variables attached to the repository",
                    "type": "object", "additionalProperties": { "type": "string" }
                },
                "secrets": {
                    "title": "Repository Secrets",
                    "description": "Secrets attached to the repository",
                    "type": "object", "additionalProperties": { "type": "string" }
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
            "Initializes a GitHub repository with a description and topics.",
            "steps:\n  - id: publish\n    action: publish:github\n    name: Publish to GitHub\n    input:\n      repoUrl: github.com?repo=repo&owner=owner\n      description: Initialize a git repository\n      topics:\n        - rust\n        - backstage\n",
        )
    }

    fn run(ctx: &Context, input: Input) -> Result<PublishOutput> {
        let integrations = integrations::integrations(ctx)?;
        let repo_url = parse_repo_url(&input.repo_url, &integrations)?;
        let integration = integrations::find(&integrations, &repo_url.host)
            .expect("parse_repo_url checked the host");
        initial_commit::check_branch(&input.default_branch)?;
        let token = input
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| ctx.secret(TOKEN_SECRET))
            .ok_or_else(|| {
                ActionError::invalid_input(format!(
                    "No token available for host: {}: give the step a `token` input, or grant this plugin the {TOKEN_SECRET} secret",
                    repo_url.host
                ))
            })?;
        let api = GithubApi::new(&api_base_url(integration), &token);
        let (owner, repo) = (repo_url.owner.as_str(), repo_url.repo.as_str());

        let created: Value = ctx
            .checkpoint(&format!("create.github.repo.{owner}.{repo}"), || {
                create_repository(ctx, &api, owner, repo, &input)
            })?;
        let clone_url = text(&created, "clone_url")?;
        let html_url = text(&created, "html_url")?;

        ctx.checkpoint(&format!("configure.github.repo.{owner}.{repo}"), || {
            configure_repository(&api, owner, repo, &input)
        })?;

        let remote = Remote::new(&clone_url, Some(&token));
        let commit = initial_commit::publish(ctx, &remote, &input.default_branch, &input.commit)?;

        if input.protect_default_branch {
            protect_branch(&api, owner, repo, &input)?;
        }
        Ok(PublishOutput {
            repo_contents_url: format!("{html_url}/blob/{}", input.default_branch),
            remote_url: clone_url,
            commit_hash: commit.to_hex(),
        })
    }
}

/// Creates the repository for an organization or for the user the token belongs to, as
/// `GET /users/{owner}` says the owner is.
fn create_repository(
    ctx: &Context,
    api: &GithubApi,
    owner: &str,
    repo: &str,
    input: &Input,
) -> Result<Value> {
    let account = api.call("GET", &format!("/users/{owner}"), None)?;
    let mut body = json!({
        "name": repo,
        "private": input.repo_visibility == "private",
        "visibility": input.repo_visibility,
        "description": input.description,
        "homepage": input.homepage,
        "delete_branch_on_merge": input.delete_branch_on_merge,
        "allow_merge_commit": input.allow_merge_commit,
        "allow_squash_merge": input.allow_squash_merge,
        "allow_rebase_merge": input.allow_rebase_merge,
        "allow_auto_merge": input.allow_auto_merge,
    });
    for (key, value) in [
        ("has_projects", input.has_projects),
        ("has_wiki", input.has_wiki),
        ("has_issues", input.has_issues),
    ] {
        if let Some(value) = value {
            body[key] = json!(value);
        }
    }
    let path = if account["type"] == "Organization" {
        format!("/orgs/{owner}/repos")
    } else {
        let me = api.call("GET", "/user", None)?;
        if me["login"]
            .as_str()
            .is_some_and(|login| !login.eq_ignore_ascii_case(owner))
        {
            return Err(ActionError::failed(format!(
                "{owner} is a user account, and the token belongs to {}: a token can only create repositories for its own user or for organizations",
                me["login"].as_str().unwrap_or("someone else")
            )));
        }
        "/user/repos".to_owned()
    };
    let created = api.call("POST", &path, Some(&body))?;
    ctx.info(format!("Created repository {owner}/{repo}"));
    Ok(created)
}

/// Topics, Actions variables and Actions secrets (sealed with the repository's key).
fn configure_repository(api: &GithubApi, owner: &str, repo: &str, input: &Input) -> Result<()> {
    if !input.topics.is_empty() {
        let names: Vec<String> = input.topics.iter().map(|t| t.to_lowercase()).collect();
        api.call(
            "PUT",
            &format!("/repos/{owner}/{repo}/topics"),
            Some(&json!({ "names": names })),
        )?;
    }
    for (name, value) in &input.repo_variables {
        api.call(
            "POST",
            &format!("/repos/{owner}/{repo}/actions/variables"),
            Some(&json!({ "name": name, "value": value })),
        )?;
    }
    if !input.secrets.is_empty() {
        let key = api.call(
            "GET",
            &format!("/repos/{owner}/{repo}/actions/secrets/public-key"),
            None,
        )?;
        let key_id = text(&key, "key_id")?;
        let public_key = text(&key, "key")?;
        for (name, value) in &input.secrets {
            let encrypted = crate::sealed_box::seal_base64(&public_key, value.as_bytes())?;
            api.call(
                "PUT",
                &format!("/repos/{owner}/{repo}/actions/secrets/{name}"),
                Some(&json!({ "encrypted_value": encrypted, "key_id": key_id })),
            )?;
        }
    }
    Ok(())
}

/// `PUT /repos/{owner}/{repo}/branches/{branch}/protection` with Backstage's defaults.
fn protect_branch(api: &GithubApi, owner: &str, repo: &str, input: &Input) -> Result<()> {
    let status_checks = if input.required_status_check_contexts.is_empty()
        && !input.require_branches_to_be_up_to_date
    {
        Value::Null
    } else {
        json!({ "strict": input.require_branches_to_be_up_to_date, "contexts": input.required_status_check_contexts })
    };
    let body = json!({
        "required_status_checks": status_checks,
        "enforce_admins": input.protect_enforce_admins,
        "required_pull_request_reviews": {
            "required_approving_review_count": input.required_approving_review_count,
            "require_code_owner_reviews": input.require_code_owner_reviews,
            "dismiss_stale_reviews": input.dismiss_stale_reviews,
        },
        "restrictions": null,
        "required_linear_history": input.required_linear_history,
        "required_conversation_resolution": input.required_conversation_resolution,
    });
    api.call(
        "PUT",
        &format!(
            "/repos/{owner}/{repo}/branches/{}/protection",
            input.default_branch
        ),
        Some(&body),
    )?;
    Ok(())
}

fn text(value: &Value, key: &str) -> Result<String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ActionError::failed(format!("GitHub's answer lacks `{key}`: {value}")))
}

/// Backstage's `parseRepoUrl` for GitHub: `host?owner=o&repo=r`, the host a configured
/// integration.
fn parse_repo_url(repo_url: &str, integrations: &[Integration]) -> Result<RepoUrl> {
    let (host, query) = repo_url.split_once('?').unwrap_or((repo_url, ""));
    let host = host.trim_end_matches('/');
    let Some(integration) = integrations::find(integrations, host) else {
        return Err(ActionError::invalid_input(format!(
            "No matching integration configuration for host {host}, please check your integrations config"
        )));
    };
    if integration.kind != "github" {
        return Err(ActionError::invalid_input(format!(
            "{host} is a {} integration, not GitHub: use the publish action for {}",
            integration.kind, integration.kind
        )));
    }
    let parameter = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim_matches('/').to_owned())
            .filter(|value| !value.is_empty())
    };
    let missing = |what: &str| {
        ActionError::invalid_input(format!(
            "Invalid repo URL passed to publisher: https://{repo_url}, missing {what}"
        ))
    };
    let repo = parameter("repo").ok_or_else(|| missing("repo"))?;
    let owner = parameter("owner").ok_or_else(|| missing("owner"))?;
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !plain(&owner) {
        return Err(ActionError::invalid_input(
            "Invalid repository owner provided in repoUrl",
        ));
    }
    if !plain(&repo) {
        return Err(ActionError::invalid_input(format!(
            "'{repo}' is not a valid GitHub repository name"
        )));
    }
    Ok(RepoUrl {
        host: host.to_owned(),
        owner,
        repo,
    })
}

/// The configured `apiBaseUrl`, else GitHub's own for github.com and GitHub Enterprise's
/// `https://<host>/api/v3` for other hosts.
fn api_base_url(integration: &Integration) -> String {
    match &integration.api_base_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if integration.host.eq_ignore_ascii_case("github.com") => {
            "https://api.github.com".to_owned()
        }
        None => format!("https://{}/api/v3", integration.host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github(host: &str, api: Option<&str>) -> Integration {
        Integration {
            api_base_url: api.map(str::to_owned),
            ..Integration::new("github", host)
        }
    }

    #[test]
    fn repo_urls_name_a_configured_github_host() {
        let integrations = [
            github("github.com", None),
            Integration::new("gitlab", "gitlab.com"),
        ];
        assert_eq!(
            parse_repo_url("github.com?owner=acme&repo=orders", &integrations).unwrap(),
            RepoUrl {
                host: "github.com".into(),
                owner: "acme".into(),
                repo: "orders".into()
            }
        );
        let error = |url: &str| parse_repo_url(url, &integrations).unwrap_err().to_string();
        assert!(
            error("ghe.example.com?owner=a&repo=b")
                .contains("No matching integration configuration for host ghe.example.com")
        );
        assert!(error("github.com?owner=acme").contains("missing repo"));
        assert!(error("github.com?repo=x").contains("missing owner"));
        assert!(error("gitlab.com?owner=a&repo=b").contains("not GitHub"));
        assert!(error("github.com?owner=a/../b&repo=c").contains("Invalid repository owner"));
    }

    #[test]
    fn api_base_urls_default_per_host() {
        assert_eq!(
            api_base_url(&github("github.com", None)),
            "https://api.github.com"
        );
        assert_eq!(
            api_base_url(&github("ghe.example.com", None)),
            "https://ghe.example.com/api/v3"
        );
        assert_eq!(
            api_base_url(&github("ghe.example.com", Some("http://127.0.0.1:9/api/"))),
            "http://127.0.0.1:9/api"
        );
    }
}
