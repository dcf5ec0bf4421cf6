//! `catalog:write` through the engine and the sandbox.
//!
//! The expected file contents are what Backstage 4.2.0's handler writes for the same input:
//! `yaml@2.9.1`'s `stringify` of the entity with the source-template annotation spread in,
//! computed with Node.js 20.

use scaffolder_builtins_tests::{Harness, TaskRun, files};
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
        assert_eq!(error_name(&run), "InputError", "{file_path}");
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
    let messages: Vec<&str> = result
        .log
        .iter()
        .filter_map(|l| l["body"]["message"].as_str())
        .collect();
    assert!(
        messages.contains(&info("Writing catalog-info.yaml").as_str()),
        "{messages:#?}"
    );
    harness.finish().await;
}
