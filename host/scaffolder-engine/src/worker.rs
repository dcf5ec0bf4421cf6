//! The worker loop: claim `open` tasks up to the concurrency limit, run each with a
//! heartbeat and a cancellation watch, complete it; the recovery loop that re-opens
//! tasks whose worker died; and the retention loop that removes old workspaces of ended
//! tasks (`retention.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use scaffolder_store::{ClaimedTask, EventType, Lease, Store, StoreError, TaskStatus};
use serde_json::{Value as Json, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Engine;
use crate::events::{SavedWorkspace, TaskJournal};
use crate::failure::Failure;
use crate::retention;
use crate::workflow::Run;

const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub(crate) async fn run(engine: Engine, shutdown: CancellationToken) {
    let config = engine.config().clone();
    let recovery = config
        .recovery_stale_timeout
        .map(|stale| tokio::spawn(recovery_loop(engine.clone(), stale, shutdown.clone())));
    let retention = tokio::spawn(retention::retention_loop(engine.clone(), shutdown.clone()));
    if config.concurrent_tasks_limit == 0 {
        tracing::warn!("scaffolder.concurrentTasksLimit is 0: this process runs no tasks");
        shutdown.cancelled().await;
        return;
    }
    let slots = Arc::new(Semaphore::new(config.concurrent_tasks_limit));
    let mut running = JoinSet::new();
    let mut backoff = Duration::from_secs(1);
    loop {
        while running.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        match engine.store().claim_task().await {
            Ok(Some(claim)) => {
                backoff = Duration::from_secs(1);
                running.spawn(run_task(engine.clone(), claim, permit));
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    () = engine.inner.wake.notified() => {}
                    // Tasks no notification announced (another replica's on SQLite).
                    () = tokio::time::sleep(config.poll_interval) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            Err(err) => {
                drop(permit);
                tracing::error!("could not claim a task, retrying in {backoff:?}: {err}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    if !running.is_empty() {
        tracing::info!(
            tasks = running.len(),
            "waiting up to {:?} for running tasks; the others resume on the next start",
            config.graceful_shutdown_timeout
        );
        let drain = async { while running.join_next().await.is_some() {} };
        if tokio::time::timeout(config.graceful_shutdown_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!("stopping with tasks still running; they will be recovered");
        }
    }
    if let Some(recovery) = recovery {
        recovery.abort();
    }
    retention.abort();
}

/// Re-opens tasks whose heartbeat stopped (their worker crashed or was killed), now and
/// then periodically.
async fn recovery_loop(engine: Engine, stale: Duration, shutdown: CancellationToken) {
    let every = (stale / 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        match engine
            .store()
            .recover_stale_tasks(stale.as_millis() as i64)
            .await
        {
            Ok(ids) => {
                for id in &ids {
                    tracing::warn!(task_id = %id, "recovered a task whose worker stopped; it resumes after its last completed step");
                    engine.bus().publish(id);
                }
                if !ids.is_empty() {
                    engine.inner.wake.notify_one();
                }
            }
            Err(err) => tracing::error!("task recovery failed: {err}"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn run_task(engine: Engine, claim: ClaimedTask, _slot: OwnedSemaphorePermit) {
    let lease = claim.lease.clone();
    let span = tracing::info_span!("task", task_id = %lease.task_id, attempt = lease.attempt);
    async move {
        tracing::info!("task claimed");
        let run = RunningTask::new(lease.attempt);
        // Dropped last: says the run has ended, however it ends.
        let _ended = run.ended.clone().drop_guard();
        engine.register_running(&lease.task_id, &run).await;
        let workspace = engine.config().working_directory.join(lease.task_id.as_str());
        let saved_workspace = engine
            .config()
            .workspace_store
            .clone()
            .map(|store| SavedWorkspace::new(store, workspace.clone()));
        let journal = Arc::new(TaskJournal {
            store: engine.store().clone(),
            bus: engine.bus().clone(),
            lease: lease.clone(),
            lost: run.lost.clone(),
            state: tokio::sync::Mutex::new(claim.state.clone()),
            saved_workspace,
            hold: Hold::from_claim(&engine),
        });
        let heartbeat = tokio::spawn(heartbeat_loop(
            engine.clone(),
            run.clone(),
            lease.clone(),
            journal.hold.clone(),
        ));
        // A run that lost its task is dropped where it stands: its step's Wasm stops at
        // once, and it records nothing more.
        let result = tokio::select! {
            result = execute(&engine, &claim, &workspace, journal.clone(), run.cancel.clone()) => Some(result),
            () = run.lost.cancelled() => None,
        };
        heartbeat.abort();
        engine.unregister_running(&lease);
        let Some(result) = result else {
            tracing::warn!(
                "the run stopped: this replica no longer holds the task (another claim has it, \
                 or no heartbeat could be recorded for the stale timeout); its workspace is left as it is"
            );
            return;
        };

        let (status, body) = match &result {
            Ok(output) => (
                TaskStatus::Completed,
                json!({ "message": "Run completed with status: completed", "output": output }),
            ),
            Err(failure) => (
                TaskStatus::Failed,
                json!({ "message": "Run completed with status: failed", "error": failure.to_json() }),
            ),
        };
        if journal.complete(status, &body).await.is_err() {
            // Logged by the journal; the task is recovered (or was taken over) elsewhere.
            return;
        }
        if status == TaskStatus::Completed && !engine.config().keep_workspaces {
            if let Err(err) = std::fs::remove_dir_all(&workspace)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("could not remove the workspace {}: {err}", workspace.display());
            }
            journal.remove_saved_workspace().await;
        } else {
            // Kept for a retry; its retention counts from now.
            retention::touch(&workspace);
        }
        tracing::info!(status = status.as_str(), "task finished");
    }
    .instrument(span)
    .await
}

/// One run of a task on this replica, as the engine tracks it.
#[derive(Clone)]
pub(crate) struct RunningTask {
    /// The claim the run holds.
    pub attempt: i64,
    /// The user cancelled the task: the run stops its step and ends the task `failed`.
    pub cancel: CancellationToken,
    /// The run lost its task: it is dropped and writes nothing more.
    pub lost: CancellationToken,
    /// Cancelled once the run has ended, however it ended.
    pub ended: CancellationToken,
}

impl RunningTask {
    fn new(attempt: i64) -> Self {
        Self {
            attempt,
            cancel: CancellationToken::new(),
            lost: CancellationToken::new(),
            ended: CancellationToken::new(),
        }
    }
}

/// Runs the task's steps. A failed task keeps its workspace so a retry can resume
/// after its completed steps (until `scaffolder.workspaceRetention` has passed). A task
/// resumed with saved progress first gets its saved workspace back, when workspaces are
/// saved: on another replica, its files would be missing otherwise.
async fn execute(
    engine: &Engine,
    claim: &ClaimedTask,
    workspace: &Path,
    journal: Arc<TaskJournal>,
    cancel: CancellationToken,
) -> Result<Json, Failure> {
    let task = &claim.task;
    let spec = task.spec.clone();
    if claim.cancelled {
        cancel.cancel();
    }
    std::fs::create_dir_all(workspace).map_err(|e| {
        Failure::error(format!(
            "could not create the task workspace {}: {e}",
            workspace.display()
        ))
    })?;
    if !claim.state.steps.is_empty() || !claim.state.checkpoints.is_empty() {
        journal.restore_workspace().await.map_err(Failure::error)?;
    }
    let template_directory = spec.template_directory();
    Run {
        task_id: task.id.to_string(),
        dry_run: false,
        extra_steps: 0,
        workspace: workspace.to_path_buf(),
        workspace_cap: None,
        template_directory,
        cancel,
        saved_steps: claim.state.steps.clone(),
        journal,
        actions: engine.actions(),
        renderer: engine.renderer(),
        environment: engine.config().environment.clone(),
        secrets: claim.secrets.clone(),
        spec,
    }
    .execute()
    .await
}

/// Until when a run may act for its task without news from the store: its last
/// recorded heartbeat plus the stale timeout, less one heartbeat interval (no other
/// replica can have taken the task over before then). Without task recovery nobody
/// takes tasks over, and the hold never ends. Cheap to clone; clones share the instant.
#[derive(Clone)]
pub(crate) struct Hold {
    /// How long after a recorded heartbeat the hold lasts (`None`: for ever).
    after_beat: Option<Duration>,
    until: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Hold {
    /// The hold of a run that has just claimed its task (the claim recorded the first
    /// heartbeat).
    fn from_claim(engine: &Engine) -> Self {
        let every = engine.config().heartbeat_interval;
        let after_beat = engine
            .config()
            .recovery_stale_timeout
            .map(|stale| stale.saturating_sub(every));
        let hold = Self {
            after_beat,
            until: Arc::default(),
        };
        hold.renew(Instant::now());
        hold
    }

    /// Records a heartbeat of the run holding `lease`, renewing the hold when it is
    /// recorded; when the store refuses it (the task was taken over), cancels `lost`.
    /// The heartbeat loop beats every interval; a run that stalled past its hold beats
    /// before its next step acts ([`crate::events::Journal::confirm_hold`]).
    pub async fn beat(
        &self,
        store: &Store,
        lease: &Lease,
        lost: &CancellationToken,
    ) -> Result<(), StoreError> {
        // The store records the heartbeat's time as of before the query.
        let sent = Instant::now();
        let beat = store.heartbeat(lease).await;
        match &beat {
            Ok(()) => self.renew(sent),
            Err(StoreError::LeaseLost { .. }) => lost.cancel(),
            Err(_) => {}
        }
        beat
    }

    /// A heartbeat sent at `sent` was recorded.
    fn renew(&self, sent: Instant) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) =
            self.after_beat.map(|after| sent + after);
    }

    /// Whether other replicas may have taken the task over by now.
    pub fn expired(&self) -> bool {
        let until = *self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|until| Instant::now() >= until)
    }
}

/// Every heartbeat interval: record that the run still holds its task (renewing its
/// [`Hold`], which the step's connections are checked against), and cancel it when a
/// `cancelled` event was written (by this or another replica). The run is stopped when
/// the store refuses the heartbeat (the task was taken over), and when its hold expires
/// because no heartbeat could be recorded.
async fn heartbeat_loop(engine: Engine, run: RunningTask, lease: Lease, hold: Hold) {
    // Claiming the task recorded the first heartbeat and `execute` checked for a
    // cancellation, so the first tick is one interval away.
    let every = engine.config().heartbeat_interval;
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // A query stuck on a dead connection must not hold the check below.
        match tokio::time::timeout(every, hold.beat(engine.store(), &lease, &run.lost)).await {
            Ok(Ok(())) => {}
            Ok(Err(err @ StoreError::LeaseLost { .. })) => {
                tracing::warn!("{err}; stopping this run");
                return;
            }
            Ok(Err(err)) => tracing::warn!("heartbeat failed: {err}"),
            Err(_) => tracing::warn!("heartbeat took longer than {every:?}"),
        }
        if hold.expired() {
            tracing::error!(
                "no heartbeat recorded for nearly the stale timeout: another replica may take the task over, so this run stops"
            );
            run.lost.cancel();
            return;
        }
        if !run.cancel.is_cancelled() {
            let cancelled = engine
                .store()
                .has_event(&lease.task_id, EventType::Cancelled);
            if let Ok(Ok(true)) = tokio::time::timeout(every, cancelled).await {
                run.cancel.cancel();
            }
        }
    }
}
