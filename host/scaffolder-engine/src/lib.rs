//! Runs scaffolder tasks. The [`Engine`] owns the store, the loaded actions and the
//! workers: workers claim `open` tasks, run their steps in the Wasm runtime through the
//! workflow runner, heartbeat, react to cancellation at once, and resume tasks whose
//! worker died, skipping the steps that had completed. Dry runs use the same runner
//! with events kept in memory.
//!
//! **Architecture Invariant:** every event is persisted before it is announced on the
//! [`EventBus`], and an announcement carries events only as the store returned them, so
//! what a stream sends from an announcement is what a read of the store would give.
//!
//! This crate knows nothing of HTTP: the API crate turns requests into [`Engine`] calls.

mod actions;
mod collect;
mod dry_run;
mod events;
mod failure;
mod fan_out;
mod input_check;
mod invoke;
mod redact;
mod retention;
mod run_space;
mod spec;
mod step_log;
mod uploads;
mod worker;
mod workflow;
pub mod workspace_store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use scaffolder_store::{Lease, NewTask, Store, TaskId, TaskRecord};
use scaffolder_template::{Renderer, RendererOptions, ScmIntegration};
use serde_json::{Map, Value as Json, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use actions::{ActionRegistry, DuplicateAction, PluginOrigin, RegisteredAction};
pub use collect::DryRunLimits;
pub use dry_run::{
    DryRunFile, DryRunUpload, LocalRunRequest, LocalRunResult, LocalRunner, TemplateFiles,
};
pub use events::{Announcement, EventBus};
pub use failure::Failure;
pub use input_check::check_step_input;
pub use invoke::{Invocation, InvokeError};
pub use redact::Redactor;
pub use scaffolder_store::{SpecStep, StepState, TaskSpec, TaskTemplateInfo, TaskUser};
pub use spec::task_spec;
pub use workflow::{Environment, STEP_DURATION_METRIC};
pub use workspace_store::{WorkspaceStore, WorkspaceStoreConfig, WorkspaceStoreError};

/// How the engine runs tasks.
/// How often a running task's worker records that it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Task workspaces are `<working_directory>/<task id>`.
    pub working_directory: PathBuf,
    /// Tasks run at once by this process; 0 runs none (tasks stay `open`).
    pub concurrent_tasks_limit: usize,
    pub environment: Environment,
    pub integrations: Vec<ScmIntegration>,
    /// Re-open `processing` tasks whose heartbeat is older than this; `None` turns
    /// automatic recovery off.
    pub recovery_stale_timeout: Option<Duration>,
    pub heartbeat_interval: Duration,
    /// How long shutdown waits for running tasks; the rest resume on the next start.
    pub graceful_shutdown_timeout: Duration,
    /// Keep the workspace of completed tasks too (for debugging and tests); failed
    /// tasks keep theirs, so a retry can resume, for `workspace_retention`.
    pub keep_workspaces: bool,
    /// `scaffolder.workspaceRetention`: the workspace of a task that has ended is removed
    /// once it has not been modified for this long (looked at on start and hourly).
    pub workspace_retention: Duration,
    /// `scaffolder.dryRun`: what a dry run may return.
    pub dry_run_limits: DryRunLimits,
    /// How often an idle worker and each open event stream read the store for what no
    /// notification announced: work and events of other replicas on SQLite (which has
    /// no notifications), and on PostgreSQL while its listener is down.
    pub poll_interval: Duration,
    /// `scaffolder.workspaceStore`: where workspaces are saved so that another replica
    /// can take a task over; `None` keeps them on this replica only.
    pub workspace_store: Option<WorkspaceStore>,
    /// `scaffolder.actionsRegistry.pluginId`: steps may name an action `<plugin id>:<id>`,
    /// as Backstage's scaffolder calls it through its actions registry
    /// ([`ActionRegistry::answering_as`]).
    pub actions_registry_plugin_id: Option<String>,
}

impl EngineConfig {
    /// Backstage's defaults, with recovery on.
    pub fn new(working_directory: PathBuf) -> Self {
        Self {
            working_directory,
            concurrent_tasks_limit: 10,
            environment: Environment::default(),
            integrations: ScmIntegration::defaults(),
            recovery_stale_timeout: Some(Duration::from_secs(30)),
            heartbeat_interval: HEARTBEAT_INTERVAL,
            graceful_shutdown_timeout: Duration::from_secs(30),
            keep_workspaces: false,
            workspace_retention: Duration::from_secs(7 * 24 * 60 * 60),
            dry_run_limits: DryRunLimits::default(),
            poll_interval: Duration::from_secs(1),
            workspace_store: None,
            actions_registry_plugin_id: None,
        }
    }
}

/// The task engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    bus: EventBus,
    actions: RwLock<Arc<ActionRegistry>>,
    renderer: Arc<Renderer>,
    config: EngineConfig,
    /// Signalled when a task becomes `open` in this process, or the store's
    /// notifications say it did elsewhere.
    wake: Notify,
    /// The runs of tasks on this replica, by task id.
    running: Mutex<HashMap<String, worker::RunningTask>>,
    /// Dry runs' uploaded template files, kept for the next dry run of the same files.
    uploaded_templates: Arc<uploads::UploadedTemplates>,
    /// Where dry runs make their workspaces.
    run_space: Arc<run_space::RunSpace>,
}

impl Engine {
    pub fn new(store: Store, actions: ActionRegistry, config: EngineConfig) -> Self {
        let renderer = Renderer::new(RendererOptions {
            integrations: config.integrations.clone(),
            ..RendererOptions::default()
        });
        Self {
            inner: Arc::new(Inner {
                store,
                bus: EventBus::new(),
                actions: RwLock::new(Arc::new(
                    actions.answering_as(config.actions_registry_plugin_id.clone()),
                )),
                renderer: Arc::new(renderer),
                uploaded_templates: Arc::new(uploads::UploadedTemplates::new(
                    config.working_directory.clone(),
                )),
                run_space: Arc::new(run_space::RunSpace::new(
                    config.working_directory.clone(),
                    config.dry_run_limits,
                )),
                config,
                wake: Notify::new(),
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The actions tasks starting now use.
    pub fn actions(&self) -> Arc<ActionRegistry> {
        self.inner
            .actions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the actions for tasks that start from now on; running tasks keep theirs.
    pub fn set_actions(&self, actions: ActionRegistry) {
        let actions = actions.answering_as(self.inner.config.actions_registry_plugin_id.clone());
        *self
            .inner
            .actions
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(actions);
    }

    /// Inserts an `open` task and wakes a worker.
    pub async fn create_task(
        &self,
        spec: &TaskSpec,
        created_by: Option<String>,
        secrets: Map<String, Json>,
    ) -> scaffolder_store::Result<TaskRecord> {
        let task = self
            .inner
            .store
            .create_task(NewTask {
                id: TaskId::random(),
                spec: spec.clone(),
                created_by,
                secrets,
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(task)
    }

    /// Cancels a task as Backstage does: a `cancelled` event naming the latest step and
    /// its secrets dropped. A step running in this process is stopped at once; one
    /// running in another replica within a heartbeat.
    pub async fn cancel_task(&self, task_id: &str) -> scaffolder_store::Result<()> {
        let store = &self.inner.store;
        let events = store.list_events(task_id, None).await?;
        let step_id = events
            .iter()
            .rev()
            .find_map(|e| e.body.get("stepId").cloned())
            .unwrap_or(json!(0));
        let step_text = match &step_id {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let body = json!({
            "message": format!("Step {step_text} has been cancelled."),
            "stepId": step_id,
            "status": "cancelled",
        });
        let event = store.cancel_task(task_id, &body).await?;
        self.inner.bus.publish_events(task_id, vec![event]);
        if let Some(run) = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(task_id)
        {
            run.cancel.cancel();
        }
        Ok(())
    }

    /// Re-opens an ended task with new secrets; `Conflict` when it has not ended.
    pub async fn retry_task(
        &self,
        task: &TaskRecord,
        secrets: Map<String, Json>,
    ) -> scaffolder_store::Result<()> {
        self.inner
            .store
            .retry_task(&task.id, secrets, task.spec.recover_strategy())
            .await?;
        // The retry removed events: readers read the store again.
        self.inner.bus.publish(&task.id);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Runs the workers until `shutdown` fires, then waits for running tasks up to the
    /// graceful-shutdown timeout. On PostgreSQL it also listens to the store's
    /// notifications (`fan_out.rs`), even with no worker, for the event streams.
    pub async fn run_workers(&self, shutdown: CancellationToken) {
        tokio::join!(
            fan_out::run(self.clone(), shutdown.clone()),
            worker::run(self.clone(), shutdown),
        );
    }

    pub(crate) fn renderer(&self) -> Arc<Renderer> {
        self.inner.renderer.clone()
    }

    pub(crate) fn uploaded_templates(&self) -> Arc<uploads::UploadedTemplates> {
        self.inner.uploaded_templates.clone()
    }

    pub(crate) fn run_space(&self) -> Arc<run_space::RunSpace> {
        self.inner.run_space.clone()
    }

    /// Removes what dry runs keep in memory between runs (the server stops); dry runs
    /// after this make their workspaces on disk.
    pub fn close_dry_runs(&self) {
        self.inner.run_space.close();
    }

    /// The ids of the tasks running on this replica.
    pub fn running_tasks(&self) -> Vec<String> {
        let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running.keys().cloned().collect()
    }

    /// Tracks a run of a task. An older run of the same task on this replica (its
    /// heartbeat stalled, so the task was recovered and this replica claimed it again)
    /// has lost the task: it is stopped, and waited for before the new run touches the
    /// workspace.
    async fn register_running(&self, task_id: &str, run: &worker::RunningTask) {
        let older = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task_id.to_owned(), run.clone());
        if let Some(older) = older {
            older.lost.cancel();
            older.ended.cancelled().await;
        }
    }

    /// Stops tracking the run of this claim (a newer run of the task stays tracked).
    fn unregister_running(&self, lease: &Lease) {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if running
            .get(lease.task_id.as_str())
            .is_some_and(|run| run.attempt == lease.attempt)
        {
            running.remove(lease.task_id.as_str());
        }
    }
}
