//! The local commands as a user runs them: `scaffolder dry-run` against the server's
//! `POST /v2/dry-run` for every example, value errors before anything runs, `--output`
//! and `--execute`; and a plugin's whole life from `plugin new` to a template using it.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{Server, post, repo, run_scaffolder as scaffolder, succeeds, text};
use serde_json::{Value as Json, json};

fn examples() -> PathBuf {
    repo().join("examples").canonicalize().unwrap()
}

/// Every file under `dir`, relative path → bytes.
fn tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            tree(root, &path, out);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(relative, std::fs::read(&path).unwrap());
        }
    }
}

/// `directoryContents` of a dry-run response as path → (content, executable).
fn contents(body: &Json) -> BTreeMap<String, (Vec<u8>, bool)> {
    body["directoryContents"]
        .as_array()
        .unwrap_or_else(|| panic!("no directoryContents in {body}"))
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                (
                    BASE64.decode(f["base64Content"].as_str().unwrap()).unwrap(),
                    f["executable"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

/// Each example with the values its dry run gets.
fn example_values() -> Vec<(&'static str, Json)> {
    vec![
        (
            "rust-service",
            json!({ "name": "billing", "owner": "group:default/payments", "docker": true, "port": 9000 }),
        ),
        (
            "docs-site",
            json!({ "name": "handbook", "keepDrafts": false }),
        ),
        (
            "components",
            json!({ "system": "shop", "components": [{ "name": "cart" }, { "name": "web", "type": "website" }] }),
        ),
        (
            "golden-path",
            json!({ "name": "orders", "owner": "group:default/team-a", "remoteUrl": "https://git.example.com/team/orders.git" }),
        ),
        (
            "wasm-plugin",
            json!({ "name": "hello", "sdkPath": "/opt/scaffolder/plugins/sdk" }),
        ),
        (
            "typescript-plugin",
            json!({ "name": "hello", "sdkPath": "/opt/scaffolder/plugins/sdk-ts" }),
        ),
    ]
}

/// The server's dry run of an example, its whole folder uploaded and the parameters'
/// defaults filled in, as the frontend does (the server applies none; the CLI does).
fn server_dry_run(server: &Server, name: &str, values: &Json) -> Json {
    let dir = examples().join(name);
    let text = std::fs::read_to_string(dir.join("template.yaml")).unwrap();
    let template = scaffolder_template::Template::from_yaml(&text, None).unwrap();
    let values = scaffolder_template::defaults::apply_defaults(&template.spec.parameters, values);
    let template = template.entity;
    let mut files = BTreeMap::new();
    tree(&dir, &dir, &mut files);
    let uploads: Vec<Json> = files
        .iter()
        .map(|(path, content)| json!({ "path": path, "base64Content": BASE64.encode(content) }))
        .collect();
    let (status, body) = post(
        &server.base,
        "/v2/dry-run",
        json!({ "template": template, "values": values, "secrets": {}, "directoryContents": uploads }),
    );
    assert_eq!(status, 200, "{name}: {body}");
    body
}

/// The acceptance test of `scaffolder dry-run`: for every example, the CLI creates the
/// same files with the same contents, and renders the same output, as the server's
/// `POST /v2/dry-run`. The one intended difference: the CLI reads the template's folder
/// in place, so a skeleton's executable scripts stay executable, where an upload (as in
/// Backstage) loses the bit.
#[test]
fn dry_run_of_every_example_matches_the_servers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::spawn(data.path(), &[], &[]);
    let work = tempfile::tempdir().unwrap();
    let mut executables = Vec::new();
    for (name, values) in example_values() {
        let from_server = server_dry_run(&server, name, &values);
        let values_file = work.path().join(format!("{name}.json"));
        std::fs::write(&values_file, values.to_string()).unwrap();
        let template = examples().join(name).join("template.yaml");
        let stdout = succeeds(
            work.path(),
            &[
                "dry-run",
                template.to_str().unwrap(),
                "--values",
                values_file.to_str().unwrap(),
                "--json",
                "--data-dir",
                data.path().to_str().unwrap(),
            ],
        );
        let from_cli: Json = serde_json::from_str(&stdout).unwrap();
        let (server_files, cli_files) = (contents(&from_server), contents(&from_cli));
        assert!(!cli_files.is_empty(), "{name} created no files");
        assert_eq!(
            server_files.keys().collect::<Vec<_>>(),
            cli_files.keys().collect::<Vec<_>>(),
            "{name}: the paths differ"
        );
        for (path, (content, executable)) in &cli_files {
            let (server_content, server_executable) = &server_files[path];
            assert!(
                content == server_content,
                "{name}: {path} differs\nCLI:\n{}\nserver:\n{}",
                text(content),
                text(server_content)
            );
            assert!(!server_executable, "uploads carry no mode");
            if *executable {
                executables.push(format!("{name}/{path}"));
            }
        }
        assert_eq!(
            from_cli["output"], from_server["output"],
            "{name}: outputs differ"
        );
        assert_eq!(
            from_cli["steps"], from_server["steps"],
            "{name}: steps differ"
        );
        let messages = |body: &Json| -> Vec<String> {
            body["log"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["body"]["status"].is_string())
                .map(|l| l["body"]["message"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            messages(&from_cli),
            messages(&from_server),
            "{name}: step events differ"
        );
    }
    // The skeletons' two scripts, kept executable by the CLI only.
    assert_eq!(
        executables,
        [
            "docs-site/docs/static/serve.sh",
            "golden-path/scripts/dev.sh"
        ]
    );
}

/// Values the parameters refuse are listed field by field, on every page, and nothing
/// runs: the exit code says so and the output directory is never created.
#[test]
fn bad_values_are_reported_field_by_field_before_anything_runs() {
    let work = tempfile::tempdir().unwrap();
    let template = examples().join("rust-service/template.yaml");
    let output = scaffolder(
        work.path(),
        &[
            "dry-run",
            template.to_str().unwrap(),
            "--set",
            "port=not-a-number",
            "--set",
            "docker=perhaps",
            "--output",
            "out",
        ],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("nothing was run"), "{stderr}");
    assert!(stderr.contains("values.name: is required"), "{stderr}");
    assert!(
        stderr.contains("values.port: is not of a type(s) integer (got \"not-a-number\")"),
        "{stderr}"
    );
    assert!(
        stderr.contains("values.docker: is not of a type(s) boolean"),
        "{stderr}"
    );
    assert!(!work.path().join("out").exists());

    // A template that does not parse names its line.
    std::fs::write(
        work.path().join("broken.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: [\n",
    )
    .unwrap();
    let output = scaffolder(work.path(), &["dry-run", "broken.yaml"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("broken.yaml:4:1: invalid YAML"), "{stderr}");
}

/// `scaffolder dry-run examples/docs-site/template.yaml --set name=handbook <extra>`.
fn dry_run_docs_site(dir: &Path, extra: &[&str]) -> Output {
    let template = examples().join("docs-site/template.yaml");
    let mut args = vec![
        "dry-run",
        template.to_str().unwrap(),
        "--set",
        "name=handbook",
    ];
    args.extend(extra);
    scaffolder(dir, &args)
}

/// Without `--json`: progress per step on stderr, the outputs and a file tree on stdout,
/// the files written to `--output` with their modes; `--execute` runs what a dry run skips.
#[test]
fn dry_run_shows_progress_writes_files_and_executes_on_request() {
    let work = tempfile::tempdir().unwrap();
    let output = dry_run_docs_site(work.path(), &["--output", "site"]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Dry run of template:default/docs-site: 6 steps"),
        "{stderr}"
    );
    assert!(stderr.contains("✔ Fetch the site"), "{stderr}");
    assert!(
        stderr.contains("    info: Writing file mkdocs.yml"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "↷ Let the preview settle Skipping because debug:wait does not support dry-run"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "colours on a pipe: {stderr}");
    assert!(stdout.contains("Files written to site"), "{stdout}");
    assert!(stdout.contains("serve.sh*"), "{stdout}");
    let mode = std::fs::metadata(work.path().join("site/docs/static/serve.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "serve.sh lost its execute bit");

    // A second run into the same directory would overwrite it: refused.
    let again = dry_run_docs_site(work.path(), &["--output", "site"]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("site is not empty"));

    // --execute runs debug:wait instead of skipping it.
    let executed = dry_run_docs_site(work.path(), &["--execute", "--json"]);
    assert!(executed.status.success(), "{}", text(&executed.stderr));
    let body: Json = serde_json::from_slice(&executed.stdout).unwrap();
    let messages: Vec<&str> = body["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["body"]["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"Finished step Let the preview settle"),
        "{messages:#?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("dry-run")),
        "{messages:#?}"
    );
}

/// A plugin author's path, unedited: `plugin new`, the crate's own `cargo test`,
/// `plugin build` (digest and capabilities), `plugin test` (its cases in the sandbox),
/// and a dry run of a template that uses the new action.
#[test]
fn a_new_plugin_builds_passes_its_tests_and_runs_in_a_template() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let created = succeeds(dir, &["plugin", "new", "hello", "--data-dir", data]);
    assert!(
        created.contains("Created the plugin crate hello"),
        "{created}"
    );
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        "tests/cases/greet.yaml",
        "example/template.yaml",
        ".gitignore",
    ] {
        assert!(dir.join("hello").join(file).is_file(), "{file} is missing");
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tests = Command::new(&cargo)
        .current_dir(dir.join("hello"))
        .args(["test", "--quiet"])
        .output()
        .unwrap();
    assert!(
        tests.status.success(),
        "cargo test of the new crate failed:\n{}\n{}",
        text(&tests.stdout),
        text(&tests.stderr)
    );
    assert!(
        text(&tests.stdout).contains("2 passed"),
        "{}",
        text(&tests.stdout)
    );

    let built: Json =
        serde_json::from_str(&succeeds(dir, &["plugin", "build", "hello", "--json"])).unwrap();
    assert_eq!(built["actions"][0]["id"], "hello:greet");
    assert!(
        built["digest"].as_str().unwrap().starts_with("sha256:"),
        "{built}"
    );
    let component = built["component"].as_str().unwrap().to_owned();
    assert!(Path::new(&component).is_file());

    let tested = succeeds(
        dir,
        &[
            "plugin",
            "test",
            &component,
            "--case",
            "hello/tests/cases/greet.yaml",
            "--case",
            "hello/tests/cases/unknown-input.yaml",
        ],
    );
    assert!(tested.contains("2 passed, 0 failed"), "{tested}");
    let tested = succeeds(dir, &["plugin", "test", "hello"]);
    assert!(tested.contains("2 passed, 0 failed"), "{tested}");

    // A case that does not hold fails the command and says why.
    std::fs::write(
        dir.join("wrong.yaml"),
        "action: hello:greet\ninput: { name: World }\nexpect:\n  output: { greeting: Goodbye }\n",
    )
    .unwrap();
    let failing = scaffolder(dir, &["plugin", "test", &component, "--case", "wrong.yaml"]);
    assert!(!failing.status.success());
    assert!(
        text(&failing.stdout).contains("output differs"),
        "{}",
        text(&failing.stdout)
    );

    let result: Json = serde_json::from_str(&succeeds(
        dir,
        &[
            "dry-run",
            "hello/example/template.yaml",
            "--plugin",
            &component,
            "--set",
            "who=World",
            "--json",
            "--data-dir",
            data,
        ],
    ))
    .unwrap();
    assert_eq!(result["output"]["text"][0]["content"], "Hello, World!");
    let files = contents(&result);
    assert_eq!(files["GREETING.txt"].0, b"Hello, World!\n");
}

/// Text only a file outside the workspace holds.
const MARKER: &str = "marker-outside-the-workspace-9c2b";

/// Issue 17: a template whose skeleton plants links climbing out of the workspace (to a
/// file holding [`MARKER`] and to a directory) and one staying inside. `--json` lists each
/// link with its target text and nothing read through it; `--output` writes the inside
/// link as a link and skips the others with a warning, so nothing in the output directory
/// holds the marker or points outside it. Over `scaffolder.dryRun.maxFiles` the command
/// fails naming the key.
#[test]
fn dry_run_never_follows_planted_links_and_writes_only_links_that_stay_inside() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), MARKER).unwrap();
    let climb = |to: &str| {
        format!(
            "{}{}/{to}",
            "../".repeat(24),
            outside.path().display().to_string().trim_start_matches('/')
        )
    };
    let skeleton = work.path().join("skeleton");
    std::fs::create_dir_all(&skeleton).unwrap();
    std::fs::write(skeleton.join("README.md"), "hello").unwrap();
    std::os::unix::fs::symlink(climb("secret.txt"), skeleton.join("passwd")).unwrap();
    std::os::unix::fs::symlink(climb(""), skeleton.join("outside")).unwrap();
    std::os::unix::fs::symlink("README.md", skeleton.join("readme")).unwrap();
    std::fs::write(
        work.path().join("template.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: { name: planted }\n\
         spec:\n  type: service\n  steps:\n    - id: fetch\n      action: fetch:template\n      \
         input: { url: ./skeleton, targetPath: a }\n",
    )
    .unwrap();

    let body: Json = serde_json::from_str(&succeeds(
        work.path(),
        &["dry-run", "template.yaml", "--json"],
    ))
    .unwrap();
    let listed: Vec<(String, String)> = contents(&body)
        .into_iter()
        .map(|(path, (content, _))| (path, text(&content)))
        .collect();
    assert_eq!(
        listed,
        [
            ("a/README.md".to_owned(), "hello".to_owned()),
            ("a/outside".to_owned(), climb("")),
            ("a/passwd".to_owned(), climb("secret.txt")),
            ("a/readme".to_owned(), "README.md".to_owned()),
        ]
    );

    let output = scaffolder(
        work.path(),
        &["dry-run", "template.yaml", "--output", "out"],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for (link, target) in [("a/passwd", climb("secret.txt")), ("a/outside", climb(""))] {
        assert!(
            stderr.contains(&format!(
                "warning: skipped link {link} -> {target}: it points outside the output directory"
            )),
            "{stderr}"
        );
    }
    let out = work.path().join("out");
    let mut entries = Vec::new();
    let mut pending = vec![out.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let relative = path.strip_prefix(&out).unwrap().display().to_string();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                entries.push(format!("{relative} -> {}", target.display()));
            } else {
                let content = std::fs::read(&path).unwrap();
                assert!(!text(&content).contains(MARKER), "{relative}");
                entries.push(relative);
            }
        }
    }
    entries.sort();
    assert_eq!(entries, ["a/README.md", "a/readme -> README.md"]);

    // Over a cap: a failure that names the key, and a non-zero exit.
    std::fs::write(
        work.path().join("app-config.yaml"),
        "scaffolder:\n  dryRun: { maxFiles: 3 }\n",
    )
    .unwrap();
    let output = scaffolder(
        work.path(),
        &["dry-run", "template.yaml", "--config", "app-config.yaml"],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "workspace file limit of 3 files exceeded (the operator can raise scaffolder.dryRun.maxFiles)"
        ),
        "{stderr}"
    );
}
