//! Saved task workspaces (`workspaces.rs`) on SQLite and on PostgreSQL: the manifest is
//! written only under the lease of the run holding the task, blobs are content-addressed,
//! and unreferenced blobs are deleted only by the holder.

use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{Backend, Lease, NewTask, Store, StoreError, TaskStatus};
use serde_json::{Map, json};

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::run(scaffolder_store::Backend::Sqlite, super::$name).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::run(scaffolder_store::Backend::Postgres, super::$name).await;
            })*
        }
    };
}

on_both_databases!(
    the_manifest_is_written_only_under_the_current_lease,
    blobs_are_stored_once_and_deleted_only_by_the_holder,
    removal_and_the_sweep_of_ended_tasks,
);

async fn run<F: AsyncFnOnce(&Store)>(backend: Backend, test: F) {
    let database = TestDatabase::new(backend).await;
    let store = database.connect().await.unwrap();
    test(&store).await;
    store.close().await;
    database.finish().await;
}

/// Creates the task and claims it (it must be the only open one).
async fn claimed(store: &Store, id: &str) -> Lease {
    store
        .create_task(NewTask {
            id: id.into(),
            spec: scaffolder_store::testing::empty_spec(),
            created_by: None,
            secrets: Map::new(),
        })
        .await
        .unwrap();
    let claim = store.claim_task().await.unwrap().expect("the open task");
    assert_eq!(claim.task.id, id);
    claim.lease
}

/// Makes the task stale and lets another worker claim it: the recovery of a replica
/// whose worker paused.
async fn taken_over(store: &Store, id: &str) -> Lease {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        store.recover_stale_tasks(10).await.unwrap(),
        [id.to_owned()]
    );
    let claim = store
        .claim_task()
        .await
        .unwrap()
        .expect("the recovered task");
    claim.lease
}

fn lease_lost(err: StoreError, lease: &Lease) {
    assert!(
        matches!(&err, StoreError::LeaseLost { task_id, attempt } if *task_id == lease.task_id && *attempt == lease.attempt),
        "{err}"
    );
}

async fn the_manifest_is_written_only_under_the_current_lease(store: &Store) {
    let first = claimed(store, "t").await;
    assert_eq!(store.workspace_manifest("t").await.unwrap(), None);
    store.begin_workspace_save(&first).await.unwrap();
    assert_eq!(
        store.workspace_manifest("t").await.unwrap(),
        None,
        "a save under way has no manifest yet"
    );
    store
        .write_workspace_manifest(&first, "{\"one\":1}", 10)
        .await
        .unwrap();
    store
        .write_workspace_manifest(&first, "{\"two\":2}", 20)
        .await
        .unwrap();
    assert_eq!(
        store.workspace_manifest("t").await.unwrap().as_deref(),
        Some("{\"two\":2}")
    );

    let second = taken_over(store, "t").await;
    assert_eq!(second.attempt, first.attempt + 1);
    lease_lost(
        store.begin_workspace_save(&first).await.unwrap_err(),
        &first,
    );
    lease_lost(
        store
            .write_workspace_manifest(&first, "{\"stale\":true}", 30)
            .await
            .unwrap_err(),
        &first,
    );
    assert_eq!(
        store.workspace_manifest("t").await.unwrap().as_deref(),
        Some("{\"two\":2}"),
        "the run that lost the task changed nothing"
    );
    store
        .write_workspace_manifest(&second, "{\"three\":3}", 30)
        .await
        .unwrap();

    // Ended: nobody writes it any more.
    store
        .complete_task(&second, TaskStatus::Completed, &json!({}))
        .await
        .unwrap();
    lease_lost(
        store
            .write_workspace_manifest(&second, "{\"late\":true}", 40)
            .await
            .unwrap_err(),
        &second,
    );
    assert_eq!(
        store.workspace_manifest("t").await.unwrap().as_deref(),
        Some("{\"three\":3}")
    );
    // A task that does not exist is held by nobody.
    let ghost = Lease {
        task_id: "ghost".into(),
        attempt: 1,
    };
    lease_lost(
        store.begin_workspace_save(&ghost).await.unwrap_err(),
        &ghost,
    );
}

async fn blobs_are_stored_once_and_deleted_only_by_the_holder(store: &Store) {
    let first = claimed(store, "t").await;
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .put_workspace_chunk("t", "aa", 0, &bytes)
        .await
        .unwrap();
    store
        .put_workspace_chunk("t", "aa", 1, b"tail")
        .await
        .unwrap();
    // Content-addressed: writing a stored chunk again changes nothing and is no error.
    store
        .put_workspace_chunk("t", "aa", 0, &bytes)
        .await
        .unwrap();
    store
        .put_workspace_chunk("t", "bb", 0, b"other")
        .await
        .unwrap();
    assert_eq!(
        store
            .workspace_chunk("t", "aa", 0)
            .await
            .unwrap()
            .as_deref(),
        Some(&bytes[..])
    );
    assert_eq!(
        store
            .workspace_chunk("t", "aa", 1)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"tail"[..])
    );
    assert_eq!(store.workspace_chunk("t", "aa", 2).await.unwrap(), None);
    let mut digests = store.workspace_blob_digests("t").await.unwrap();
    digests.sort();
    assert_eq!(digests, ["aa", "bb"]);
    assert!(matches!(
        store
            .put_workspace_chunk("ghost", "aa", 0, b"x")
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));

    let second = taken_over(store, "t").await;
    store
        .delete_workspace_blobs(&first, &["aa".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        store.workspace_blob_digests("t").await.unwrap().len(),
        2,
        "a run that lost the task deletes nothing"
    );
    store
        .delete_workspace_blobs(&second, &["aa".to_owned()])
        .await
        .unwrap();
    assert_eq!(store.workspace_blob_digests("t").await.unwrap(), ["bb"]);
    assert_eq!(store.workspace_chunk("t", "aa", 1).await.unwrap(), None);
}

async fn removal_and_the_sweep_of_ended_tasks(store: &Store) {
    let done = claimed(store, "done").await;
    store.begin_workspace_save(&done).await.unwrap();
    store
        .put_workspace_chunk("done", "aa", 0, b"x")
        .await
        .unwrap();
    store
        .write_workspace_manifest(&done, "{}", 1)
        .await
        .unwrap();
    store
        .complete_task(&done, TaskStatus::Failed, &json!({}))
        .await
        .unwrap();
    let running = claimed(store, "running").await;
    store
        .write_workspace_manifest(&running, "{}", 1)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let now = now_ms();

    assert_eq!(
        store.workspaces_of_ended_tasks(now).await.unwrap(),
        ["done"],
        "a running task's workspace is never swept"
    );
    assert!(
        store
            .workspaces_of_ended_tasks(now - 60_000)
            .await
            .unwrap()
            .is_empty(),
        "nor one saved within the retention"
    );
    store.delete_workspace("done").await.unwrap();
    assert_eq!(store.workspace_manifest("done").await.unwrap(), None);
    assert!(
        store
            .workspace_blob_digests("done")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .workspaces_of_ended_tasks(now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .workspace_manifest("running")
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
