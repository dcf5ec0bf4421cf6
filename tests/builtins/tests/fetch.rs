//! `fetch:plain`, `fetch:plain:file`, `fetch:template` and `fetch:template:file` through
//! the engine and the sandbox.

use std::path::PathBuf;
use std::time::Duration;

use scaffolder_builtins_tests::{Harness, TaskRun, files, log_messages, template};
use scaffolder_engine::{LocalRunRequest, TemplateFiles, task_spec};
use scaffolder_runtime::Grants;
use scaffolder_store::EventType;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const INFO: &str = "\u{1b}[32minfo\u{1b}[39m: ";

fn info(message: &str) -> String {
    format!("{INFO}{message}")
}

/// Backstage's `resolveSafeChildPath` refusal, a `NotAllowedError`.
const OUTSIDE: &str = "Relative path is not allowed to refer to a directory outside its parent";

fn error_name(run: &TaskRun) -> &str {
    run.completion["error"]["name"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_copies_a_directory_of_the_template_into_the_workspace() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([
                { "id": "root", "action": "fetch:plain", "input": { "url": "./skeleton" } },
                { "id": "sub", "action": "fetch:plain", "input": { "url": "skeleton/sub", "targetPath": "copies/sub" } }
            ]),
            json!({}),
            &[
                ("template.yaml", "kind: Template"),
                ("skeleton/a.txt", "${{ values.x }} is not rendered"),
                ("skeleton/sub/.hidden", "dotfiles too"),
            ],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("a.txt"), "${{ values.x }} is not rendered");
    assert_eq!(run.read("sub/.hidden"), "dotfiles too");
    assert_eq!(run.read("copies/sub/.hidden"), "dotfiles too");
    assert!(!run.workspace.join("template.yaml").exists());
    assert!(
        run.messages()
            .contains(&info("Fetching plain content from remote URL")),
        "{:#?}",
        run.messages()
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_file_copies_one_file_to_its_target_path() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([{ "id": "f", "action": "fetch:plain:file", "input": { "url": "./files/readme.md", "targetPath": "README.md" } }]),
            json!({}),
            &[("files/readme.md", "# ${{ raw }}\n")],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("README.md"), "# ${{ raw }}\n");

    // Backstage's `fs.copyFile` does not create the target's folder.
    let run = harness
        .run(
            json!([{ "id": "f", "action": "fetch:plain:file", "input": { "url": "./files/readme.md", "targetPath": "docs/nested/README.md" } }]),
            json!({}),
            &[("files/readme.md", "")],
        )
        .await;
    let error = run.error().unwrap();
    assert!(
        error.starts_with("ENOENT: no such file or directory, copyfile '/")
            && error.ends_with("/files/readme.md' -> '/workspace/docs/nested/README.md'"),
        "{error}"
    );

    let run = harness
        .run(
            json!([{ "id": "f", "action": "fetch:plain:file", "input": { "url": "./files", "targetPath": "x" } }]),
            json!({}),
            &[("files/readme.md", "")],
        )
        .await;
    assert!(
        run.error()
            .unwrap()
            .starts_with("EISDIR: illegal operation on a directory, copyfile '"),
        "{:?}",
        run.error()
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_actions_validate_their_input() {
    let harness = Harness::new().await;
    let cases = [
        ("fetch:plain", json!({ "url": "./s", "bogus": 1 }), "bogus"),
        ("fetch:plain", json!({ "targetPath": "x" }), "url"),
        (
            "fetch:plain:file",
            json!({ "url": "./s", "targetPath": "x", "bogus": 1 }),
            "bogus",
        ),
        ("fetch:plain:file", json!({ "targetPath": "x" }), "url"),
        ("fetch:plain:file", json!({ "url": "./s" }), "targetPath"),
        (
            "fetch:template",
            json!({ "url": "./s", "copyWithoutRenderr": [] }),
            "copyWithoutRenderr",
        ),
        ("fetch:template", json!({ "values": {} }), "url"),
        (
            "fetch:template",
            json!({ "url": "./s", "templateFileExtension": 3 }),
            "templateFileExtension",
        ),
        (
            "fetch:template:file",
            json!({ "url": "./s", "targetPath": "x", "bogus": 1 }),
            "bogus",
        ),
        ("fetch:template:file", json!({ "targetPath": "x" }), "url"),
    ];
    for (action, input, named) in cases {
        let run = harness
            .run(
                json!([{ "id": "x", "action": action, "input": input }]),
                json!({}),
                &[],
            )
            .await;
        let error = run.error().unwrap_or_default();
        assert!(
            error.starts_with(&format!("Invalid input passed to action {action}, ")),
            "{action} {input}: {error}"
        );
        assert!(error.contains(named), "{action} {input}: {error}");
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_actions_run_in_a_dry_run() {
    let harness = Harness::new().await;
    let result = harness
        .dry_run(
            json!([
                { "id": "plain", "action": "fetch:plain", "input": { "url": "./plain", "targetPath": "plain" } },
                { "id": "file", "action": "fetch:plain:file", "input": { "url": "./one.txt", "targetPath": "plain/one.txt" } },
                { "id": "tpl", "action": "fetch:template", "input": { "url": "./skeleton", "targetPath": "tpl", "values": { "name": "${{ parameters.name }}" } } },
                { "id": "tplfile", "action": "fetch:template:file", "input": { "url": "./one.txt", "targetPath": "tplfile/one.txt", "values": { "name": "${{ parameters.name }}" } } }
            ]),
            json!({ "name": "svc" }),
            &[
                ("template.yaml", "kind: Template"),
                ("plain/p.txt", "plain"),
                ("one.txt", "one ${{ values.name }}"),
                ("skeleton/${{ values.name }}.md", "# ${{ values.name }}"),
            ],
        )
        .await
        .unwrap();
    let files = files(&result);
    for expected in [
        ("plain/p.txt", "plain"),
        ("plain/one.txt", "one ${{ values.name }}"),
        ("tpl/svc.md", "# svc"),
        ("tplfile/one.txt", "one svc"),
    ] {
        assert!(
            files.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {files:#?}"
        );
    }
    let messages = log_messages(&result);
    for action in [
        "fetch:plain",
        "fetch:plain:file",
        "fetch:template",
        "fetch:template:file",
    ] {
        assert!(
            messages.contains(&format!("Finished step {action}").as_str()),
            "{messages:#?}"
        );
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_actions_refuse_paths_outside_the_template_and_the_workspace() {
    let harness = Harness::new().await;
    let files = [("skeleton/a.txt", "a"), ("one.txt", "one")];
    for (action, url) in [
        ("fetch:plain", "./skeleton"),
        ("fetch:plain:file", "./one.txt"),
        ("fetch:template", "./skeleton"),
        ("fetch:template:file", "./one.txt"),
    ] {
        for bad_url in ["../outside", "skeleton/../../outside", "/etc/passwd"] {
            let run = harness
                .run(
                    json!([{ "id": "x", "action": action, "input": { "url": bad_url, "targetPath": "t" } }]),
                    json!({}),
                    &files,
                )
                .await;
            assert_eq!(run.error(), Some(OUTSIDE), "{action} {bad_url}");
            assert_eq!(error_name(&run), "NotAllowedError", "{action}");
        }
        let run = harness
            .run(
                json!([{ "id": "x", "action": action, "input": { "url": url, "targetPath": "../x" } }]),
                json!({}),
                &files,
            )
            .await;
        assert_eq!(run.error(), Some(OUTSIDE), "{action}");
        assert!(!run.workspace.join("../x").exists());
    }

    // A rendered path may not leave targetPath either.
    let run = harness
        .run(
            json!([{ "id": "x", "action": "fetch:template", "input": { "url": "./skeleton", "values": { "up": ".." } } }]),
            json!({}),
            &[("skeleton/${{ values.up }}/escaped.txt", "x")],
        )
        .await;
    assert_eq!(run.error(), Some(OUTSIDE));
    harness.finish().await;
}

/// Runs `steps` as a task whose template lives at `base_url` (none: unknown location),
/// returning the completion event's body and the workspace.
async fn run_at(harness: &Harness, steps: Json, base_url: Option<String>) -> (Json, PathBuf) {
    let spec = task_spec(&template(steps), json!({}), None, base_url);
    let task = harness
        .engine
        .create_task(&spec, None, Default::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let events = harness
            .engine
            .store()
            .list_events(&task.id, None)
            .await
            .unwrap();
        if let Some(done) = events
            .iter()
            .find(|e| e.event_type == EventType::Completion)
        {
            return (
                done.body.clone(),
                harness.workdir.path().join(task.id.as_str()),
            );
        }
        assert!(tokio::time::Instant::now() < deadline, "{events:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_url_without_a_template_location_is_an_input_error() {
    let harness = Harness::new().await;
    let (completion, _) = run_at(
        &harness,
        json!([{ "id": "x", "action": "fetch:template", "input": { "url": "./skeleton" } }]),
        None,
    )
    .await;
    assert_eq!(
        completion["error"],
        json!({
            "name": "InputError",
            "message": "Failed to fetch, template location could not be determined and the fetch URL is relative, ./skeleton"
        })
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_copied_as_links() {
    let harness = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    let skeleton = dir.path().join("skeleton");
    std::fs::create_dir_all(skeleton.join("sub")).unwrap();
    std::fs::write(skeleton.join("sub/real.txt"), "${{ values.name }}").unwrap();
    std::os::unix::fs::symlink("sub/real.txt", skeleton.join("${{ values.name }}-link")).unwrap();
    std::os::unix::fs::symlink("missing.txt", skeleton.join("broken")).unwrap();
    let (completion, workspace) = run_at(
        &harness,
        json!([
            { "id": "t", "action": "fetch:template", "input": { "url": "./skeleton", "targetPath": "t", "values": { "name": "svc" } } },
            { "id": "p", "action": "fetch:plain", "input": { "url": "./skeleton", "targetPath": "p" } }
        ]),
        Some(format!("file://{}/template.yaml", dir.path().display())),
    )
    .await;
    assert!(completion["error"].is_null(), "{completion:#?}");
    for (link, target) in [
        ("t/svc-link", "sub/real.txt"),
        ("t/broken", "missing.txt"),
        ("p/${{ values.name }}-link", "sub/real.txt"),
        ("p/broken", "missing.txt"),
    ] {
        assert_eq!(
            std::fs::read_link(workspace.join(link)).unwrap(),
            PathBuf::from(target),
            "{link}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(workspace.join("t/svc-link")).unwrap(),
        "svc"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_renders_paths_and_contents_and_copies_binaries() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([{ "id": "t", "action": "fetch:template", "input": {
                "url": "./skeleton",
                "targetPath": "./target",
                "values": { "name": "${{ parameters.name }}", "count": 2 }
            } }]),
            json!({ "name": "svc" }),
            &[
                (
                    "skeleton/${{ values.name }}/README.md",
                    "# ${{ values.name }} x${{ values.count }}\n",
                ),
                (
                    "skeleton/.${{ values.name }}rc",
                    "${{ values.name | upper }}",
                ),
                ("skeleton/static.txt", "static"),
                ("skeleton/bin.dat", "${{ values.name }}\0binary"),
            ],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("target/svc/README.md"), "# svc x2\n");
    assert_eq!(run.read("target/.svcrc"), "SVC");
    assert_eq!(run.read("target/static.txt"), "static");
    assert_eq!(run.read("target/bin.dat"), "${{ values.name }}\0binary");
    let messages = run.messages();
    for expected in [
        "Fetching template content from remote URL",
        "Listing files and directories in template",
        r#"Processing 5 template files/directories with input values {"count":2,"name":"svc"}"#,
        "Writing directory ${{ values.name }}/ to template output path.",
        "Writing file ${{ values.name }}/README.md to template output path with mode 33188.",
        "Copying file binary or symbolic link at bin.dat, to template output path.",
        "Template result written to /workspace/target",
    ] {
        assert!(
            messages.contains(&info(expected)),
            "{expected}: {messages:#?}"
        );
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_skips_conditional_paths() {
    let harness = Harness::new().await;
    let files = [
        ("skeleton/${{ 'docs' if values.withDocs }}/index.md", "docs"),
        (
            "skeleton/{% if values.withDocs %}mkdocs.yml{% endif %}",
            "site",
        ),
        ("skeleton/keep.txt", "kept"),
    ];
    let step = |with_docs: bool| json!([{ "id": "t", "action": "fetch:template", "input": { "url": "./skeleton", "values": { "withDocs": with_docs } } }]);
    let run = harness.run(step(false), json!({}), &files).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("keep.txt"), "kept");
    assert!(!run.workspace.join("docs").exists());
    assert!(!run.workspace.join("index.md").exists());
    assert!(!run.workspace.join("mkdocs.yml").exists());

    let run = harness.run(step(true), json!({}), &files).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("docs/index.md"), "docs");
    assert_eq!(run.read("mkdocs.yml"), "site");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_copies_entries_matching_copy_without_templating_raw() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([{ "id": "t", "action": "fetch:template", "input": {
                "url": "./skeleton",
                "values": { "name": "svc" },
                "copyWithoutTemplating": ["raw/**", "*.tpl"],
                "copyWithoutRender": ["ignored/**"]
            } }]),
            json!({}),
            &[
                ("skeleton/raw/${{ values.name }}.txt", "${{ values.name }}"),
                ("skeleton/x.tpl", "${{ values.name }}"),
                ("skeleton/sub/x.tpl", "${{ values.name }}"),
                ("skeleton/ignored/y.txt", "${{ values.name }}"),
            ],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("raw/svc.txt"), "${{ values.name }}");
    assert_eq!(run.read("x.tpl"), "${{ values.name }}");
    assert_eq!(run.read("sub/x.tpl"), "svc");
    assert_eq!(
        run.read("ignored/y.txt"),
        "svc",
        "copyWithoutRender is accepted and ignored"
    );
    let messages = run.messages();
    assert!(
        messages.contains(&info(
            "Copying file/directory raw/${{ values.name }}.txt without processing."
        )),
        "{messages:#?}"
    );
    assert!(!messages.contains(&info(
        "Copying file/directory sub/x.tpl without processing."
    )));
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_cookiecutter_compat_uses_double_braces_and_jsonify() {
    let harness = Harness::new().await;
    let run = harness
        .run(
            json!([{ "id": "t", "action": "fetch:template", "input": {
                "url": "./skeleton",
                "values": { "name": "svc", "list": [1, 2] },
                "cookiecutterCompat": true
            } }]),
            json!({}),
            &[(
                "skeleton/{{ cookiecutter.name }}.json",
                "{{ cookiecutter.list | jsonify }} ${{ values.name }}",
            )],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("svc.json"), "[1,2] $");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_file_extension_renders_only_marked_files() {
    let harness = Harness::new().await;
    let files = [
        ("skeleton/app.py.njk", "name = '${{ values.name }}'"),
        ("skeleton/${{ values.name }}.js", "${{ untouched }}"),
        ("skeleton/other.tmpl", "${{ values.name }}"),
    ];
    let run = harness
        .run(
            json!([
                { "id": "a", "action": "fetch:template", "input": { "url": "./skeleton", "targetPath": "a", "values": { "name": "svc" }, "templateFileExtension": true } },
                { "id": "b", "action": "fetch:template", "input": { "url": "./skeleton", "targetPath": "b", "values": { "name": "svc" }, "templateFileExtension": "tmpl" } }
            ]),
            json!({}),
            &files,
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("a/app.py"), "name = 'svc'");
    assert_eq!(run.read("a/svc.js"), "${{ untouched }}");
    assert_eq!(run.read("a/other.tmpl"), "${{ values.name }}");
    assert_eq!(run.read("b/other"), "svc");
    assert_eq!(run.read("b/app.py.njk"), "name = '${{ values.name }}'");

    for incompatible in [
        json!({ "cookiecutterCompat": true }),
        json!({ "copyWithoutTemplating": ["x"] }),
        json!({ "copyWithoutTemplating": [] }),
    ] {
        let mut input = json!({ "url": "./skeleton", "templateFileExtension": ".njk" });
        input
            .as_object_mut()
            .unwrap()
            .extend(incompatible.as_object().unwrap().clone());
        let run = harness
            .run(
                json!([{ "id": "x", "action": "fetch:template", "input": input }]),
                json!({}),
                &files,
            )
            .await;
        assert_eq!(
            run.completion["error"],
            json!({
                "name": "InputError",
                "message": "Fetch action input extension incompatible with copyWithoutTemplating and cookiecutterCompat"
            }),
            "{incompatible}"
        );
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_keeps_existing_files_unless_replace_is_set() {
    let harness = Harness::new().await;
    let files = [
        ("existing.txt", "old"),
        ("skeleton/a.txt", "new ${{ values.v }}"),
        ("skeleton/b.txt", "b ${{ values.v }}"),
    ];
    let steps = |replace: Json| {
        json!([
            { "id": "seed", "action": "fetch:plain", "input": { "url": "./existing.txt", "targetPath": "target/a.txt" } },
            { "id": "t", "action": "fetch:template", "input": { "url": "./skeleton", "targetPath": "target", "values": { "v": 1 }, "replace": replace } }
        ])
    };
    let run = harness.run(steps(json!(false)), json!({}), &files).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("target/a.txt"), "old");
    assert_eq!(run.read("target/b.txt"), "b 1");

    let run = harness.run(steps(json!(true)), json!({}), &files).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("target/a.txt"), "new 1");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_file_renders_one_file_and_keeps_an_existing_one_unless_replace() {
    let harness = Harness::new().await;
    let files = [
        ("existing.txt", "old"),
        (
            "skeleton.txt",
            "Hello ${{ values.name }}{% if values.loud %}!{% endif %}\n",
        ),
        ("cookie.txt", "{{ cookiecutter.name }}"),
    ];
    let run = harness
        .run(
            json!([
                { "id": "t", "action": "fetch:template:file", "input": { "url": "./skeleton.txt", "targetPath": "./target/skeleton.txt", "values": { "name": "svc", "loud": true } } },
                { "id": "c", "action": "fetch:template:file", "input": { "url": "cookie.txt", "targetPath": "cookie.txt", "values": { "name": "svc" }, "cookiecutterCompat": true } }
            ]),
            json!({}),
            &files,
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("target/skeleton.txt"), "Hello svc!\n");
    assert_eq!(run.read("cookie.txt"), "svc");
    let messages = run.messages();
    for expected in [
        "Fetching template file content from remote URL",
        r#"Processing template file with input values {"loud":true,"name":"svc"}"#,
        "Template file has been written to /workspace/target/skeleton.txt",
    ] {
        assert!(
            messages.contains(&info(expected)),
            "{expected}: {messages:#?}"
        );
    }

    let steps = |replace: bool| {
        json!([
            { "id": "seed", "action": "fetch:plain:file", "input": { "url": "./existing.txt", "targetPath": "out.txt" } },
            { "id": "t", "action": "fetch:template:file", "input": { "url": "./skeleton.txt", "targetPath": "out.txt", "values": { "name": "svc" }, "replace": replace } }
        ])
    };
    let run = harness.run(steps(false), json!({}), &files).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("out.txt"), "old");
    assert!(
        run.messages().contains(&info(
            "File out.txt already exists in workspace, not replacing."
        )),
        "{:#?}",
        run.messages()
    );
    let run = harness.run(steps(true), json!({}), &files).await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("out.txt"), "Hello svc\n");
    harness.finish().await;
}

/// A loopback HTTP server that answers one request with `body` and hands back the
/// request it received.
async fn serve_once(body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = stream.read(&mut buffer).await.unwrap();
            if read == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        stream.shutdown().await.ok();
        String::from_utf8_lossy(&request).into_owned()
    });
    (base, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_actions_download_over_http_when_granted() {
    let harness = Harness::with_grants(&Grants {
        outbound_http: vec!["http://127.0.0.1:*".into()],
        ..Grants::default()
    })
    .await;

    let (base, server) = serve_once("plain ${{ values.name }}").await;
    let run = harness
        .run(
            json!([{ "id": "f", "action": "fetch:plain:file", "input": { "url": format!("{base}/files/a.txt"), "targetPath": "a.txt", "token": "t0ken" } }]),
            json!({}),
            &[],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("a.txt"), "plain ${{ values.name }}");
    let request = server.await.unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with("get /files/a.txt http/1.1"),
        "{request}"
    );
    assert!(request.contains("authorization: bearer t0ken"), "{request}");

    let (base, server) = serve_once("Hello ${{ values.name }}").await;
    let run = harness
        .run(
            json!([{ "id": "t", "action": "fetch:template:file", "input": { "url": format!("{base}/t.txt"), "targetPath": "t.txt", "values": { "name": "svc" } } }]),
            json!({}),
            &[],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    assert_eq!(run.read("t.txt"), "Hello svc");
    assert!(
        !server
            .await
            .unwrap()
            .to_ascii_lowercase()
            .contains("authorization")
    );

    // A relative URL resolves against a template location on an HTTP server.
    let (base, server) = serve_once("from ${{ values.where }}").await;
    let (completion, workspace) = run_at(
        &harness,
        json!([{ "id": "t", "action": "fetch:template:file", "input": { "url": "../shared/t.txt", "targetPath": "t.txt", "values": { "where": "http" } } }]),
        Some(format!("{base}/templates/web/template.yaml")),
    )
    .await;
    assert!(completion["error"].is_null(), "{completion:#?}");
    assert_eq!(
        std::fs::read_to_string(workspace.join("t.txt")).unwrap(),
        "from http"
    );
    let request = server.await.unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with("get /templates/shared/t.txt http/1.1"),
        "{request}"
    );

    let (completion, _) = run_at(
        &harness,
        json!([{ "id": "t", "action": "fetch:plain:file", "input": { "url": "./t.txt", "targetPath": "t.txt" } }]),
        Some("gitlab:group/project".to_owned()),
    )
    .await;
    assert_eq!(
        completion["error"],
        json!({ "name": "InputError", "message": "No integration found for location gitlab:group/project" })
    );

    for action in ["fetch:plain", "fetch:template"] {
        let run = harness
            .run(
                json!([{ "id": "d", "action": action, "input": { "url": "http://127.0.0.1:9/skeleton" } }]),
                json!({}),
                &[],
            )
            .await;
        assert!(
            run.error()
                .unwrap_or_default()
                .starts_with("fetching a directory over HTTP is not supported yet"),
            "{action}: {:?}",
            run.error()
        );
    }
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_is_denied_without_a_grant() {
    let harness = Harness::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/a.txt", listener.local_addr().unwrap());
    for (action, input) in [
        (
            "fetch:plain:file",
            json!({ "url": url, "targetPath": "a.txt" }),
        ),
        (
            "fetch:template:file",
            json!({ "url": url, "targetPath": "a.txt" }),
        ),
    ] {
        let run = harness
            .run(
                json!([{ "id": "f", "action": action, "input": input }]),
                json!({}),
                &[],
            )
            .await;
        // The plugin acted on the refusal with Backstage's words (issue 20, item 1);
        // the host's denial is in its log.
        let error = run.error().unwrap_or_default();
        assert!(
            error.starts_with(&format!("Reading from '{url}' is not allowed")),
            "{action}: {error}"
        );
        assert_eq!(error_name(&run), "NotAllowedError");
        assert!(!run.workspace.join("a.txt").exists());
    }
    harness.finish().await;
}

/// Text only a file outside every workspace holds.
const MARKER: &str = "marker-outside-the-workspace-5d1e";

/// A template directory whose skeleton holds what a hostile template plants: a link
/// climbing out of the workspace to a file holding [`MARKER`], a link climbing out to a
/// directory (holding it too), and a link to a fifo outside. All relative, since the
/// sandbox refuses to read an absolute link target.
fn planted_skeleton() -> (tempfile::TempDir, tempfile::TempDir) {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), MARKER).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(outside.path().join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let climb = |to: &str| {
        format!(
            "{}{}/{to}",
            "../".repeat(24),
            outside.path().display().to_string().trim_start_matches('/')
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let skeleton = dir.path().join("skeleton");
    std::fs::create_dir_all(&skeleton).unwrap();
    std::fs::write(dir.path().join("template.yaml"), "kind: Template").unwrap();
    std::fs::write(skeleton.join("README.md"), "${{ values.name }}").unwrap();
    std::os::unix::fs::symlink(climb("secret.txt"), skeleton.join("passwd")).unwrap();
    std::os::unix::fs::symlink(climb(""), skeleton.join("outside")).unwrap();
    std::os::unix::fs::symlink(climb("pipe"), skeleton.join("pipe")).unwrap();
    (dir, outside)
}

/// Issue 17: a dry run reads the workspace without following links. Links planted by a
/// template come back as links (their target text as content), nothing is read through
/// them, and a fifo in the workspace is left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_returns_planted_links_as_links_and_nothing_from_outside() {
    let harness = Harness::new().await;
    let (dir, _outside) = planted_skeleton();
    let steps = json!([
        { "id": "t", "action": "fetch:template", "input": { "url": "./skeleton", "targetPath": "a", "values": { "name": "svc" } } }
    ]);
    let request = |steps: &Json, execute: bool| LocalRunRequest {
        template: template(steps.clone()),
        values: json!({}),
        secrets: Default::default(),
        files: TemplateFiles::File(dir.path().join("template.yaml")),
        user: None,
        execute,
        events: None,
        cancel: Default::default(),
    };
    let result = harness
        .engine
        .dry_run(request(&steps, false))
        .await
        .unwrap();
    let listed: Vec<(&str, String, bool)> = result
        .directory_contents
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                String::from_utf8_lossy(&f.content).into_owned(),
                f.symlink,
            )
        })
        .collect();
    let target = |name: &str| {
        std::fs::read_link(dir.path().join("skeleton").join(name))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(
        listed,
        [
            ("a/README.md", "svc".to_owned(), false),
            ("a/outside", target("outside"), true),
            ("a/passwd", target("passwd"), true),
            ("a/pipe", target("pipe"), true),
        ]
    );
    assert!(!format!("{listed:?}").contains(MARKER));

    // A fifo in the workspace itself (no action makes one; the test does, while a step
    // waits) is left out too.
    let mut steps = steps;
    steps
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "w", "action": "debug:wait", "input": { "milliseconds": 1500 } }));
    // The run's workspace is in the working directory, or in memory in a private
    // directory of this process (`/dev/shm/scaffolder-runs-*`, shared by this binary's
    // tests): the one whose README holds this run's name.
    let name = format!("fifo-run-{}", std::process::id());
    steps[0]["input"]["values"]["name"] = json!(name);
    let run = tokio::spawn({
        let engine = harness.engine.clone();
        let request = request(&steps, true);
        async move { engine.dry_run(request).await }
    });
    let roots = || {
        let memory = std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("scaffolder-runs-"));
        std::iter::once(harness.workdir.path().to_owned()).chain(memory)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let readme = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the run's workspace was not found"
        );
        let found = roots()
            .flat_map(|root| std::fs::read_dir(root).into_iter().flatten().flatten())
            .map(|e| e.path().join("a/README.md"))
            .find(|p| std::fs::read_to_string(p).is_ok_and(|text| text == name));
        if let Some(found) = found {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let status = std::process::Command::new("mkfifo")
        .arg(readme.with_file_name("fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    let result = run.await.unwrap().unwrap();
    let paths: Vec<&str> = result
        .directory_contents
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["a/README.md", "a/outside", "a/passwd", "a/pipe"]);
    harness.finish().await;
}
