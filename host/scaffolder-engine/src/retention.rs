//! Removes the workspaces of tasks that ended long ago. A failed task keeps its
//! workspace so that a retry resumes after its completed steps; after
//! `scaffolder.workspaceRetention` without a change (the worker touches the workspace
//! when a task ends, so a retried task counts from its last end) it is removed.
//!
//! Only directories named after a task the store knows to have ended are touched: a
//! running task's, a dry run's (`dry-run-…`), an invocation's, or one the store does not
//! know are left alone. Links are never followed: an entry that is not a directory is
//! skipped, and `remove_dir_all` removes links inside without following them.
//!
//! With a workspace store (`scaffolder.workspaceStore`), the saved workspaces of tasks that
//! ended over the retention ago are removed too, by the same loop.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::Engine;

/// How often the workspaces are looked at.
const EVERY: Duration = Duration::from_secs(60 * 60);

/// Sweeps now, then every hour, until `shutdown`.
pub(crate) async fn retention_loop(engine: Engine, shutdown: CancellationToken) {
    loop {
        let removed = sweep(&engine, SystemTime::now()).await;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed the workspaces of tasks that ended over {:?} ago",
                engine.config().workspace_retention
            );
        }
        sweep_saved(&engine).await;
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Removes, as of `now`, the workspaces of ended tasks not modified for the retention
/// period, and returns how many. Failures are logged; the next sweep tries again.
pub(crate) async fn sweep(engine: &Engine, now: SystemTime) -> usize {
    let config = engine.config();
    let root = &config.working_directory;
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(err) => {
            tracing::warn!("could not list the workspaces in {}: {err}", root.display());
            return 0;
        }
    };
    // Listed first: the store is asked only about old directories, one at a time.
    let old: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|entry| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| is_older(modified, now, config.workspace_retention))
        })
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| uuid::Uuid::parse_str(name).is_ok())
        .collect();
    let mut removed = 0;
    for task_id in old {
        match engine.store().get_task(&task_id).await {
            Ok(Some(task)) if task.status.is_terminal() => {}
            Ok(_) => continue,
            Err(err) => {
                tracing::warn!(
                    task_id,
                    "workspace retention: could not read the task: {err}"
                );
                continue;
            }
        }
        let workspace = root.join(&task_id);
        match std::fs::remove_dir_all(&workspace) {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(
                "could not remove the workspace {}: {err}",
                workspace.display()
            ),
        }
    }
    removed
}

/// Removes the saved workspaces of ended tasks last saved more than the retention ago,
/// when a workspace store is configured, and returns the tasks they belonged to. A
/// failure is logged; the next sweep tries again.
pub(crate) async fn sweep_saved(engine: &Engine) -> Vec<String> {
    let config = engine.config();
    let Some(workspaces) = &config.workspace_store else {
        return Vec::new();
    };
    match workspaces.sweep(config.workspace_retention).await {
        Ok(removed) => {
            if !removed.is_empty() {
                tracing::info!(
                    removed = removed.len(),
                    tasks = %removed.join(", "),
                    "removed the saved workspaces of tasks that ended over {:?} ago",
                    config.workspace_retention
                );
            }
            removed
        }
        Err(err) => {
            tracing::warn!("workspace retention: could not remove saved workspaces: {err}");
            Vec::new()
        }
    }
}

/// Marks a workspace as modified now, so its retention counts from the task's end.
pub(crate) fn touch(workspace: &Path) {
    let touched = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(workspace)
        .and_then(|dir| dir.set_modified(SystemTime::now()));
    if let Err(err) = touched
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(
            "could not touch the workspace {}: {err}",
            workspace.display()
        );
    }
}

fn is_older(modified: SystemTime, now: SystemTime, retention: Duration) -> bool {
    now.duration_since(modified)
        .is_ok_and(|age| age > retention)
}

#[cfg(test)]
mod tests {
    use scaffolder_store::testing::TestDatabase;
    use scaffolder_store::{Backend, NewTask, Store, TaskStatus};
    use serde_json::json;

    use super::*;
    use crate::{ActionRegistry, EngineConfig, WorkspaceStore, WorkspaceStoreConfig};

    const HOUR: Duration = Duration::from_secs(60 * 60);

    /// A workspace directory last modified `age` ago.
    fn workspace(root: &Path, name: &str, age: Duration) {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("skeleton")).unwrap();
        std::fs::write(dir.join("skeleton/README.md"), "kept for a retry").unwrap();
        std::fs::File::open(&dir)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    /// A task that is `processing`, or has ended when `end` is given.
    async fn task(store: &Store, end: Option<TaskStatus>) -> String {
        saved_task(store, None, end).await
    }

    /// As [`task`], and with `save` a workspace under its directory saved in its store
    /// while the task runs.
    async fn saved_task(
        store: &Store,
        save: Option<(&WorkspaceStore, &Path)>,
        end: Option<TaskStatus>,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        store
            .create_task(NewTask {
                id: id.clone().into(),
                spec: scaffolder_store::testing::empty_spec(),
                created_by: None,
                secrets: Default::default(),
            })
            .await
            .unwrap();
        let claimed = store.claim_task().await.unwrap().unwrap();
        assert_eq!(claimed.task.id, id);
        if let Some((workspaces, root)) = save {
            workspace(root, &id, Duration::ZERO);
            workspaces
                .save(&claimed.lease, &root.join(&id), None)
                .await
                .unwrap();
        }
        if let Some(status) = end {
            store
                .complete_task(&claimed.lease, status, &json!({}))
                .await
                .unwrap();
        }
        id
    }

    #[tokio::test]
    async fn saved_workspaces_of_tasks_ended_over_the_retention_ago_are_removed() {
        let database = TestDatabase::new(Backend::Sqlite).await;
        let store = Store::connect(&database.url).await.unwrap();
        let workdir = tempfile::tempdir().unwrap();
        let workspaces =
            WorkspaceStore::new(store.clone(), &WorkspaceStoreConfig::database()).unwrap();
        let engine = |retention, workspace_store| {
            Engine::new(
                store.clone(),
                ActionRegistry::new([]).unwrap(),
                EngineConfig {
                    workspace_retention: retention,
                    workspace_store,
                    ..EngineConfig::new(workdir.path().to_path_buf())
                },
            )
        };

        let save = Some((&workspaces, workdir.path()));
        let failed = saved_task(&store, save, Some(TaskStatus::Failed)).await;
        let running = saved_task(&store, save, None).await;
        tokio::time::sleep(Duration::from_millis(20)).await;

        assert!(
            sweep_saved(&engine(HOUR, Some(workspaces.clone())))
                .await
                .is_empty()
        );
        assert!(sweep_saved(&engine(Duration::ZERO, None)).await.is_empty());
        assert!(store.workspace_manifest(&failed).await.unwrap().is_some());

        let zero = engine(Duration::ZERO, Some(workspaces.clone()));
        assert_eq!(sweep_saved(&zero).await, std::slice::from_ref(&failed));
        assert!(store.workspace_manifest(&failed).await.unwrap().is_none());
        assert!(store.workspace_manifest(&running).await.unwrap().is_some());
        assert!(sweep_saved(&zero).await.is_empty());

        store.close().await;
        database.finish().await;
    }

    #[tokio::test]
    async fn only_old_workspaces_of_ended_tasks_are_removed() {
        let database = TestDatabase::new(Backend::Sqlite).await;
        let store = Store::connect(&database.url).await.unwrap();
        let workdir = tempfile::tempdir().unwrap();
        let root = workdir.path();
        let engine = Engine::new(
            store.clone(),
            ActionRegistry::new([]).unwrap(),
            EngineConfig {
                workspace_retention: HOUR,
                ..EngineConfig::new(root.to_path_buf())
            },
        );

        let failed_long_ago = task(&store, Some(TaskStatus::Failed)).await;
        workspace(root, &failed_long_ago, 2 * HOUR);
        let completed_long_ago = task(&store, Some(TaskStatus::Completed)).await;
        workspace(root, &completed_long_ago, 2 * HOUR);
        let failed_recently = task(&store, Some(TaskStatus::Failed)).await;
        workspace(root, &failed_recently, HOUR / 2);
        let running = task(&store, None).await;
        workspace(root, &running, 2 * HOUR);
        let unknown = uuid::Uuid::new_v4().to_string();
        workspace(root, &unknown, 2 * HOUR);
        workspace(root, "dry-run-0b1c", 2 * HOUR);
        workspace(root, "invocations", 2 * HOUR);
        // A link in the working directory named after an ended task: neither it nor
        // what it points at is touched.
        let outside = tempfile::tempdir().unwrap();
        workspace(outside.path(), "target", 2 * HOUR);
        let linked = task(&store, Some(TaskStatus::Failed)).await;
        std::os::unix::fs::symlink(outside.path().join("target"), root.join(&linked)).unwrap();

        assert_eq!(sweep(&engine, SystemTime::now()).await, 2);
        for gone in [&failed_long_ago, &completed_long_ago] {
            assert!(!root.join(gone).exists(), "{gone}");
        }
        for kept in [
            &failed_recently,
            &running,
            &unknown,
            "dry-run-0b1c",
            "invocations",
        ] {
            assert!(
                root.join(kept).join("skeleton/README.md").exists(),
                "{kept}"
            );
        }
        assert!(root.join(&linked).is_symlink());
        assert!(outside.path().join("target/skeleton/README.md").exists());

        // A retried task that failed again counts from its new end: the worker touches
        // its workspace.
        touch(&root.join(&failed_recently));
        assert_eq!(
            sweep(&engine, SystemTime::now() + HOUR / 2 + HOUR / 4).await,
            0
        );
        assert_eq!(sweep(&engine, SystemTime::now() + 2 * HOUR).await, 1);
        assert!(!root.join(&failed_recently).exists());

        store.close().await;
        database.finish().await;
    }
}
