//! `fs:delete`, `fs:rename` and `fs:readdir` through the engine. Each task first copies
//! the template's `skeleton/` into the workspace with `fetch:plain`.

use std::path::Path;

use scaffolder_builtins_tests::{Harness, TaskRun, builtins, files, log_messages};
use scaffolder_runtime::{Capabilities, Grants};
use serde_json::{Value as Json, json};

const INFO: &str = "\u{1b}[32minfo\u{1b}[39m: ";

/// Backstage's `resolveSafeChildPath` refusal, a `NotAllowedError`.
const OUTSIDE: &str = "Relative path is not allowed to refer to a directory outside its parent";

fn error_name(run: &TaskRun) -> &str {
    run.completion["error"]["name"].as_str().unwrap_or_default()
}

const SKELETON: &[(&str, &str)] = &[
    ("skeleton/.env", "SECRET=1"),
    ("skeleton/a.txt", "a"),
    ("skeleton/b.txt", "b"),
    ("skeleton/keep.md", "keep"),
    ("skeleton/docs/.hidden", "hidden"),
    ("skeleton/docs/index.md", "# docs"),
    ("skeleton/docs/api/ref.md", "ref"),
    ("skeleton/src/lib.rs", "lib"),
    ("skeleton/src/main.log", "log"),
    ("skeleton/src/deep/trace.log", "trace"),
];

/// Every file of the skeleton, as the workspace holds it after `fetch:plain`.
fn skeleton_files() -> Vec<String> {
    let mut files: Vec<String> = SKELETON
        .iter()
        .map(|(path, _)| path.strip_prefix("skeleton/").unwrap().to_owned())
        .collect();
    files.sort();
    files
}

/// `fetch:plain` of the skeleton, then `more`.
fn with_skeleton(more: Json) -> Json {
    let mut steps =
        vec![json!({ "id": "fetch", "action": "fetch:plain", "input": { "url": "./skeleton" } })];
    steps.extend(more.as_array().unwrap().iter().cloned());
    Json::Array(steps)
}

async fn task(harness: &Harness, steps: Json) -> TaskRun {
    harness.run(with_skeleton(steps), json!({}), SKELETON).await
}

/// The files (not directories) below `root`, relative and sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn dry_run_paths(result: &scaffolder_engine::LocalRunResult) -> Vec<String> {
    let mut paths: Vec<String> = files(result).into_iter().map(|(path, _)| path).collect();
    paths.sort();
    paths
}

/// Runs each step alone (after the fetch) and asserts the engine refused its input.
async fn assert_invalid_input(harness: &Harness, action: &str, inputs: &[Json]) {
    for input in inputs {
        let run = task(
            harness,
            json!([{ "id": "x", "action": action, "input": input }]),
        )
        .await;
        let error = run
            .error()
            .unwrap_or_else(|| panic!("{input} was accepted"));
        assert!(
            error.starts_with(&format!("Invalid input passed to action {action}, ")),
            "{input}: {error}"
        );
    }
}

// Metadata

/// Backstage 4.2.0's schemas, as zod-to-json-schema writes them for `/v2/actions`.
fn backstage_schemas(id: &str) -> (Json, Option<Json>) {
    let entry = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "Name of the file or directory" },
            "path": { "type": "string", "description": "path to the file or directory relative to the workspace" },
            "fullPath": { "type": "string", "description": "full path to the file or directory" }
        },
        "required": ["name", "path", "fullPath"],
        "additionalProperties": false
    });
    match id {
        "fs:delete" => (
            json!({
                "type": "object",
                "properties": { "files": {
                    "type": "array",
                    "items": { "type": "string" },
                    "description": "A list of files and directories that will be deleted"
                } },
                "required": ["files"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }),
            None,
        ),
        "fs:rename" => (
            json!({
                "type": "object",
                "properties": { "files": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "from": { "type": "string", "description": "The source location of the file to be renamed" },
                            "to": { "type": "string", "description": "The destination of the new file" },
                            "overwrite": { "type": "boolean", "description": "Overwrite existing file or directory, default is false" }
                        },
                        "required": ["from", "to"],
                        "additionalProperties": false
                    },
                    "description": "A list of file and directory names that will be renamed"
                } },
                "required": ["files"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }),
            None,
        ),
        "fs:readdir" => (
            json!({
                "type": "object",
                "properties": {
                    "paths": { "type": "array", "items": { "type": "string", "minLength": 1 } },
                    "recursive": { "type": "boolean", "default": false }
                },
                "required": ["paths"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }),
            Some(json!({
                "type": "object",
                "properties": {
                    "files": { "type": "array", "items": entry },
                    "folders": { "type": "array", "items": entry }
                },
                "required": ["files", "folders"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            })),
        ),
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_describe_backstage_schemas_examples_and_attributes() {
    let plugins = builtins(&Grants::default(), &Default::default()).await;
    let plugin = plugins
        .iter()
        .find(|p| p.name() == "builtin-fs")
        .expect("builtin-fs is embedded");
    let ids: Vec<&str> = plugin
        .info()
        .actions
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(ids, ["fs:delete", "fs:rename", "fs:readdir"]);
    for (id, description, examples, [read_only, destructive, idempotent]) in [
        (
            "fs:delete",
            "Deletes files and directories from the workspace",
            &[
                "Delete specified files",
                "Delete files with wildcard",
                "Delete all files in workspace",
            ][..],
            [false, true, true],
        ),
        (
            "fs:rename",
            "Renames files and directories within the workspace",
            &["Rename specified files "][..],
            [false, true, false],
        ),
        (
            "fs:readdir",
            "Reads files and directories from the workspace",
            &[
                "Read complete content of workspace",
                "Get content of the docs folder",
                "Get content of multiple folders",
            ][..],
            [true, false, true],
        ),
    ] {
        let action = plugin.action(id).unwrap();
        let (input, output) = backstage_schemas(id);
        assert_eq!(action.description, description);
        assert_eq!(action.input_schema, input, "{id}");
        assert_eq!(action.output_schema, output, "{id}");
        assert!(action.supports_dry_run, "{id}");
        let described: Vec<&str> = action
            .examples
            .iter()
            .map(|e| e.description.as_str())
            .collect();
        assert_eq!(described, examples);
        assert!(
            action.examples.iter().all(|e| e
                .example
                .starts_with(&format!("steps:\n  - action: {id}\n"))),
            "{id}"
        );
        assert_eq!(
            (
                action.attributes.read_only,
                action.attributes.destructive,
                action.attributes.idempotent
            ),
            (read_only, destructive, idempotent),
            "{id}"
        );
        assert_eq!(
            action.capabilities,
            Capabilities::default(),
            "{id} requests nothing beyond the workspace"
        );
    }
}

// fs:delete

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_named_files_directories_and_glob_matches() {
    let harness = Harness::new().await;
    let run = task(
        &harness,
        json!([{ "id": "rm", "action": "fs:delete", "input": {
            "files": ["a.txt", "docs", "**/*.log", ".\\b.txt", "/workspace/keep.md"]
        } }]),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(tree(&run.workspace), [".env", "src/lib.rs"]);
    assert!(
        run.workspace.join("docs").is_dir(),
        "a named directory loses its files, one by one, and stays (as in Backstage)"
    );
    let messages = run.messages();
    for deleted in [
        "a.txt",
        "docs/.hidden",
        "docs/index.md",
        "docs/api/ref.md",
        "src/main.log",
        "src/deep/trace.log",
        "b.txt",
        "keep.md",
    ] {
        let line = format!("{INFO}File /workspace/{deleted} deleted successfully");
        assert!(messages.contains(&line), "{line:?} in {messages:#?}");
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_wildcards_match_dotfiles_but_not_directories() {
    let harness = Harness::new().await;
    let run = task(
        &harness,
        json!([{ "id": "rm", "action": "fs:delete", "input": { "files": ["*", "docs/*"] } }]),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        tree(&run.workspace),
        [
            "docs/api/ref.md",
            "src/deep/trace.log",
            "src/lib.rs",
            "src/main.log"
        ]
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_succeeds_when_nothing_matches() {
    let harness = Harness::new().await;
    let run = task(
        &harness,
        json!([{ "id": "rm", "action": "fs:delete", "input": {
            "files": ["missing.txt", "*.none", "a.txt/below-a-file", "docs/{x,y}/**"]
        } }]),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(tree(&run.workspace), skeleton_files());
    assert!(
        !run.messages().iter().any(|m| m.contains("deleted")),
        "nothing is logged for a pattern matching nothing: {:#?}",
        run.messages()
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_validates_its_input() {
    let harness = Harness::new().await;
    assert_invalid_input(
        &harness,
        "fs:delete",
        &[
            json!({ "files": ["a.txt"], "force": true }),
            json!({}),
            json!({ "files": "a.txt" }),
            json!({ "files": [1] }),
        ],
    )
    .await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_runs_in_a_dry_run() {
    let harness = Harness::new().await;
    let result = harness
        .dry_run(
            with_skeleton(json!([
                { "id": "rm", "action": "fs:delete", "input": { "files": ["docs", "*.txt"] } }
            ])),
            json!({}),
            SKELETON,
        )
        .await
        .unwrap();
    assert_eq!(
        dry_run_paths(&result),
        [
            ".env",
            "keep.md",
            "src/deep/trace.log",
            "src/lib.rs",
            "src/main.log"
        ]
    );
    let messages = log_messages(&result);
    assert!(
        messages.contains(&"Finished step fs:delete"),
        "{messages:#?}"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_refuses_paths_outside_the_workspace() {
    let harness = Harness::new().await;
    for outside in [
        "../outside.txt",
        "/etc/passwd",
        "docs/../../outside.txt",
        "..\\outside.txt",
        "../**/index.js",
        "/workspace/../etc",
    ] {
        let run = task(
            &harness,
            json!([{ "id": "rm", "action": "fs:delete", "input": { "files": ["a.txt", outside] } }]),
        )
        .await;
        assert_eq!(run.error(), Some(OUTSIDE), "{outside}");
        assert_eq!(error_name(&run), "NotAllowedError", "{outside}");
        let mut left = skeleton_files();
        left.retain(|f| f != "a.txt");
        assert_eq!(
            tree(&run.workspace),
            left,
            "entries before the refused one are deleted, as Backstage goes one by one"
        );
    }
    harness.finish().await;
}

// fs:rename

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_moves_files_and_directories_creating_parents() {
    let harness = Harness::new().await;
    let run = task(
        &harness,
        json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [
            { "from": "a.txt", "to": "renamed/deep/a-renamed.txt" },
            { "from": "docs", "to": "documentation" },
            { "from": "b.txt", "to": "keep.md", "overwrite": true },
            { "from": "src/deep", "to": "documentation/api", "overwrite": true }
        ] } }]),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        tree(&run.workspace),
        [
            ".env",
            "documentation/.hidden",
            "documentation/api/trace.log",
            "documentation/index.md",
            "keep.md",
            "renamed/deep/a-renamed.txt",
            "src/lib.rs",
            "src/main.log",
        ]
    );
    assert_eq!(run.read("renamed/deep/a-renamed.txt"), "a");
    assert_eq!(run.read("keep.md"), "b");
    assert!(!run.workspace.join("docs").exists() && !run.workspace.join("src/deep").exists());
    assert!(run.messages().contains(&format!(
        "{INFO}File /workspace/a.txt renamed to /workspace/renamed/deep/a-renamed.txt successfully"
    )));
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_refuses_to_replace_an_existing_destination_unless_asked() {
    let harness = Harness::new().await;
    for (from, to) in [("a.txt", "b.txt"), ("docs", "src"), ("a.txt", "docs")] {
        for overwrite in [json!(false), Json::Null] {
            let mut file = json!({ "from": from, "to": to });
            if !overwrite.is_null() {
                file["overwrite"] = overwrite;
            }
            let run = task(
                &harness,
                json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [file] } }]),
            )
            .await;
            // fs-extra's `move` messages.
            let expected = if to == "docs" {
                format!(
                    "Cannot overwrite directory '/workspace/{to}' with non-directory '/workspace/{from}'."
                )
            } else {
                "dest already exists.".to_owned()
            };
            assert_eq!(run.error(), Some(expected.as_str()));
            assert_eq!(tree(&run.workspace), skeleton_files());
        }
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_fails_when_the_source_is_missing_or_would_move_into_itself() {
    let harness = Harness::new().await;
    let run = task(
        &harness,
        json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [
            { "from": "missing.txt", "to": "found.txt" }
        ] } }]),
    )
    .await;
    assert_eq!(
        run.error(),
        Some("ENOENT: no such file or directory, lstat '/workspace/missing.txt'")
    );
    let run = task(
        &harness,
        json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [
            { "from": "docs", "to": "docs/api/docs", "overwrite": true }
        ] } }]),
    )
    .await;
    assert_eq!(
        run.error(),
        Some(
            "Cannot move '/workspace/docs' to a subdirectory of itself, '/workspace/docs/api/docs'."
        )
    );
    assert_eq!(tree(&run.workspace), skeleton_files());
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_validates_its_input() {
    let harness = Harness::new().await;
    assert_invalid_input(
        &harness,
        "fs:rename",
        &[
            json!({ "files": [{ "from": "a.txt", "to": "c.txt" }], "force": true }),
            json!({ "files": [{ "from": "a.txt", "to": "c.txt", "force": true }] }),
            json!({ "files": [{ "from": "a.txt" }] }),
            json!({ "files": [{ "from": "a.txt", "to": "c.txt", "overwrite": "yes" }] }),
            json!({}),
        ],
    )
    .await;
    let run = task(
        &harness,
        json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [{ "from": "", "to": "c.txt" }] } }]),
    )
    .await;
    assert_eq!(
        run.error(),
        Some("each file must have a from and to property")
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_runs_in_a_dry_run() {
    let harness = Harness::new().await;
    let result = harness
        .dry_run(
            with_skeleton(
                json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [
                { "from": "src", "to": "source" }
            ] } }]),
            ),
            json!({}),
            SKELETON,
        )
        .await
        .unwrap();
    let expected: Vec<String> = skeleton_files()
        .into_iter()
        .map(|f| match f.strip_prefix("src/") {
            Some(rest) => format!("source/{rest}"),
            None => f,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(dry_run_paths(&result), expected);
    let messages = log_messages(&result);
    assert!(
        messages.contains(&"Finished step fs:rename"),
        "{messages:#?}"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_refuses_paths_outside_the_workspace() {
    let harness = Harness::new().await;
    for (from, to) in [
        ("../outside.txt", "a.txt"),
        ("a.txt", "../outside.txt"),
        ("a.txt", "/tmp/outside.txt"),
        ("docs/../../x", "y"),
    ] {
        let run = task(
            &harness,
            json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [
                { "from": "b.txt", "to": "b-renamed.txt" },
                { "from": from, "to": to }
            ] } }]),
        )
        .await;
        assert_eq!(run.error(), Some(OUTSIDE), "{from} -> {to}");
        assert_eq!(error_name(&run), "NotAllowedError");
        let mut moved = skeleton_files();
        moved.retain(|f| f != "b.txt");
        moved.insert(0, "b-renamed.txt".to_owned());
        moved.sort();
        assert_eq!(
            tree(&run.workspace),
            moved,
            "entries before the refused one move, as Backstage goes one by one"
        );
    }
    let run = task(
        &harness,
        json!([{ "id": "mv", "action": "fs:rename", "input": { "files": [
            { "from": "docs", "to": ".", "overwrite": true }
        ] } }]),
    )
    .await;
    assert_eq!(
        run.error(),
        Some(
            "cannot rename /workspace/docs to /workspace: the workspace itself cannot be renamed or replaced"
        )
    );
    harness.finish().await;
}

// fs:readdir

/// Steps that read `.` and, recursively, `docs`, then log both outputs as JSON.
fn readdir_steps() -> Json {
    with_skeleton(json!([
        { "id": "top", "action": "fs:readdir", "input": { "paths": ["."] } },
        { "id": "docs", "action": "fs:readdir", "input": { "paths": ["docs/"], "recursive": true } },
        { "id": "log-top", "action": "debug:log", "input": { "message": "${{ steps.top.output | dump }}" } },
        { "id": "log-docs", "action": "debug:log", "input": { "message": "${{ steps['docs'].output | dump }}" } }
    ]))
}

/// The outputs logged by [`readdir_steps`], in order.
fn logged_outputs(messages: &[String]) -> Vec<Json> {
    messages
        .iter()
        .filter_map(|m| m.strip_prefix(INFO))
        .filter(|m| m.starts_with("{\"files\""))
        .map(|m| serde_json::from_str(m).unwrap())
        .collect()
}

fn entry(path: &str) -> Json {
    json!({
        "name": path.rsplit('/').next().unwrap(),
        "path": path,
        "fullPath": format!("/workspace/{path}"),
    })
}

fn expected_readdir_outputs() -> Vec<Json> {
    vec![
        json!({
            "files": [entry(".env"), entry("a.txt"), entry("b.txt"), entry("keep.md")],
            "folders": [entry("docs"), entry("src")],
        }),
        json!({
            "files": [entry("docs/.hidden"), entry("docs/index.md"), entry("docs/api/ref.md")],
            "folders": [entry("docs/api")],
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_lists_files_and_folders() {
    let harness = Harness::new().await;
    let run = harness.run(readdir_steps(), json!({}), SKELETON).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    let messages = run.messages();
    assert_eq!(logged_outputs(&messages), expected_readdir_outputs());
    assert!(
        !messages.iter().any(|m| m.contains("Read /workspace")),
        "Backstage's fs:readdir logs nothing: {messages:#?}"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_recursive_descends_into_the_last_folder_first_over_several_paths() {
    let harness = Harness::new().await;
    let run = task(
        &harness,
        json!([
            { "id": "ls", "action": "fs:readdir", "input": { "paths": ["src", "/workspace/docs/api"], "recursive": true } },
            { "id": "log", "action": "debug:log", "input": { "message": "${{ steps.ls.output | dump }}" } }
        ]),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(
        logged_outputs(&run.messages()),
        [json!({
            "files": [
                entry("src/lib.rs"),
                entry("src/main.log"),
                entry("src/deep/trace.log"),
                entry("docs/api/ref.md")
            ],
            "folders": [entry("src/deep")],
        })]
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_fails_for_missing_directories_and_files() {
    let harness = Harness::new().await;
    for (path, reason) in [
        ("missing", "ENOENT: no such file or directory"),
        ("a.txt", "ENOTDIR: not a directory"),
    ] {
        let run = task(
            &harness,
            json!([{ "id": "ls", "action": "fs:readdir", "input": { "paths": [path] } }]),
        )
        .await;
        assert_eq!(
            run.error(),
            Some(format!("{reason}, scandir '/workspace/{path}'").as_str())
        );
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_validates_its_input() {
    let harness = Harness::new().await;
    assert_invalid_input(
        &harness,
        "fs:readdir",
        &[
            json!({ "paths": ["."], "depth": 2 }),
            json!({ "recursive": true }),
            json!({ "paths": [""] }),
            json!({ "paths": ["."], "recursive": "yes" }),
        ],
    )
    .await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_runs_in_a_dry_run() {
    let harness = Harness::new().await;
    let result = harness
        .dry_run(readdir_steps(), json!({}), SKELETON)
        .await
        .unwrap();
    let messages: Vec<String> = log_messages(&result)
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(logged_outputs(&messages), expected_readdir_outputs());
    assert_eq!(
        dry_run_paths(&result),
        skeleton_files(),
        "reading changes nothing"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_refuses_paths_outside_the_workspace() {
    let harness = Harness::new().await;
    for outside in ["..", "../", "/etc", "docs/../../.."] {
        let run = task(
            &harness,
            json!([{ "id": "ls", "action": "fs:readdir", "input": { "paths": [".", outside] } }]),
        )
        .await;
        assert_eq!(run.error(), Some(OUTSIDE), "{outside}");
    }
    harness.finish().await;
}
