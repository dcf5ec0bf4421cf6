//! `publish:git`'s `repoContentsUrl` (where the catalog reads the pushed files) through
//! the engine and the sandbox, pushing to a real `git http-backend` on loopback: the
//! layout of a host named by an `integrations` entry, the operator's pattern for other
//! hosts, the step's pattern, and a bad pattern refused before anything is pushed. The
//! layout of every host kind is unit-tested in `plugins/publish/src/catalog_url.rs`.

use std::collections::BTreeMap;

use scaffolder_builtins_tests::{Harness, TaskRun};
use scaffolder_runtime::Grants;
use scaffolder_test_artifacts::git_server::GitServer;
use serde_json::{Value as Json, json};

const TOKEN: &str = "git-token-catalog-url";

async fn harness(server: &GitServer, settings: &[(&str, String)]) -> Harness {
    let grants = Grants {
        outbound_http: vec![server.base.clone()],
        ..Grants::default()
    };
    let settings: BTreeMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Harness::with_grants_and_settings(&grants, &settings).await
}

/// Publishes a one-file workspace to `remote` with `input` added to the step's input.
async fn publish(harness: &Harness, remote: &str, input: Json) -> TaskRun {
    let mut step_input = json!({ "remoteUrl": remote, "token": TOKEN });
    step_input
        .as_object_mut()
        .unwrap()
        .extend(input.as_object().unwrap().clone());
    let steps = json!([
        {
            "id": "write", "name": "Write", "action": "fetch:plain",
            "input": { "url": "./skeleton" }
        },
        { "id": "publish", "name": "Publish", "action": "publish:git", "input": step_input }
    ]);
    harness
        .run(
            steps,
            json!({}),
            &[("skeleton/catalog-info.yaml", "kind: Component\n")],
        )
        .await
}

/// `host:port` of the server.
fn host(server: &GitServer) -> &str {
    server.base.trim_start_matches("http://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_named_by_an_integration_gets_that_kinds_layout() {
    let server = GitServer::start(Some(TOKEN));
    let remote = server.create_repo("team/gitea-kind");
    let integrations = json!([{ "kind": "gitea", "host": host(&server) }]).to_string();
    let harness = harness(&server, &[("integrations", integrations)]).await;
    let run = publish(&harness, &remote, json!({})).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.step_output("publish")["repoContentsUrl"],
        json!(format!("{}/team/gitea-kind/src/branch/main", server.base))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_hosts_take_the_operators_pattern_and_a_step_pattern_wins() {
    let server = GitServer::start(Some(TOKEN));
    let pattern = "{origin}/cgit/{path}.git/plain?h={branch}".to_owned();
    let harness = harness(&server, &[("repoContentsUrl", pattern)]).await;

    let remote = server.create_repo("team/operator");
    let run = publish(&harness, &remote, json!({})).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.step_output("publish")["repoContentsUrl"],
        json!(format!(
            "{}/cgit/team/operator.git/plain?h=main",
            server.base
        ))
    );

    let remote = server.create_repo("team/step");
    let run = publish(
        &harness,
        &remote,
        json!({ "repoContentsUrl": "{repository}/-/raw/{branch}", "defaultBranch": "trunk" }),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.step_output("publish")["repoContentsUrl"],
        json!(format!("{}/team/step/-/raw/trunk", server.base))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_with_an_unknown_placeholder_fails_before_the_push() {
    let server = GitServer::start(Some(TOKEN));
    let harness = harness(&server, &[]).await;
    let remote = server.create_repo("team/bad-pattern");
    let run = publish(
        &harness,
        &remote,
        json!({ "repoContentsUrl": "{repo}/raw/{branch}" }),
    )
    .await;
    let error = run.error().unwrap_or_default();
    assert!(
        error.contains("the repoContentsUrl input '{repo}/raw/{branch}' uses {repo}, which is not one of {repository}, {origin}, {host}, {path}, {branch}"),
        "{error}"
    );
    assert_eq!(server.pushes("team/bad-pattern"), 0);
}
