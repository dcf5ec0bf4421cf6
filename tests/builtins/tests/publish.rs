//! `publish:git` and `publish:github` through the engine and the sandbox, pushing to a
//! real `git http-backend` on loopback; every push is checked with the real git client
//! (`git clone`), every GitHub API effect on the GitHub-shaped fake.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use scaffolder_builtins_tests::{Harness, TaskRun, denials};
use scaffolder_engine::Environment;
use scaffolder_runtime::Grants;
use scaffolder_test_artifacts::git_server::{GitServer, git};
use scaffolder_test_artifacts::github_fake::GithubFake;
use serde_json::{Value as Json, json};

const TOKEN: &str = "git-token-0123456789";

fn grants(server: &GitServer) -> Grants {
    Grants {
        outbound_http: vec![server.base.clone()],
        ..Grants::default()
    }
}

/// A template directory with a skeleton: a README, an executable script, a symlink, a
/// `.gitignore` and a file it ignores.
fn skeleton() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let skeleton = dir.path().join("skeleton");
    std::fs::create_dir_all(skeleton.join("bin")).unwrap();
    std::fs::write(skeleton.join("README.md"), "# ${{ values.name }}\n").unwrap();
    let script = skeleton.join("bin/run.sh");
    std::fs::write(&script, "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("bin/run.sh", skeleton.join("run")).unwrap();
    std::fs::write(skeleton.join(".gitignore"), "*.log\n").unwrap();
    std::fs::write(skeleton.join("build.log"), "noise\n").unwrap();
    dir
}

/// Fetches the skeleton, then runs the publish `action` with `input`, as a task with
/// `secrets`.
async fn run_publish(harness: &Harness, action: &str, input: Json, secrets: Json) -> TaskRun {
    let template = skeleton();
    let steps = json!([
        {
            "id": "fetch", "name": "Fetch skeleton", "action": "fetch:template",
            "input": { "url": "./skeleton", "values": { "name": "${{ parameters.name }}" } }
        },
        { "id": "publish", "name": "Publish", "action": action, "input": input }
    ]);
    harness
        .run_in(steps, json!({ "name": "orders" }), template.path(), secrets)
        .await
}

async fn publish(harness: &Harness, input: Json, secrets: Json) -> TaskRun {
    run_publish(harness, "publish:git", input, secrets).await
}

fn clone(server: &GitServer, repo: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    server.clone_into(repo, Some(TOKEN), &dir.path().join("clone"));
    dir
}

fn in_clone(dir: &tempfile::TempDir, args: &[&str]) -> String {
    git(&dir.path().join("clone"), args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_git_pushes_the_workspace_as_one_commit_with_modes_author_and_message() {
    let server = GitServer::start(Some(TOKEN));
    let remote = server.create_repo("team/orders");
    let harness = Harness::with_grants(&grants(&server)).await;
    let run = publish(
        &harness,
        json!({
            "remoteUrl": remote,
            "token": "${{ secrets.gitToken }}",
            "gitCommitMessage": "Create ${{ parameters.name }}",
            "gitAuthorName": "Ada Lovelace",
            "gitAuthorEmail": "ada@example.com"
        }),
        json!({ "gitToken": TOKEN }),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);

    let clone = clone(&server, "team/orders");
    let files = in_clone(
        &clone,
        &["ls-tree", "-r", "--format=%(objectmode) %(path)", "HEAD"],
    );
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        [
            "100644 .gitignore",
            "100644 README.md",
            "100755 bin/run.sh",
            "120000 run",
        ],
        "build.log is ignored by .gitignore; the script keeps its execute bit; the link stays a link"
    );
    assert_eq!(in_clone(&clone, &["show", "HEAD:README.md"]), "# orders\n");
    assert_eq!(in_clone(&clone, &["show", "HEAD:run"]), "bin/run.sh");
    assert_eq!(
        in_clone(&clone, &["log", "--format=%an <%ae>|%cn <%ce>|%B"]).trim_end(),
        "Ada Lovelace <ada@example.com>|Ada Lovelace <ada@example.com>|Create orders"
    );
    assert_eq!(
        in_clone(&clone, &["rev-list", "--count", "HEAD"]).trim(),
        "1"
    );
    assert_eq!(
        in_clone(&clone, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    // git itself finds nothing wrong with what the plugin built.
    in_clone(&clone, &["fsck", "--strict"]);

    let output = run.step_output("publish");
    assert_eq!(output["remoteUrl"], json!(remote));
    assert_eq!(
        output["commitHash"],
        json!(in_clone(&clone, &["rev-parse", "HEAD"]).trim())
    );
    assert_eq!(
        output["repoContentsUrl"],
        json!(format!("{}/team/orders/raw/branch/main", server.base))
    );
    assert_eq!(server.pushes("team/orders"), 1);
    let messages = run.messages().join("\n");
    assert!(!messages.contains(TOKEN), "the token leaked: {messages}");
    // Issue 20, item 1: staging the workspace read `/.gitignore`, outside it.
    assert_eq!(
        denials::of_task(&run.task_id),
        Vec::<String>::new(),
        "a successful publish touches nothing the sandbox refuses"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_git_takes_the_operators_defaults_token_and_branch() {
    let server = GitServer::start(Some(TOKEN));
    let remote = server.create_repo("team/defaults");
    let settings = BTreeMap::from([
        (
            "scaffolder.defaultAuthor.name".to_owned(),
            "Platform Bot".to_owned(),
        ),
        (
            "scaffolder.defaultAuthor.email".to_owned(),
            "bot@example.com".to_owned(),
        ),
        (
            "scaffolder.defaultCommitMessage".to_owned(),
            "Scaffolded".to_owned(),
        ),
    ]);
    let environment = Environment {
        secrets: json!({ "GIT_TOKEN": TOKEN }).as_object().unwrap().clone(),
        ..Environment::default()
    };
    let extra = Grants {
        secrets: vec!["GIT_TOKEN".to_owned()],
        ..grants(&server)
    };
    let harness = Harness::configured(&extra, &settings, environment).await;
    let run = publish(
        &harness,
        json!({ "remoteUrl": remote, "defaultBranch": "trunk", "sourcePath": "bin" }),
        json!({}),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);

    // The repository's HEAD is the git host's setting (main here); the push made trunk.
    let clone = clone(&server, "team/defaults");
    let heads = in_clone(&clone, &["ls-remote", "--heads", "origin"]);
    assert!(
        heads.trim().ends_with("refs/heads/trunk") && heads.lines().count() == 1,
        "{heads}"
    );
    assert_eq!(
        in_clone(&clone, &["log", "--format=%an <%ae>|%B", "origin/trunk"]).trim_end(),
        "Platform Bot <bot@example.com>|Scaffolded"
    );
    assert_eq!(
        in_clone(&clone, &["ls-tree", "-r", "--name-only", "origin/trunk"]).trim(),
        "run.sh",
        "sourcePath is the repository's root"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_git_never_overwrites_a_branch_that_exists() {
    let server = GitServer::start(Some(TOKEN));
    let remote = server.create_repo("team/taken");
    let harness = Harness::with_grants(&grants(&server)).await;
    let input = |message: &str| json!({ "remoteUrl": remote, "token": "${{ secrets.gitToken }}", "gitCommitMessage": message });
    let first = publish(&harness, input("First"), json!({ "gitToken": TOKEN })).await;
    assert!(first.succeeded(), "{:#?}", first.events);
    let second = publish(&harness, input("Second"), json!({ "gitToken": TOKEN })).await;

    let error = second.error().unwrap();
    assert!(
        error.contains("already has refs/heads/main") && error.contains("never overwrites"),
        "{error}"
    );
    let clone = clone(&server, "team/taken");
    assert_eq!(
        in_clone(&clone, &["rev-parse", "HEAD"]).trim(),
        first.step_output("publish")["commitHash"].as_str().unwrap()
    );
    assert_eq!(server.pushes("team/taken"), 1);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_git_explains_credential_and_repository_errors() {
    let server = GitServer::start(Some(TOKEN));
    let remote = server.create_repo("team/locked");
    let harness = Harness::with_grants(&grants(&server)).await;

    let cases = [
        (
            json!({ "remoteUrl": remote }),
            json!({}),
            "wants credentials",
        ),
        (
            json!({ "remoteUrl": remote, "token": "${{ secrets.gitToken }}" }),
            json!({ "gitToken": "wrong-token" }),
            "refused the token",
        ),
        (
            json!({ "remoteUrl": server.url("team/missing"), "token": "${{ secrets.gitToken }}" }),
            json!({ "gitToken": TOKEN }),
            "there is no repository at this URL",
        ),
        (
            json!({ "remoteUrl": "git@example.com:team/x.git" }),
            json!({}),
            "is not an http(s) URL",
        ),
        (
            json!({ "remoteUrl": remote, "defaultBranch": "bad branch" }),
            json!({}),
            "not a valid git branch name",
        ),
    ];
    for (input, secrets, expected) in cases {
        let run = publish(&harness, input.clone(), secrets).await;
        let error = run.error().unwrap_or_else(|| panic!("{input} succeeded"));
        assert!(error.contains(expected), "{input}: {error}");
        assert!(!error.contains(TOKEN), "{error}");
    }
    assert_eq!(server.pushes("team/locked"), 0);
    harness.finish().await;
}

/// Issue 20, item 1: a missing repository is the failure's message, not a sandbox
/// denial the plugin did not act on; item 9: no empty `()` after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_git_names_a_missing_repository_as_the_cause() {
    let server = GitServer::start(Some(TOKEN));
    let missing = server.url("team/missing");
    let harness = Harness::with_grants(&grants(&server)).await;
    let run = publish(
        &harness,
        json!({ "remoteUrl": missing, "token": "${{ secrets.gitToken }}" }),
        json!({ "gitToken": TOKEN }),
    )
    .await;
    assert_eq!(
        run.error(),
        Some(
            format!(
                "{missing} answered HTTP 404: there is no repository at this URL: create it on the git host first, or check the URL"
            )
            .as_str()
        )
    );
    assert_eq!(
        run.completion["error"]["name"], "Error",
        "not a NotAllowedError"
    );
    harness.finish().await;
}

/// Issue 20, item 1: an origin the operator did not grant is named as what was denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_git_reaches_only_granted_hosts() {
    let server = GitServer::start(None);
    let remote = server.create_repo("team/open");
    let harness = Harness::new().await;
    let run = publish(&harness, json!({ "remoteUrl": remote }), json!({})).await;
    let error = run.error().unwrap();
    assert!(
        error.starts_with(&format!(
            "outbound HTTP to {} denied: it is not granted to this plugin",
            server.base
        )),
        "{error}"
    );
    assert!(!error.contains(".gitignore"), "{error}");
    assert!(server.requests().is_empty());
    harness.finish().await;
}

// ---------------------------------------------------------------------------
// publish:github, against the GitHub-shaped fake (git pushes go to a real git server)

const GITHUB_TOKEN: &str = "ghp_fake0123456789";

/// Built-ins that know the fake as the GitHub Enterprise host `ghe.example.com` (its
/// `apiBaseUrl`), may reach it and its git server, and get `environment` secrets.
async fn github_harness(github: &GithubFake, environment: Environment) -> Harness {
    let integrations = json!([
        { "kind": "github", "host": "ghe.example.com", "apiBaseUrl": github.api_base }
    ]);
    let settings = BTreeMap::from([("integrations".to_owned(), integrations.to_string())]);
    let grants = Grants {
        outbound_http: vec![github.origin.clone(), github.git.base.clone()],
        secrets: vec!["GITHUB_TOKEN".to_owned()],
        ..Grants::default()
    };
    Harness::configured(&grants, &settings, environment).await
}

async fn publish_github(harness: &Harness, input: Json, secrets: Json) -> TaskRun {
    run_publish(harness, "publish:github", input, secrets).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_github_creates_configures_and_pushes_an_organization_repository() {
    let github = GithubFake::start(GITHUB_TOKEN, "octocat", &["acme"]);
    let harness = github_harness(&github, Environment::default()).await;
    let run = publish_github(
        &harness,
        json!({
            "repoUrl": "ghe.example.com?owner=acme&repo=orders",
            "description": "Orders service",
            "repoVisibility": "internal",
            "topics": ["Rust", "backstage"],
            "repoVariables": { "REGION": "eu-west-1" },
            "secrets": { "DEPLOY_KEY": "${{ secrets.deployKey }}" },
            "token": "${{ secrets.githubToken }}",
            "gitAuthorName": "Ada Lovelace",
            "gitAuthorEmail": "ada@example.com"
        }),
        json!({ "githubToken": GITHUB_TOKEN, "deployKey": "s3cret-deploy-key" }),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);

    // What GitHub was asked, as GitHub keeps it.
    let repo = github
        .repo("acme/orders")
        .expect("the repository was created");
    assert_eq!(repo["visibility"], "internal");
    assert_eq!(repo["private"], false);
    assert_eq!(repo["description"], "Orders service");
    assert_eq!(github.topics("acme/orders"), ["rust", "backstage"]);
    assert_eq!(github.variables("acme/orders")["REGION"], "eu-west-1");
    assert_eq!(
        github.secret("acme/orders", "DEPLOY_KEY").as_deref(),
        Some("s3cret-deploy-key"),
        "the secret decrypts with the repository's private key"
    );
    let protection = github
        .protection("acme/orders", "main")
        .expect("main is protected");
    assert_eq!(protection["enforce_admins"], true);
    assert_eq!(
        protection["required_pull_request_reviews"]["required_approving_review_count"],
        1
    );

    // What was pushed, as git sees it.
    let clone_dir = tempfile::tempdir().unwrap();
    github.git.clone_into(
        "acme/orders",
        Some(GITHUB_TOKEN),
        &clone_dir.path().join("clone"),
    );
    let in_repo = |args: &[&str]| git(&clone_dir.path().join("clone"), args);
    assert_eq!(in_repo(&["show", "HEAD:README.md"]), "# orders\n");
    assert_eq!(
        in_repo(&["log", "--format=%an <%ae>|%s"]).trim(),
        "Ada Lovelace <ada@example.com>|initial commit"
    );

    let output = run.step_output("publish");
    assert_eq!(output["remoteUrl"], repo["clone_url"]);
    assert_eq!(
        output["repoContentsUrl"],
        json!(format!("{}/blob/main", repo["html_url"].as_str().unwrap()))
    );
    assert_eq!(
        output["commitHash"],
        json!(in_repo(&["rev-parse", "HEAD"]).trim())
    );
    let events = serde_json::to_string(&run.events).unwrap();
    assert!(!events.contains("s3cret-deploy-key") && !events.contains(GITHUB_TOKEN));
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_github_creates_user_repositories_with_the_operators_token() {
    let github = GithubFake::start(GITHUB_TOKEN, "octocat", &[]);
    let environment = Environment {
        secrets: json!({ "GITHUB_TOKEN": GITHUB_TOKEN })
            .as_object()
            .unwrap()
            .clone(),
        ..Environment::default()
    };
    let harness = github_harness(&github, environment).await;
    let run = publish_github(
        &harness,
        json!({ "repoUrl": "ghe.example.com?owner=octocat&repo=tools", "protectDefaultBranch": false }),
        json!({}),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    let repo = github.repo("octocat/tools").unwrap();
    assert_eq!(repo["owner"]["type"], "User");
    assert_eq!(repo["private"], true, "private is Backstage's default");
    assert!(github.protection("octocat/tools", "main").is_none());
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_github_explains_what_github_refused() {
    let github = GithubFake::start(GITHUB_TOKEN, "octocat", &["acme"]);
    let harness = github_harness(&github, Environment::default()).await;
    let first = publish_github(
        &harness,
        json!({ "repoUrl": "ghe.example.com?owner=acme&repo=taken", "token": "${{ secrets.t }}" }),
        json!({ "t": GITHUB_TOKEN }),
    )
    .await;
    assert!(first.succeeded(), "{:#?}", first.events);

    let cases = [
        (
            json!({ "repoUrl": "ghe.example.com?owner=acme&repo=taken", "token": "${{ secrets.t }}" }),
            json!({ "t": GITHUB_TOKEN }),
            "GitHub refused POST /orgs/acme/repos with 422: Repository creation failed. (name already exists on this account)",
        ),
        (
            json!({ "repoUrl": "ghe.example.com?owner=acme&repo=x", "token": "${{ secrets.t }}" }),
            json!({ "t": "ghp_wrong" }),
            "GitHub refused GET /users/acme with 401: Bad credentials",
        ),
        (
            json!({ "repoUrl": "github.example.org?owner=acme&repo=x" }),
            json!({}),
            "No matching integration configuration for host github.example.org",
        ),
        (
            json!({ "repoUrl": "ghe.example.com?owner=acme&repo=x" }),
            json!({}),
            "No token available for host: ghe.example.com",
        ),
        (
            json!({ "repoUrl": "ghe.example.com?owner=someone&repo=x", "token": "${{ secrets.t }}" }),
            json!({ "t": GITHUB_TOKEN }),
            "GitHub refused GET /users/someone with 404: Not Found",
        ),
    ];
    for (input, secrets, expected) in cases {
        let run = publish_github(&harness, input.clone(), secrets).await;
        let error = run.error().unwrap_or_else(|| panic!("{input} succeeded"));
        assert!(error.contains(expected), "{input}: {error}");
        assert!(!error.contains(GITHUB_TOKEN));
    }
    harness.finish().await;
}
