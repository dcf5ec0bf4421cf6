//! The catalog actions through the engine and the sandbox: `catalog:write`, and
//! `catalog:fetch` and `catalog:register` against the real Backstage catalog of
//! `tests/backstage/`.
//!
//! The expected `catalog:write` contents are what Backstage 4.2.0's handler writes for the same input:
//! `yaml@2.9.1`'s `stringify` of the entity with the source-template annotation spread in,
//! computed with Node.js 20.

use std::collections::BTreeMap;

use scaffolder_builtins_tests::{Harness, TaskRun, files, log_messages};
use scaffolder_runtime::Grants;
use scaffolder_test_artifacts::backstage::{Backstage, serve_catalog_info};
use serde_json::{Value as Json, json};

const INFO: &str = "\u{1b}[32minfo\u{1b}[39m: ";

fn info(message: &str) -> String {
    format!("{INFO}{message}")
}

fn error_name(run: &TaskRun) -> &str {
    run.completion["error"]["name"].as_str().unwrap_or_default()
}

fn write_step(input: Json) -> Json {
    json!([{ "id": "write", "name": "Write catalog file", "action": "catalog:write", "input": input }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_dumps_the_entity_with_the_source_template_annotation() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            write_step(json!({
                "entity": {
                    "apiVersion": "backstage.io/v1alpha1",
                    "kind": "Component",
                    "metadata": {
                        "name": "${{ parameters.name }}",
                        "annotations": { "github.com/project-slug": "acme/${{ parameters.name }}" }
                    },
                    "spec": { "type": "service", "lifecycle": "experimental", "owner": "group:default/team" }
                }
            })),
            json!({ "name": "my-service" }),
            &[],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.read("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\n\
         kind: Component\n\
         metadata:\n\
        \x20 name: my-service\n\
        \x20 annotations:\n\
        \x20   github.com/project-slug: acme/my-service\n\
        \x20   backstage.io/source-template: template:default/test\n\
         spec:\n\
        \x20 type: service\n\
        \x20 lifecycle: experimental\n\
        \x20 owner: group:default/team\n"
    );
    assert!(
        run.messages().contains(&info("Writing catalog-info.yaml")),
        "{:#?}",
        run.messages()
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_quotes_folds_and_orders_as_the_yaml_package_does() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            write_step(json!({
                "entity": {
                    "apiVersion": "backstage.io/v1alpha1",
                    "kind": "Component",
                    "metadata": {
                        "name": "tricky",
                        "description": "Line one\nline two\n",
                        "title": "yes: no",
                        "tags": ["true", "1.0", "plain", ""],
                        "labels": { "10": "ten", "a": "#hash", "2": "two" },
                        "links": [{ "url": "https://example.com/#anchor", "title": " padded " }]
                    },
                    "spec": {
                        "type": "service",
                        "replicas": 3,
                        "ratio": 0.5,
                        "big": 1e21,
                        "enabled": false,
                        "nothing": null,
                        "empty": {},
                        "none": [],
                        "summary": "A long summary that goes on and on past the eighty column limit, so that yaml folds it onto a second line"
                    }
                }
            })),
            json!({}),
            &[],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.read("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\n\
         kind: Component\n\
         metadata:\n\
        \x20 name: tricky\n\
        \x20 description: |\n\
        \x20   Line one\n\
        \x20   line two\n\
        \x20 title: \"yes: no\"\n\
        \x20 tags:\n\
        \x20   - \"true\"\n\
        \x20   - \"1.0\"\n\
        \x20   - plain\n\
        \x20   - \"\"\n\
        \x20 labels:\n\
        \x20   \"2\": two\n\
        \x20   \"10\": ten\n\
        \x20   a: \"#hash\"\n\
        \x20 links:\n\
        \x20   - url: https://example.com/#anchor\n\
        \x20     title: \" padded \"\n\
        \x20 annotations:\n\
        \x20   backstage.io/source-template: template:default/test\n\
         spec:\n\
        \x20 type: service\n\
        \x20 replicas: 3\n\
        \x20 ratio: 0.5\n\
        \x20 big: 1e+21\n\
        \x20 enabled: false\n\
        \x20 nothing: null\n\
        \x20 empty: {}\n\
        \x20 none: []\n\
        \x20 summary: A long summary that goes on and on past the eighty column limit, so\n\
        \x20   that yaml folds it onto a second line\n"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_uses_file_path_and_creates_missing_directories() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            write_step(json!({
                "filePath": "nested/dir/${{ parameters.file }}",
                "entity": { "metadata": { "name": "x" }, "kind": "Component" }
            })),
            json!({ "file": "entity.yaml" }),
            &[],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    // `metadata` keeps its place; the annotations come after the given metadata.
    assert_eq!(
        run.read("nested/dir/entity.yaml"),
        "metadata:\n\
        \x20 name: x\n\
        \x20 annotations:\n\
        \x20   backstage.io/source-template: template:default/test\n\
         kind: Component\n"
    );
    assert!(!run.workspace.join("catalog-info.yaml").exists());
    assert!(
        run.messages()
            .contains(&info("Writing nested/dir/entity.yaml")),
        "{:#?}",
        run.messages()
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_validates_its_input() {
    let harness = Harness::new().await;
    let cases = [
        (
            json!({ "entity": { "kind": "Component" }, "filepath": "x.yaml" }),
            "filepath",
        ),
        (json!({ "filePath": "x.yaml" }), "entity"),
        (json!({ "entity": "kind: Component" }), "entity"),
        (
            json!({ "entity": { "kind": "Component" }, "filePath": 7 }),
            "filePath",
        ),
    ];
    for (input, named) in cases {
        let run = harness.run(write_step(input.clone()), json!({}), &[]).await;
        let error = run.error().unwrap_or_default();
        assert!(
            error.starts_with("Invalid input passed to action catalog:write, "),
            "{input}: {error}"
        );
        assert!(error.contains(named), "{input}: names {named}: {error}");
        assert!(!run.workspace.join("x.yaml").exists());
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_fails_like_backstage_when_metadata_is_missing() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            write_step(json!({ "entity": { "kind": "Component" } })),
            json!({}),
            &[],
        )
        .await;
    assert_eq!(
        run.error(),
        Some("Cannot read properties of undefined (reading 'annotations')")
    );
    assert!(!run.workspace.join("catalog-info.yaml").exists());
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_refuses_paths_outside_the_workspace() {
    let harness = Harness::new().await;
    for file_path in [
        "../escape.yaml",
        "a/../../escape.yaml",
        "/escape.yaml",
        "..escape.yaml",
    ] {
        let run = harness
            .run(
                write_step(
                    json!({ "filePath": file_path, "entity": { "metadata": { "name": "x" } } }),
                ),
                json!({}),
                &[],
            )
            .await;
        assert_eq!(
            run.error(),
            Some("Relative path is not allowed to refer to a directory outside its parent"),
            "{file_path}"
        );
        assert_eq!(error_name(&run), "NotAllowedError", "{file_path}");
        assert!(
            run.messages()
                .contains(&info(&format!("Writing {file_path}"))),
            "{:#?}",
            run.messages()
        );
        assert!(!run.workspace.parent().unwrap().join("escape.yaml").exists());
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_runs_in_a_dry_run() {
    let harness = Harness::new().await;
    let result = harness
        .dry_run(
            write_step(json!({
                "entity": { "apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": { "name": "petstore" } }
            })),
            json!({}),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        files(&result),
        [(
            "catalog-info.yaml".to_owned(),
            "apiVersion: backstage.io/v1alpha1\n\
             kind: API\n\
             metadata:\n\
            \x20 name: petstore\n\
            \x20 annotations:\n\
            \x20   backstage.io/source-template: template:default/dry-run\n"
                .to_owned()
        )]
    );
    let messages = log_messages(&result);
    assert!(
        messages.contains(&info("Writing catalog-info.yaml").as_str()),
        "{messages:#?}"
    );
    harness.finish().await;
}

// ---------------------------------------------------------------------------
// catalog:fetch and catalog:register, against the real Backstage catalog of
// `tests/backstage/` (one backend for all cases: it takes seconds to start).

const BACKSTAGE_TOKEN: &str = "catalog-actions-test-token";

const CATALOG: &str = "apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: existing-service
  namespace: default
spec:
  type: service
  lifecycle: production
  owner: group:default/team-a
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  children: []
";

const REGISTERED: &str = "apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: registered-api
spec:
  type: openapi
  lifecycle: production
  owner: group:default/team-a
  definition: 'openapi: 3.0.0'
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: registered-service
spec:
  type: service
  lifecycle: experimental
  owner: group:default/team-a
";

fn step(action: &str, input: Json) -> Json {
    json!([{ "id": "step", "name": action, "action": action, "input": input }])
}

/// The built-ins as a server configured with this Backstage gives them: the catalog
/// plugin may reach it with the caller's token, nothing more.
async fn catalog_harness(backstage: &Backstage) -> Harness {
    let settings = BTreeMap::from([("backstage.baseUrl".to_owned(), backstage.base.clone())]);
    Harness::with_grants_and_settings(&Grants::default(), &settings).await
}

fn token() -> Json {
    json!({ "backstageToken": BACKSTAGE_TOKEN })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_register_talk_to_a_real_backstage_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let catalog_file = dir.path().join("catalog.yaml");
    std::fs::write(&catalog_file, CATALOG).unwrap();
    let backstage = Backstage::start(Some(&catalog_file), BACKSTAGE_TOKEN);
    let harness = catalog_harness(&backstage).await;
    let fetch = |input: Json| {
        harness.run_with_secrets(step("catalog:fetch", input), json!({}), &[], token())
    };

    // One entity, with the defaults filling in the reference.
    let run = fetch(json!({ "entityRef": "Existing-Service", "defaultKind": "component" })).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.step_output("step")["entity"]["metadata"]["name"],
        "existing-service",
        "{:#?}",
        run.events
    );
    assert_eq!(
        run.step_output("step")["entity"]["spec"]["owner"],
        "group:default/team-a"
    );

    // Several, one missing: an error unless optional, then null in its place.
    let refs = json!([
        "component:default/existing-service",
        "group:team-a",
        "component:nope"
    ]);
    let run = fetch(json!({ "entityRefs": refs })).await;
    assert_eq!(run.error(), Some("Entity component:nope not found"));
    let run = fetch(json!({ "entityRefs": refs, "optional": true })).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    let entities = run.step_output("step")["entities"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entities.len(), 3);
    assert_eq!(entities[0]["kind"], "Component");
    assert_eq!(entities[1]["metadata"]["name"], "team-a");
    assert!(entities[2].is_null());

    let run = fetch(json!({ "entityRef": "component:default/nope" })).await;
    assert_eq!(run.error(), Some("Entity component:default/nope not found"));
    let run = fetch(json!({ "entityRef": "component:default/nope", "optional": true })).await;
    assert_eq!(
        run.step_output("step")["entity"],
        Json::Null,
        "{:#?}",
        run.events
    );
    let run = fetch(json!({ "entityRef": "nope" })).await;
    assert_eq!(
        run.error(),
        Some(
            "Entity reference \"nope\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        )
    );
    let run = fetch(json!({})).await;
    assert_eq!(run.error(), Some("Missing entity reference or references"));
    let run = fetch(json!({ "optional": true })).await;
    assert!(run.succeeded(), "{:#?}", run.events);

    // Without the user's token the catalog refuses, and the message says what is missing.
    let run = harness
        .run(
            step("catalog:fetch", json!({ "entityRef": "group:team-a" })),
            json!({}),
            &[],
        )
        .await;
    let error = run.error().unwrap_or_default();
    assert!(
        error.starts_with("Request failed with 401 AuthenticationError"),
        "{error}"
    );
    assert!(error.contains("backstageToken"), "{error}");

    // Register a descriptor served over HTTP: the location is added, the main entity
    // (the Component, not the API) is the output, and the catalog then has it.
    let port = serve_catalog_info(REGISTERED);
    let url = format!("http://127.0.0.1:{port}/catalog-info.yaml");
    let register = |input: Json| {
        harness.run_with_secrets(step("catalog:register", input), json!({}), &[], token())
    };
    let run = register(json!({ "catalogInfoUrl": url })).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.step_output("step"),
        &json!({ "entityRef": "component:default/registered-service", "catalogInfoUrl": url })
    );
    assert!(
        run.messages()
            .contains(&info(&format!("Registering {url} in the catalog")))
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let run =
            fetch(json!({ "entityRef": "component:registered-service", "optional": true })).await;
        if run.step_output("step")["entity"]["metadata"]["name"] == "registered-service" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never registered: {:#?}",
            run.events
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    // The same location again: Backstage's conflict, unless optional.
    let run = register(json!({ "catalogInfoUrl": url })).await;
    assert_eq!(
        run.error(),
        Some(
            format!("Request failed with 409 ConflictError: Location url:{url} already exists")
                .as_str()
        )
    );
    let run = register(json!({ "catalogInfoUrl": url, "optional": true })).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        run.step_output("step")["entityRef"],
        "component:default/registered-service"
    );

    // A descriptor that does not exist fails; optional, it outputs just the URL.
    let missing = format!("http://127.0.0.1:{port}/missing.yaml");
    let run = register(json!({ "catalogInfoUrl": missing })).await;
    assert!(
        run.error()
            .unwrap_or_default()
            .starts_with("Request failed with 400 InputError"),
        "{:?}",
        run.error()
    );
    let run = register(json!({ "catalogInfoUrl": missing, "optional": true })).await;
    assert_eq!(
        run.step_output("step"),
        &json!({ "catalogInfoUrl": missing }),
        "{:#?}",
        run.events
    );

    // A dry run fetches for real but skips the registration (no dry-run support).
    let result = harness
        .dry_run_with_secrets(
            json!([
                { "id": "fetch", "name": "Fetch", "action": "catalog:fetch", "input": { "entityRef": "group:team-a" } },
                { "id": "register", "name": "Register", "action": "catalog:register", "input": { "catalogInfoUrl": "http://127.0.0.1:1/never.yaml" } }
            ]),
            json!({}),
            &[],
            token(),
        )
        .await
        .unwrap();
    let messages = log_messages(&result);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Skipping because catalog:register does not support dry-run")),
        "{messages:#?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("Registering")),
        "{messages:#?}"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_register_validate_their_input() {
    let harness = Harness::new().await;
    let cases = [
        (
            "catalog:fetch",
            json!({ "entityRef": "group:a", "kind": "Group" }),
            "kind",
        ),
        (
            "catalog:fetch",
            json!({ "entityRefs": "group:a" }),
            "entityRefs",
        ),
        // Backstage's message for an input that fits neither shape of an `anyOf`.
        (
            "catalog:register",
            json!({ "catalogInfoUrl": "http://x/c.yaml", "extra": 1 }),
            "is not any of [subschema 0],[subschema 1]",
        ),
        (
            "catalog:register",
            json!({ "catalogInfoPath": "/c.yaml" }),
            "is not any of [subschema 0],[subschema 1]",
        ),
        (
            "catalog:register",
            json!({ "catalogInfoUrl": "http://x/c.yaml", "repoContentsUrl": "https://github.com/a/b" }),
            "is not any of [subschema 0],[subschema 1]",
        ),
    ];
    for (action, input, named) in cases {
        let run = harness
            .run(step(action, input.clone()), json!({}), &[])
            .await;
        let error = run.error().unwrap_or_default();
        assert!(
            error.starts_with(&format!("Invalid input passed to action {action}, ")),
            "{input}: {error}"
        );
        assert!(error.contains(named), "{input}: names {named}: {error}");
        assert!(!run.messages().iter().any(|m| m.contains("Registering")));
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_resolves_repository_urls_through_the_integrations() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            step(
                "catalog:register",
                json!({ "repoContentsUrl": "https://git.internal/acme/svc" }),
            ),
            json!({}),
            &[],
        )
        .await;
    assert_eq!(
        run.error(),
        Some("No integration found for host https://git.internal/acme/svc")
    );
    assert_eq!(error_name(&run), "InputError");
    // A GitHub URL resolves, then the step needs a catalog, which is not configured here.
    let run = harness
        .run(
            step(
                "catalog:register",
                json!({ "repoContentsUrl": "https://github.com/acme/svc/blob/main" }),
            ),
            json!({}),
            &[],
        )
        .await;
    assert!(
        run.messages().contains(&info(
            "Registering https://github.com/acme/svc/tree/main/catalog-info.yaml in the catalog"
        )),
        "{:#?}",
        run.messages()
    );
    assert_eq!(
        run.error(),
        Some(
            "no Backstage catalog is configured: set backstage.baseUrl in the scaffolder's configuration"
        )
    );
    harness.finish().await;
}
