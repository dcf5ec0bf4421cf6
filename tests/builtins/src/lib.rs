//! Runs built-in actions the way the server does: a template of given steps, through
//! the engine (input validation, rendering, events, dry-run rules) and the sandbox, with
//! the built-in plugins as embedded in the binary.

pub mod denials;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use scaffolder_engine::{
    ActionRegistry, DryRunUpload, Engine, EngineConfig, Environment, Failure, LocalRunRequest,
    LocalRunResult, TemplateFiles, task_spec,
};
use scaffolder_runtime::{Grants, Plugin, Runtime, RuntimeConfig};
use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{Backend, EventType, Store};
use scaffolder_template::Template;
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;

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

/// Every built-in plugin, configured as a server with `settings` configures it, plus the
/// `extra` grants.
pub async fn builtins(extra: &Grants, settings: &BTreeMap<String, String>) -> Vec<Arc<Plugin>> {
    let mut plugins = Vec::new();
    for embedded in scaffolder_builtins::PLUGINS {
        // What `scaffolder serve` gives the built-in, plus the test's extra grants.
        let mut config = embedded.server_config(settings);
        let grants = &mut config.grants;
        grants
            .outbound_http
            .extend(extra.outbound_http.iter().cloned());
        grants.secrets.extend(extra.secrets.iter().cloned());
        grants.tcp.extend(extra.tcp.iter().cloned());
        grants
            .internal_networks
            .extend(extra.internal_networks.iter().cloned());
        let plugin = embedded
            .load(runtime(), config)
            .await
            .unwrap_or_else(|e| panic!("loading {}: {e}", embedded.name));
        plugins.push(Arc::new(plugin));
    }
    plugins
}

/// An engine with the built-ins, on a fresh SQLite database, with workers running.
pub struct Harness {
    pub engine: Engine,
    store: Store,
    database: TestDatabase,
    shutdown: CancellationToken,
    workers: tokio::task::JoinHandle<()>,
    /// Task workspaces (kept after tasks end, so tests can look at them).
    pub workdir: tempfile::TempDir,
}

/// What a task did.
#[derive(Debug)]
pub struct TaskRun {
    pub task_id: String,
    /// Every event, in order, as `(type, body)`.
    pub events: Vec<(String, Json)>,
    /// The completion event's body.
    pub completion: Json,
    /// The task's workspace.
    pub workspace: PathBuf,
}

impl TaskRun {
    /// The `message`s of the log events.
    pub fn messages(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(t, _)| t == "log")
            .filter_map(|(_, b)| b["message"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn succeeded(&self) -> bool {
        self.completion["message"] == "Run completed with status: completed"
    }

    /// The failure message, when the task failed.
    pub fn error(&self) -> Option<&str> {
        self.completion["error"]["message"].as_str()
    }

    /// The output of the step `id` (the test template outputs every step's output under
    /// its id).
    pub fn step_output(&self, id: &str) -> &Json {
        &self.completion["output"][id]
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.workspace.join(path))
            .unwrap_or_else(|e| panic!("reading {path} of the workspace: {e}"))
    }
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_grants(&Grants::default()).await
    }

    pub async fn with_grants(extra: &Grants) -> Self {
        Self::with_grants_and_settings(extra, &BTreeMap::new()).await
    }

    /// Built-ins with `extra` grants and `settings` as what `host.get-config` answers.
    pub async fn with_grants_and_settings(
        extra: &Grants,
        settings: &BTreeMap<String, String>,
    ) -> Self {
        Self::configured(extra, settings, Environment::default()).await
    }

    /// [`Self::with_grants_and_settings`] with the operator's
    /// `scaffolder.defaultEnvironment`.
    pub async fn configured(
        extra: &Grants,
        settings: &BTreeMap<String, String>,
        environment: Environment,
    ) -> Self {
        denials::record();
        let database = TestDatabase::new(Backend::Sqlite).await;
        // Task secrets encrypted, as with `scaffolder.taskSecrets.key`.
        let store = database.connect().await.expect("connecting");
        let actions =
            ActionRegistry::new(builtins(extra, settings).await).expect("unique action ids");
        let workdir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            keep_workspaces: true,
            environment,
            ..EngineConfig::new(workdir.path().to_path_buf())
        };
        let engine = Engine::new(store.clone(), actions, config);
        let shutdown = CancellationToken::new();
        let workers = tokio::spawn({
            let engine = engine.clone();
            let shutdown = shutdown.clone();
            async move { engine.run_workers(shutdown).await }
        });
        Self {
            engine,
            store,
            database,
            shutdown,
            workers,
            workdir,
        }
    }

    pub async fn finish(self) {
        self.shutdown.cancel();
        let _ = self.workers.await;
        self.store.close().await;
        self.database.finish().await;
    }

    /// Runs `steps` as a task of a template whose directory holds `files`
    /// (`(path, contents)`), with `values` as parameters and `secrets`.
    pub async fn run(&self, steps: Json, values: Json, files: &[(&str, &str)]) -> TaskRun {
        self.run_with_secrets(steps, values, files, json!({})).await
    }

    pub async fn run_with_secrets(
        &self,
        steps: Json,
        values: Json,
        files: &[(&str, &str)],
        secrets: Json,
    ) -> TaskRun {
        let template_dir = tempfile::tempdir().unwrap();
        write_files(template_dir.path(), files);
        self.run_in(steps, values, template_dir.path(), secrets)
            .await
    }

    /// Runs `steps` as a task of a template in `template_dir`.
    pub async fn run_in(
        &self,
        steps: Json,
        values: Json,
        template_dir: &Path,
        secrets: Json,
    ) -> TaskRun {
        let template = template(steps);
        let spec = task_spec(
            &template,
            values,
            None,
            Some(format!("file://{}/template.yaml", template_dir.display())),
        );
        let secrets = secrets.as_object().cloned().unwrap_or_default();
        let task = self
            .engine
            .create_task(&spec, None, secrets)
            .await
            .expect("creating the task");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let events = loop {
            let events = self.store.list_events(&task.id, None).await.unwrap();
            if events.iter().any(|e| e.event_type == EventType::Completion) {
                break events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the task did not complete: {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let completion = events.last().unwrap().body.clone();
        TaskRun {
            workspace: self.workdir.path().join(task.id.as_str()),
            task_id: task.id.to_string(),
            events: events
                .into_iter()
                .map(|e| (e.event_type.as_str().to_owned(), e.body))
                .collect(),
            completion,
        }
    }

    /// Everything the store keeps of a task, as text: its spec, state (step outputs and
    /// checkpoints), secrets and events.
    pub async fn stored_task_text(&self, task_id: &str) -> String {
        let task = self
            .store
            .get_task(task_id)
            .await
            .unwrap()
            .expect("the task exists");
        let state = self.store.task_state(task_id).await.unwrap();
        let secrets = self.store.secrets(task_id).await.unwrap();
        let events = self.store.list_events(task_id, None).await.unwrap();
        let events: Vec<&Json> = events.iter().map(|e| &e.body).collect();
        format!(
            "{}\n{state:?}\n{}\n{}",
            serde_json::to_string(&task.spec).unwrap(),
            Json::Object(secrets),
            serde_json::to_string(&events).unwrap()
        )
    }

    /// Dry-runs `steps` with `files` uploaded as the template's directory.
    pub async fn dry_run(
        &self,
        steps: Json,
        values: Json,
        files: &[(&str, &str)],
    ) -> Result<LocalRunResult, Failure> {
        self.dry_run_with_secrets(steps, values, files, json!({}))
            .await
    }

    pub async fn dry_run_with_secrets(
        &self,
        steps: Json,
        values: Json,
        files: &[(&str, &str)],
        secrets: Json,
    ) -> Result<LocalRunResult, Failure> {
        self.engine
            .dry_run(LocalRunRequest {
                template: template(steps),
                values,
                secrets: secrets.as_object().cloned().unwrap_or_default(),
                files: TemplateFiles::Uploaded(
                    files
                        .iter()
                        .map(|(path, content)| DryRunUpload {
                            path: (*path).to_owned(),
                            content: content.as_bytes().to_vec(),
                        })
                        .collect(),
                ),
                user: None,
                execute: false,
                events: None,
                cancel: Default::default(),
            })
            .await
    }
}

/// The `message`s of a dry run's log, in order.
pub fn log_messages(result: &LocalRunResult) -> Vec<&str> {
    result
        .log
        .iter()
        .filter_map(|l| l["body"]["message"].as_str())
        .collect()
}

/// A template entity with these steps, no parameters schema, and each step's output as
/// the template's output under the step's id.
pub fn template(steps: Json) -> Template {
    let output: serde_json::Map<String, Json> = steps
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|step| step["id"].as_str())
        .map(|id| {
            (
                id.to_owned(),
                json!(format!("${{{{ steps['{id}'].output }}}}")),
            )
        })
        .collect();
    Template::from_json(json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": { "name": "test", "namespace": "default" },
        "spec": { "type": "service", "steps": steps, "output": output }
    }))
    .expect("a valid test template")
}

fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// The dry run's files as `(path, text)`.
pub fn files(result: &LocalRunResult) -> Vec<(String, String)> {
    result
        .directory_contents
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                String::from_utf8_lossy(&f.content).into_owned(),
            )
        })
        .collect()
}
