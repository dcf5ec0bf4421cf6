//! Where a run's events go: the task store (persisted first, then announced on the
//! [`EventBus`] so open streams send them at once) or, in a dry run, memory.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::broadcast;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use scaffolder_store::{EventRecord, Lease, Store, StoreError, TaskState, TaskStatus};

use crate::worker::Hold;
use crate::workspace_store::{Manifest, WorkspaceStore, WorkspaceStoreError};

/// Announces "task X has new events" inside this process, with the events as they were
/// stored when the announcer has them; streams send those without reading them back, and
/// read the store otherwise. Other replicas' events are announced from the store's
/// notifications (`fan_out.rs`) by id only, and streams also read the store now and then
/// (notifications can be lost, and SQLite has none).
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Announcement>,
}

/// Events of one task were persisted (or removed, by a retry).
#[derive(Debug, Clone)]
pub struct Announcement {
    /// Empty for every task (the store's notifications were lost).
    pub task_id: Arc<str>,
    /// The events just persisted, in id order, exactly as stored; empty when readers
    /// should read the store instead (which events changed is not known here).
    pub events: Arc<[EventRecord]>,
    /// From the store's notifications (another replica's events, or this process's
    /// heard again): the task has a stored event with this id, not carried in `events`.
    /// A reader that has sent it, or read past it, need not read the store.
    pub stored_event: Option<i64>,
}

impl Announcement {
    /// Whether readers of this task's events should look at it.
    pub fn concerns(&self, task_id: &str) -> bool {
        self.task_id.is_empty() || *self.task_id == *task_id
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }

    /// Receives every announcement from now on. A lagging receiver sees
    /// `RecvError::Lagged` and should read the store.
    pub fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.sender.subscribe()
    }

    /// Says the task's events changed; readers read the store.
    pub fn publish(&self, task_id: &str) {
        self.send(task_id, Vec::new());
    }

    /// Announces events that were just persisted.
    pub fn publish_events(&self, task_id: &str, events: Vec<EventRecord>) {
        if !events.is_empty() {
            self.send(task_id, events);
        }
    }

    /// Says the store has an event of the task with this id (and maybe earlier ones)
    /// that this process did not announce itself, or announced already.
    pub fn publish_stored(&self, task_id: &str, event_id: i64) {
        self.announce(task_id, Vec::new(), Some(event_id));
    }

    /// Says any task's events may have changed unannounced; every reader reads the store.
    pub fn publish_everywhere(&self) {
        self.announce("", Vec::new(), None);
    }

    fn send(&self, task_id: &str, events: Vec<EventRecord>) {
        self.announce(task_id, events, None);
    }

    fn announce(&self, task_id: &str, events: Vec<EventRecord>, stored_event: Option<i64>) {
        // No receivers is fine: nobody is streaming.
        let _ = self.sender.send(Announcement {
            task_id: task_id.into(),
            events: events.into(),
            stored_event,
        });
    }
}

/// The side effects of a run other than files: events, saved step outputs, checkpoints
/// and added secrets. Tasks record them in the store; dry runs in memory.
#[async_trait::async_trait]
pub(crate) trait Journal: Send + Sync {
    /// Records `log` events with these bodies, in order, and with `save_state` the
    /// completed steps' outputs ([`Journal::step_completed`]) in the same write (a run's
    /// writer sends what queued while it wrote the last batch: `step_log.rs`).
    async fn record(&self, bodies: Vec<Json>, save_state: bool);
    /// Adds a completed step's output to the outputs a resumed task skips the steps of
    /// (for a task, after saving its workspace, when workspaces are saved), to be saved
    /// by the next [`Journal::record`] with `save_state`. An error fails the step.
    async fn step_completed(&self, step_id: &str, output: &Json) -> Result<(), String>;
    async fn checkpoint(&self, step_id: &str, key: &str) -> Result<Option<Json>, String>;
    async fn set_checkpoint(&self, step_id: &str, key: &str, value: &Json) -> Result<(), String>;
    async fn add_secret(&self, name: &str, value: &str) -> Result<(), String>;
    /// Whether the run may still act for its task ([`scaffolder_runtime::StepHost::holds_task`]).
    fn holds_task(&self) -> bool {
        true
    }
    /// Whether the run may act for its task now, asking the store when nothing but the
    /// clock says otherwise (checked before each step acts).
    async fn confirm_hold(&self) -> bool {
        true
    }
}

/// The journal of a real task: every write names the run's [`Lease`], so a run that lost
/// its task writes nothing more.
pub(crate) struct TaskJournal {
    pub store: Store,
    pub bus: EventBus,
    pub lease: Lease,
    /// Cancelled when a write finds the lease lost (the task was recovered by another
    /// replica, claimed again or ended): the worker then drops the run at once.
    pub lost: CancellationToken,
    /// The task's saved progress, as loaded when the run started. The run is its only
    /// writer: completed steps are written in one statement, each checkpoint in its own
    /// row.
    pub state: tokio::sync::Mutex<TaskState>,
    /// Where the workspace is saved after each completed step and at each checkpoint,
    /// so a replica taking the task over finds its files (`scaffolder.workspaceStore`).
    pub saved_workspace: Option<SavedWorkspace>,
    /// Until when the run may act without news from the store; the heartbeat loop
    /// renews it.
    pub hold: Hold,
}

/// A run's workspace and the store it is saved to.
pub(crate) struct SavedWorkspace {
    pub store: WorkspaceStore,
    pub dir: PathBuf,
    /// The manifest of the last save or restore: the next save uploads only what changed.
    pub last: tokio::sync::Mutex<Option<Manifest>>,
}

impl SavedWorkspace {
    pub fn new(store: WorkspaceStore, dir: PathBuf) -> Self {
        Self {
            store,
            dir,
            last: tokio::sync::Mutex::new(None),
        }
    }
}

/// An error of a write of a run, as [`TaskJournal::persist`] sees it.
trait RunWriteError: std::fmt::Display {
    /// The run no longer holds its task.
    fn lease_lost(&self) -> bool;
    /// Trying again may succeed.
    fn transient(&self) -> bool;
}

impl RunWriteError for StoreError {
    fn lease_lost(&self) -> bool {
        matches!(self, StoreError::LeaseLost { .. })
    }

    fn transient(&self) -> bool {
        self.is_transient()
    }
}

impl RunWriteError for WorkspaceStoreError {
    fn lease_lost(&self) -> bool {
        self.is_lease_lost()
    }

    fn transient(&self) -> bool {
        matches!(self, WorkspaceStoreError::Store(err) if err.is_transient())
    }
}

/// How long a write that failed for a passing reason (a dropped connection, a busy
/// database) waits before its first retry, and at most between retries.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(5);

impl TaskJournal {
    /// Runs a store write of the run until it succeeds: a write that fails for a passing
    /// reason is retried with backoff (the run waits meanwhile: nothing is dropped), for
    /// as long as the run holds its task. An error when the write cannot be done: the
    /// lease is lost (the run is then stopped) or the error is not one that passes.
    async fn persist<T, E, F>(&self, what: &str, write: impl Fn() -> F) -> Result<T, E>
    where
        E: RunWriteError,
        F: Future<Output = Result<T, E>>,
    {
        let mut wait = FIRST_RETRY;
        loop {
            let err = match write().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if err.lease_lost() {
                tracing::warn!(task_id = %self.lease.task_id, "{err}; stopping this run");
                self.lost.cancel();
                return Err(err);
            }
            if !err.transient() {
                tracing::error!(task_id = %self.lease.task_id, "could not record {what}: {err}");
                return Err(err);
            }
            tracing::warn!(task_id = %self.lease.task_id, "could not record {what}, retrying in {wait:?}: {err}");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.lost.cancelled() => return Err(err),
            }
            wait = (wait * 2).min(MAX_RETRY);
        }
    }

    /// Makes the workspace what the last save left, for a run that resumes a task (a
    /// takeover, or a retry on any replica). Nothing happens without a workspace store, or
    /// when nothing was saved.
    pub async fn restore_workspace(&self) -> Result<(), String> {
        let Some(saved) = &self.saved_workspace else {
            return Ok(());
        };
        let restore = || saved.store.restore(&self.lease.task_id, &saved.dir);
        let manifest = self
            .persist("the saved workspace", restore)
            .await
            .map_err(|err| format!("could not restore the task workspace: {err}"))?;
        if let Some(manifest) = &manifest {
            tracing::info!(
                entries = manifest.entries.len(),
                bytes = manifest.bytes(),
                "workspace restored from the workspace store"
            );
        }
        *saved.last.lock().await = manifest;
        Ok(())
    }

    /// Saves the workspace for a replica that may take the task over (uploading what
    /// changed since the last save).
    async fn save_workspace(&self) -> Result<(), String> {
        let Some(saved) = &self.saved_workspace else {
            return Ok(());
        };
        let mut last = saved.last.lock().await;
        let save = || saved.store.save(&self.lease, &saved.dir, last.as_ref());
        let manifest = self
            .persist("the task workspace", save)
            .await
            .map_err(|err| format!("could not save the task workspace: {err}"))?;
        *last = Some(manifest);
        Ok(())
    }

    /// Removes the saved workspace of a task that completed.
    pub async fn remove_saved_workspace(&self) {
        if let Some(saved) = &self.saved_workspace
            && let Err(err) = saved.store.remove(&self.lease.task_id).await
        {
            tracing::warn!("could not remove the saved workspace: {err}");
        }
    }

    /// Ends the task with its `completion` event, and announces it.
    pub async fn complete(&self, status: TaskStatus, body: &Json) -> Result<(), StoreError> {
        let write = || self.store.complete_task(&self.lease, status, body);
        let event = self.persist("the task's completion", write).await?;
        self.bus.publish_events(&self.lease.task_id, vec![event]);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Journal for TaskJournal {
    async fn record(&self, bodies: Vec<Json>, save_state: bool) {
        let events = if save_state {
            // Held through the write, as no action runs before it ends (the next one
            // waits for it: `RunLog::state_saved`); no copy of every output per step.
            let state = self.state.lock().await;
            let write = || {
                self.store
                    .write_state_and_log_events(&self.lease, &state, &bodies)
            };
            let written = self.persist("the step's output", write).await;
            if let Err(err) = &written
                && !err.lease_lost()
            {
                tracing::error!(task_id = %self.lease.task_id, "a resumed task would run the completed step again");
            }
            written
        } else {
            let write = || self.store.append_log_events(&self.lease, &bodies);
            self.persist("log events", write).await
        };
        if let Ok(events) = events {
            self.bus.publish_events(&self.lease.task_id, events);
        }
    }

    async fn step_completed(&self, step_id: &str, output: &Json) -> Result<(), String> {
        // Files first: a step recorded as completed must find its files after a takeover.
        self.save_workspace().await?;
        self.state.lock().await.complete_step(step_id, output);
        Ok(())
    }

    async fn checkpoint(&self, step_id: &str, key: &str) -> Result<Option<Json>, String> {
        Ok(self.state.lock().await.checkpoint(step_id, key).cloned())
    }

    async fn set_checkpoint(&self, step_id: &str, key: &str, value: &Json) -> Result<(), String> {
        let mut state = self.state.lock().await;
        let write = || self.store.set_checkpoint(&self.lease, step_id, key, value);
        self.persist("a checkpoint", write)
            .await
            .map_err(|e| e.to_string())?;
        state.set_checkpoint(step_id, key, value.clone());
        drop(state);
        // A resumed step skips the work its checkpoints record: the files that work
        // wrote must be there too.
        self.save_workspace().await
    }

    fn holds_task(&self) -> bool {
        !self.lost.is_cancelled() && !self.hold.expired()
    }

    async fn confirm_hold(&self) -> bool {
        if self.lost.is_cancelled() {
            return false;
        }
        if !self.hold.expired() {
            return true;
        }
        // The run stalled past its hold (a paused process) and no write has told it yet
        // whether it lost the task: a heartbeat tells, and renews the hold when recorded
        // (no other replica takes a task whose heartbeat is fresh).
        match self.hold.beat(&self.store, &self.lease, &self.lost).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(task_id = %self.lease.task_id, "the run's hold expired and the heartbeat failed: {err}");
                false
            }
        }
    }

    async fn add_secret(&self, name: &str, value: &str) -> Result<(), String> {
        let write = || self.store.add_secret(&self.lease, name, value);
        self.persist("a secret", write)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The journal of a run without a task: events collected (and sent to an observer, when
/// there is one), nothing persisted.
#[derive(Default)]
pub(crate) struct MemoryJournal {
    events: Mutex<Vec<Json>>,
    observer: Option<UnboundedSender<Json>>,
    state: Mutex<TaskState>,
}

impl MemoryJournal {
    pub fn new(observer: Option<UnboundedSender<Json>>) -> Self {
        Self {
            observer,
            ..Self::default()
        }
    }

    /// The events recorded so far, in order; the journal keeps none.
    pub fn take_events(&self) -> Vec<Json> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait::async_trait]
impl Journal for MemoryJournal {
    async fn record(&self, bodies: Vec<Json>, _save_state: bool) {
        if let Some(observer) = &self.observer {
            for body in &bodies {
                // An observer that went away only stops watching.
                let _ = observer.send(body.clone());
            }
        }
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(bodies);
    }

    async fn step_completed(&self, _step_id: &str, _output: &Json) -> Result<(), String> {
        Ok(())
    }

    async fn checkpoint(&self, step_id: &str, key: &str) -> Result<Option<Json>, String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.checkpoint(step_id, key).cloned())
    }

    async fn set_checkpoint(&self, step_id: &str, key: &str, value: &Json) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.set_checkpoint(step_id, key, value.clone());
        Ok(())
    }

    async fn add_secret(&self, _name: &str, _value: &str) -> Result<(), String> {
        Ok(())
    }
}

/// `{ message, stepId?, status? }`, the body of a workflow `log` event.
pub(crate) fn log_body(message: String, step_id: Option<&str>, status: Option<&str>) -> Json {
    let mut body = json!({ "message": message });
    if let Some(step_id) = step_id {
        body["stepId"] = json!(step_id);
    }
    if let Some(status) = status {
        body["status"] = json!(status);
    }
    body
}
