//! Every template in `examples/`, through `POST /v2/tasks` and `POST /v2/dry-run` with the
//! built-in plugins: the files produced, the outputs, the event sequence; and a dry run
//! must produce the same files as the real run.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{Options, TestServer, step_statuses};
use scaffolder_api::auth::{AuthConfig, StaticToken};
use scaffolder_store::Backend;
use scaffolder_test_artifacts::backstage::{Backstage, serve_catalog_info};
use serde_json::{Value as Json, json};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

async fn server() -> TestServer {
    TestServer::start_with(
        Backend::Sqlite,
        Options {
            templates: examples(),
            builtins: true,
            ..Options::default()
        },
    )
    .await
}

/// Files under `dir` as `path → text`.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(relative, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Runs the example as a task; returns its events and workspace files.
async fn run(
    server: &TestServer,
    name: &str,
    values: Json,
) -> (Vec<Json>, BTreeMap<String, String>) {
    let id = server
        .scaffold(&format!("template:default/{name}"), values)
        .await;
    let events = server.events_until_completion(&id).await;
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["message"], "Run completed with status: completed",
        "{events:#?}"
    );
    (events, tree(&server.workdir.path().join(&id)))
}

/// The `POST /v2/dry-run` body for the example with its whole folder uploaded, with each
/// file's executable bit (which Backstage drops, and so do we).
fn dry_run_request(name: &str, values: Json) -> Json {
    use std::os::unix::fs::PermissionsExt;
    let dir = examples().join(name);
    let template = scaffolder_template::Template::from_yaml(
        &std::fs::read_to_string(dir.join("template.yaml")).unwrap(),
        None,
    )
    .unwrap();
    let uploads: Vec<Json> = tree(&dir)
        .into_iter()
        .map(|(path, text)| {
            let mode = std::fs::metadata(dir.join(&path)).unwrap().permissions().mode();
            json!({ "path": path, "base64Content": BASE64.encode(text), "executable": mode & 0o111 != 0 })
        })
        .collect();
    json!({ "template": template.entity, "values": values, "secrets": {}, "directoryContents": uploads })
}

/// Dry-runs the example; returns the response.
async fn dry_run(server: &TestServer, name: &str, values: Json) -> Json {
    let (status, body) = server
        .post("/v2/dry-run", dry_run_request(name, values))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The examples with the values their tests use.
fn example_values() -> [(&'static str, Json); 3] {
    [
        (
            "rust-service",
            json!({ "name": "billing", "owner": "group:default/payments", "docker": true, "port": 9000 }),
        ),
        ("docs-site", json!({ "name": "handbook" })),
        (
            "components",
            json!({ "system": "shop", "components": [{ "name": "cart" }, { "name": "web", "type": "website" }] }),
        ),
    ]
}

fn dry_run_files(body: &Json) -> BTreeMap<String, String> {
    body["directoryContents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let bytes = BASE64.decode(f["base64Content"].as_str().unwrap()).unwrap();
            (
                f["path"].as_str().unwrap().to_owned(),
                String::from_utf8(bytes).unwrap(),
            )
        })
        .collect()
}

fn completed_steps(events: &[Json]) -> Vec<String> {
    step_statuses(events)
        .into_iter()
        .filter(|(_, status)| status == "completed")
        .map(|(step, _)| step)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_service() {
    let server = server().await;
    let [(_, values), ..] = example_values();
    let (events, files) = run(&server, "rust-service", values.clone()).await;
    assert_eq!(
        completed_steps(&events),
        ["announce", "skeleton", "license", "catalog", "list"]
    );
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "Cargo.toml",
            "Dockerfile",
            "LICENSE",
            "README.md",
            "catalog-info.yaml",
            "src/main.rs"
        ]
    );
    assert!(files["Cargo.toml"].contains("name = \"billing\""));
    assert!(files["src/main.rs"].contains("0.0.0.0:9000"));
    assert!(files["Dockerfile"].contains("EXPOSE 9000"));
    assert!(files["LICENSE"].starts_with("Copyright the payments team."));
    assert!(
        files["catalog-info.yaml"]
            .contains("backstage.io/source-template: template:default/rust-service")
    );
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["output"],
        json!({ "text": [{ "title": "Files", "content": "6 files" }] })
    );

    // Without Docker the Dockerfile's name renders empty and the file is skipped.
    let (_, lean) = run(
        &server,
        "rust-service",
        json!({ "name": "lean", "owner": "group:default/payments", "docker": false }),
    )
    .await;
    assert!(!lean.contains_key("Dockerfile"), "{:?}", lean.keys());
    assert!(lean["README.md"].contains("Run it with `cargo run`."));

    // A dry run produces the files of a real run (its template ref is Backstage's
    // `template:default/dry-run`).
    let body = dry_run(&server, "rust-service", values).await;
    let expected: BTreeMap<String, String> = files
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.replace("template:default/rust-service", "template:default/dry-run"),
            )
        })
        .collect();
    assert_eq!(dry_run_files(&body), expected);
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_site() {
    let server = server().await;
    let (events, files) = run(&server, "docs-site", json!({ "name": "handbook" })).await;
    assert_eq!(
        completed_steps(&events),
        ["site", "static", "logo", "index", "drafts", "settle"]
    );
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "assets/theme.css",
            "docs/index.md",
            "docs/logo.svg",
            "docs/static/logo.svg",
            "docs/static/robots.txt",
            "docs/static/serve.sh",
            "mkdocs.yml"
        ]
    );
    assert!(files["mkdocs.yml"].starts_with("site_name: handbook"));
    assert!(files["assets/theme.css"].contains("${{ values.name }} stays as written"));
    assert!(files["docs/index.md"].starts_with("# handbook"));

    // The script keeps its mode through fetch:plain; the other files keep theirs.
    let id = server
        .scaffold("template:default/docs-site", json!({ "name": "modes" }))
        .await;
    server.events_until_completion(&id).await;
    let mode = |path: &str| {
        use std::os::unix::fs::PermissionsExt;
        let file = server.workdir.path().join(&id).join(path);
        std::fs::metadata(file).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode("docs/static/serve.sh"), 0o755);
    assert_eq!(mode("docs/static/robots.txt"), 0o644);

    let (events, files) = run(
        &server,
        "docs-site",
        json!({ "name": "handbook", "keepDrafts": true }),
    )
    .await;
    assert!(step_statuses(&events).contains(&("drafts".into(), "skipped".into())));
    assert!(files.contains_key("docs/drafts/ideas.md"));

    let body = dry_run(&server, "docs-site", json!({ "name": "handbook" })).await;
    let (_, real) = run(&server, "docs-site", json!({ "name": "handbook" })).await;
    assert_eq!(dry_run_files(&body), real);
    let messages: Vec<&str> = body["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["body"]["message"].as_str())
        .collect();
    assert!(messages.contains(&"Skipping because debug:wait does not support dry-run"));
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components() {
    let server = server().await;
    let [.., (_, values)] = example_values();
    let (events, files) = run(&server, "components", values.clone()).await;
    assert_eq!(
        completed_steps(&events),
        ["system", "component", "entries", "summary"]
    );
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "catalog-info.yaml",
            "components/cart/README.md",
            "components/cart/catalog-info.yaml",
            "components/web/README.md",
            "components/web/catalog-info.yaml"
        ]
    );
    assert!(files["components/web/README.md"].contains("A website of the shop system."));
    assert!(files["components/cart/catalog-info.yaml"].contains("system: shop"));
    let messages: Vec<String> = events
        .iter()
        .filter_map(|e| e["body"]["message"].as_str().map(str::to_owned))
        .collect();
    assert!(messages.iter().any(|m| m.contains("Running step each: {\"key\":\"1\",\"value\":\"[object Object]\"}")), "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Created 2 components in shop"))
    );

    let body = dry_run(&server, "components", values).await;
    let expected: BTreeMap<String, String> = files
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.replace("template:default/components", "template:default/dry-run"),
            )
        })
        .collect();
    assert_eq!(dry_run_files(&body), expected);
    server.finish().await;
}

/// The dry run of each example gives the same `directoryContents` (paths, contents and
/// executable bits) as the real Backstage 4.2.0 scaffolder of `tests/backstage/` gives
/// for the same request, and the same step outcomes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_match_backstage_4_2_0() {
    const TOKEN: &str = "examples-dry-run-token";
    let backstage = Backstage::start(None, TOKEN);
    let server = server().await;
    let client = reqwest::Client::new();
    for (name, values) in example_values() {
        let request = dry_run_request(name, values);
        let ours = dry_run(&server, name, request["values"].clone()).await;
        let response = client
            .post(format!("{}/api/scaffolder/v2/dry-run", backstage.base))
            .bearer_auth(TOKEN)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let theirs: Json = response.json().await.unwrap();
        assert_eq!(
            sorted_contents(&ours),
            sorted_contents(&theirs),
            "{name}: directoryContents differ from Backstage's"
        );
        assert_eq!(ours["steps"], theirs["steps"], "{name}: steps");
        assert_eq!(ours["output"], theirs["output"], "{name}: output");
    }
    server.finish().await;
}

fn sorted_contents(body: &Json) -> Vec<Json> {
    let mut files = body["directoryContents"].as_array().unwrap().clone();
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_existing() {
    const TOKEN: &str = "examples-register-token";
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.yaml");
    std::fs::write(
        &catalog,
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n",
    )
    .unwrap();
    let backstage = Backstage::start(Some(&catalog), TOKEN);
    let port = serve_catalog_info(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: legacy-billing\nspec:\n  type: service\n  lifecycle: production\n  owner: group:default/team-a\n",
    );
    // The caller's token is accepted here and, as backstageToken, by the catalog.
    let mut server = TestServer::start_with(
        Backend::Sqlite,
        Options {
            templates: examples(),
            builtins: true,
            settings: [("backstage.baseUrl".to_owned(), backstage.base.clone())].into(),
            auth: AuthConfig {
                static_tokens: vec![StaticToken {
                    token: TOKEN.into(),
                    subject: "platform-engineer".into(),
                }],
                ..AuthConfig::default()
            },
            ..Options::default()
        },
    )
    .await;
    server.token = Some(TOKEN.into());
    let url = format!("http://127.0.0.1:{port}/catalog-info.yaml");

    let (events, _) = run(
        &server,
        "register-existing",
        json!({ "catalogInfoUrl": url, "owner": "team-a" }),
    )
    .await;
    assert_eq!(completed_steps(&events), ["owner", "register", "announce"]);
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["output"]["links"],
        json!([{ "title": "Open in catalog", "icon": "catalog", "entityRef": "component:default/legacy-billing" }])
    );
    assert!(
        events.iter().any(|e| {
            e["body"]["message"].as_str().is_some_and(|m| {
                m.ends_with("Registered component:default/legacy-billing for team-a")
            })
        }),
        "{events:#?}"
    );

    // An unknown owner stops the task before anything is registered.
    let id = server
        .scaffold(
            "template:default/register-existing",
            json!({ "catalogInfoUrl": url, "owner": "nobody" }),
        )
        .await;
    let events = server.events_until_completion(&id).await;
    assert_eq!(
        events.last().unwrap()["body"]["error"]["message"],
        "Entity nobody not found"
    );
    let statuses = step_statuses(&events);
    assert!(
        statuses.contains(&("owner".into(), "failed".into())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("register".into(), "skipped".into())),
        "{statuses:?}"
    );
    server.finish().await;
}

/// The golden path needs real servers to run (`host/scaffolder/tests/golden_path.rs`);
/// its dry run shows what it would create without touching any: the rendered repository
/// files, and the publish, database and register steps skipped for lack of dry-run
/// support.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_path_dry_run_shows_the_repository_and_touches_nothing() {
    let server = server().await;
    let body = dry_run(
        &server,
        "golden-path",
        json!({ "name": "orders", "owner": "group:default/team-a", "remoteUrl": "https://git.example.com/team/orders.git" }),
    )
    .await;
    let files = dry_run_files(&body);
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            ".env.example",
            ".gitignore",
            "README.md",
            "catalog-info.yaml",
            "scripts/dev.sh"
        ]
    );
    assert!(files["catalog-info.yaml"].contains("name: orders\n  description: \"\"\n"));
    assert!(files[".env.example"].starts_with("DATABASE_NAME=orders\n"));
    // Uploaded files lose their execute bit, as in Backstage's dry run; the real run
    // keeps it (`host/scaffolder/tests/golden_path.rs` checks the pushed mode).
    assert!(
        body["directoryContents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["executable"] == false)
    );
    let skipped: Vec<String> = body["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["body"]["message"].as_str())
        .filter(|m| m.contains("does not support dry-run"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        skipped,
        [
            "Skipping because publish:git does not support dry-run",
            "Skipping because postgres:database:create does not support dry-run",
            "Skipping because catalog:register does not support dry-run",
        ]
    );
    server.finish().await;
}
