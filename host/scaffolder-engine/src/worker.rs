//! The worker loop: claim `open` tasks up to the concurrency limit, run each with a
//! heartbeat and a cancellation watch, complete it; the recovery loop that re-opens
//! tasks whose worker died; and the retention loop that removes old workspaces of ended
//! tasks (`retention.rs`).

use std::sync::Arc;
use std::time::Duration;

use scaffolder_store::{ClaimedTask, EventType, TaskStatus};
use serde_json::{Value as Json, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Engine;
use crate::events::TaskJournal;
use crate::failure::Failure;
use crate::retention;
use crate::spec::TaskSpec;
use crate::workflow::Run;

/// How long an idle worker waits before looking for tasks another replica created.
const IDLE_POLL: Duration = Duration::from_secs(1);
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
                    () = tokio::time::sleep(IDLE_POLL) => {}
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
    let span = tracing::info_span!("task", task_id = %claim.task.id);
    async move {
        let task = &claim.task;
        tracing::info!("task claimed");
        let cancel = CancellationToken::new();
        engine.register_running(&task.id, cancel.clone());
        let heartbeat = tokio::spawn(heartbeat_loop(
            engine.clone(),
            task.id.clone(),
            cancel.clone(),
        ));
        let result = execute(&engine, &claim, cancel).await;
        heartbeat.abort();
        engine.unregister_running(&task.id);

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
        match engine.store().complete_task(&task.id, status, &body).await {
            Ok(event) => engine.bus().publish_events(&task.id, vec![event]),
            Err(err) => tracing::error!("could not complete the task: {err}"),
        }
        let workspace = engine.config().working_directory.join(&task.id);
        if status == TaskStatus::Completed && !engine.config().keep_workspaces {
            if let Err(err) = std::fs::remove_dir_all(&workspace)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("could not remove the workspace {}: {err}", workspace.display());
            }
        } else {
            // Kept for a retry; its retention counts from now.
            retention::touch(&workspace);
        }
        tracing::info!(status = status.as_str(), "task finished");
    }
    .instrument(span)
    .await
}

/// Runs the task's steps. A failed task keeps its workspace so a retry can resume
/// after its completed steps (until `scaffolder.workspaceRetention` has passed).
async fn execute(
    engine: &Engine,
    claim: &ClaimedTask,
    cancel: CancellationToken,
) -> Result<Json, Failure> {
    let task = &claim.task;
    let spec: TaskSpec = serde_json::from_value(task.spec.clone())
        .map_err(|e| Failure::error(format!("the stored task spec is not valid: {e}")))?;
    let store = engine.store();
    if claim.cancelled {
        cancel.cancel();
    }
    let saved = claim.state.clone();
    let workspace = engine.config().working_directory.join(&task.id);
    std::fs::create_dir_all(&workspace).map_err(|e| {
        Failure::error(format!(
            "could not create the task workspace {}: {e}",
            workspace.display()
        ))
    })?;
    let template_directory = spec.template_directory();
    Run {
        task_id: task.id.clone(),
        dry_run: false,
        extra_steps: 0,
        workspace,
        template_directory,
        cancel,
        saved_steps: saved.steps.clone(),
        journal: Arc::new(TaskJournal {
            store: store.clone(),
            bus: engine.bus().clone(),
            task_id: task.id.clone(),
            state: tokio::sync::Mutex::new(saved),
        }),
        actions: engine.actions(),
        renderer: engine.renderer(),
        environment: engine.config().environment.clone(),
        secrets: claim.secrets.clone(),
        spec,
    }
    .execute()
    .await
}

/// Every heartbeat interval: record that the task is alive, and cancel it when a
/// `cancelled` event was written (by this or another replica).
async fn heartbeat_loop(engine: Engine, task_id: String, cancel: CancellationToken) {
    // Claiming the task recorded the first heartbeat and `execute` checked for a
    // cancellation, so the first tick is one interval away.
    let every = engine.config().heartbeat_interval;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match engine.store().heartbeat(&task_id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("the task is no longer processing here; heartbeat stopped");
                return;
            }
            Err(err) => tracing::warn!("heartbeat failed: {err}"),
        }
        if !cancel.is_cancelled()
            && engine
                .store()
                .has_event(&task_id, EventType::Cancelled)
                .await
                .unwrap_or(false)
        {
            cancel.cancel();
        }
    }
}
