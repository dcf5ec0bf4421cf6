//! A scaffolder API server in the test process: a fresh database (SQLite or PostgreSQL),
//! the friendly test plugin, the fixture templates, and an HTTP client.

#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use scaffolder_api::auth::{AuthConfig, Authenticator};
use scaffolder_api::{ApiState, DirectoryTemplates};
use scaffolder_engine::{ActionRegistry, DryRunLimits, Engine, EngineConfig};
use scaffolder_runtime::{Grants, Plugin, PluginConfig, Runtime, RuntimeConfig};
use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{Backend, Store};
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;

/// One runtime for the whole test binary (its epoch thread outlives each test's executor).
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(&RuntimeConfig {
            cache_dir: Some(std::env::temp_dir().join("scaffolder-test-compile-cache")),
            max_instances: 32,
            ..RuntimeConfig::default()
        })
        .expect("creating the runtime")
    })
}

async fn friendly_plugin() -> Plugin {
    static PLUGIN: tokio::sync::OnceCell<Plugin> = tokio::sync::OnceCell::const_new();
    PLUGIN
        .get_or_init(|| async {
            let grants = Grants {
                secrets: vec!["deploy-token".into()],
                template_directory: true,
                ..Grants::default()
            };
            runtime()
                .load_file(
                    Path::new(scaffolder_test_artifacts::FRIENDLY_GUEST),
                    PluginConfig {
                        grants,
                        ..PluginConfig::default()
                    },
                )
                .await
                .expect("loading the friendly guest")
        })
        .await
        .clone()
}

/// The built-in plugins, as the binary embeds them, configured as a server with these
/// settings configures them.
async fn builtin_plugins(settings: &BTreeMap<String, String>) -> Vec<Arc<Plugin>> {
    let mut plugins = Vec::new();
    for embedded in scaffolder_builtins::PLUGINS {
        let plugin = embedded
            .load(runtime(), embedded.server_config(settings))
            .await
            .unwrap_or_else(|e| panic!("loading {}: {e}", embedded.name));
        plugins.push(Arc::new(plugin));
    }
    plugins
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

/// How a test server is set up.
pub struct Options {
    pub auth: AuthConfig,
    pub concurrent_tasks_limit: usize,
    /// Where templates are read from.
    pub templates: PathBuf,
    /// Load the built-in plugins too (else only the friendly test plugin).
    pub builtins: bool,
    /// What the built-ins read with `host.get-config` (e.g. `backstage.baseUrl`).
    pub settings: BTreeMap<String, String>,
    /// `scaffolder.dryRun`.
    pub dry_run_limits: DryRunLimits,
    /// How often idle workers and streams read the store (the engine's default if `None`).
    pub poll_interval: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auth: AuthConfig {
                allow_anonymous: true,
                ..AuthConfig::default()
            },
            concurrent_tasks_limit: 4,
            templates: fixtures(),
            builtins: false,
            settings: BTreeMap::new(),
            dry_run_limits: DryRunLimits::default(),
            poll_interval: None,
        }
    }
}

pub struct TestServer {
    /// `http://127.0.0.1:<port>/api/scaffolder`
    pub base: String,
    pub engine: Engine,
    pub store: Store,
    pub client: reqwest::Client,
    pub token: Option<String>,
    shutdown: CancellationToken,
    workers: tokio::task::JoinHandle<()>,
    /// `None` for a server started beside another, which owns the database.
    database: Option<TestDatabase>,
    pub workdir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Self {
        let database = TestDatabase::new(backend).await;
        // With the database's task secrets key, as a server is configured (required on
        // PostgreSQL).
        let store = database.connect().await.expect("connecting");
        Self::start_on(store, Some(database), options).await
    }

    /// Another replica on this server's database; finish it before this one.
    pub async fn start_beside(&self, options: Options) -> Self {
        let database = self.database();
        let store = database.connect().await.expect("connecting");
        Self::start_on(store, None, options).await
    }

    /// Waits until `n` stores listen to the database's notifications (each replica on
    /// PostgreSQL listens once its workers run), so a write is heard by all of them.
    pub async fn wait_for_listeners(&self, n: usize) {
        let database = self.database();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while database.listeners().await < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} listeners never connected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn database(&self) -> &TestDatabase {
        self.database
            .as_ref()
            .expect("a server started beside another does not own the database")
    }

    async fn start_on(store: Store, database: Option<TestDatabase>, options: Options) -> Self {
        let mut plugins = vec![Arc::new(friendly_plugin().await)];
        if options.builtins {
            plugins.extend(builtin_plugins(&options.settings).await);
        }
        let actions = ActionRegistry::new(plugins).unwrap();
        let workdir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig {
            concurrent_tasks_limit: options.concurrent_tasks_limit,
            keep_workspaces: true,
            dry_run_limits: options.dry_run_limits,
            ..EngineConfig::new(workdir.path().to_path_buf())
        };
        if let Some(poll_interval) = options.poll_interval {
            config.poll_interval = poll_interval;
        }
        let engine = Engine::new(store.clone(), actions, config);
        let shutdown = CancellationToken::new();
        let state = ApiState {
            engine: engine.clone(),
            templates: Arc::new(DirectoryTemplates::new(vec![options.templates])),
            auth: Authenticator::new(options.auth),
            shutdown: shutdown.clone(),
        };
        let app = scaffolder_api::app(state, None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        let workers = tokio::spawn({
            let engine = engine.clone();
            let shutdown = shutdown.clone();
            async move { engine.run_workers(shutdown).await }
        });
        Self {
            base: format!("http://{address}/api/scaffolder"),
            engine,
            store,
            client: reqwest::Client::new(),
            token: None,
            shutdown,
            workers,
            database,
            workdir,
        }
    }

    pub async fn finish(self) {
        self.shutdown.cancel();
        let _ = self.workers.await;
        self.store.close().await;
        if let Some(database) = self.database {
            database.finish().await;
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    /// `(status, JSON body)`; an empty body is `null`.
    pub async fn get(&self, path: &str) -> (u16, Json) {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        send(
            self.request(reqwest::Method::POST, path)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Json) {
        send(
            self.request(reqwest::Method::POST, path)
                .body(body.to_owned()),
        )
        .await
    }

    /// Creates a task and returns its id.
    pub async fn scaffold(&self, template: &str, values: Json) -> String {
        self.scaffold_with_secrets(template, values, json!({}))
            .await
    }

    pub async fn scaffold_with_secrets(
        &self,
        template: &str,
        values: Json,
        secrets: Json,
    ) -> String {
        let (status, body) = self
            .post(
                "/v2/tasks",
                json!({ "templateRef": template, "values": values, "secrets": secrets }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Reads an SSE response, which must end within a minute; returns `(event type,
    /// data)` per frame.
    pub async fn event_stream(
        &self,
        path: &str,
    ) -> (reqwest::header::HeaderMap, Vec<(String, Json)>) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let text = tokio::time::timeout(Duration::from_secs(60), response.text())
            .await
            .expect("the stream ends after the completion event")
            .unwrap();
        let frames = text
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|frame| {
                let mut lines = frame.lines();
                let event = lines
                    .next()
                    .unwrap()
                    .strip_prefix("event: ")
                    .unwrap()
                    .to_owned();
                let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                assert!(lines.next().is_none(), "one data line per frame: {frame}");
                (event, serde_json::from_str(data).unwrap())
            })
            .collect();
        (headers, frames)
    }

    /// Follows `/events` (long polling) until the completion event; returns every event.
    pub async fn events_until_completion(&self, task_id: &str) -> Vec<Json> {
        let mut events: Vec<Json> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task_id} did not complete; events so far: {events:#?}"
            );
            let after = events
                .iter()
                .filter_map(|e| e["id"].as_i64())
                .max()
                .map(|id| format!("?after={id}"))
                .unwrap_or_default();
            let (status, batch) = self
                .get(&format!("/v2/tasks/{task_id}/events{after}"))
                .await;
            assert_eq!(status, 200, "{batch}");
            for event in batch.as_array().unwrap() {
                if !events.iter().any(|e| e["id"] == event["id"]) {
                    events.push(event.clone());
                }
            }
            if events.iter().any(|e| e["type"] == "completion") {
                return events;
            }
        }
    }

    /// Waits until the task has an event matching `predicate`.
    pub async fn wait_for_event(&self, task_id: &str, predicate: impl Fn(&Json) -> bool) -> Json {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, events) = self.get(&format!("/v2/tasks/{task_id}/events")).await;
            if let Some(event) = events.as_array().unwrap().iter().find(|e| predicate(e)) {
                return event.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no matching event: {events:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Json) {
    let response = request.send().await.expect("sending the request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Json::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Json::String(text))
    };
    (status, body)
}

/// The `message`s of the log events, in order.
pub fn messages(events: &[Json]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "log")
        .map(|e| e["body"]["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `(stepId, status)` of the status events, in order.
pub fn step_statuses(events: &[Json]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| {
            Some((
                e["body"]["stepId"].as_str()?.to_owned(),
                e["body"]["status"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Runs each listed async test body on both databases, as `sqlite::<name>` and
/// `postgres::<name>`. A body is `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(scaffolder_store::Backend::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(scaffolder_store::Backend::Postgres).await; })*
        }
    };
}
