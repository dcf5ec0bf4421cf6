//! Task secrets at rest, on SQLite and on PostgreSQL: encrypted with the configured key
//! (required on PostgreSQL), plaintext rows from before encryption still read, a changed
//! key reported as such; on SQLite, no value of a dropped secret left in any file of the
//! database, and the files readable by their owner only.

use std::path::Path;
use std::time::{Duration, Instant};

use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{Backend, Lease, NewTask, SecretsKey, Store, StoreError, TaskStatus};
use serde_json::{Map, Value as Json, json};
use sqlx::AnyPool;

/// Runs each listed test body on a fresh database of both kinds.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let database = super::TestDatabase::new(super::Backend::Sqlite).await;
                super::$name(&database).await;
                database.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let database = super::TestDatabase::new(super::Backend::Postgres).await;
                super::$name(&database).await;
                database.finish().await;
            })*
        }
    };
}

on_both_databases!(
    secrets_are_stored_encrypted_and_read_back,
    a_changed_key_is_named_in_the_error,
    plaintext_secrets_from_before_encryption_still_read,
);

fn task(id: &str, secrets: &[(&str, &str)]) -> NewTask {
    NewTask {
        id: id.into(),
        spec: scaffolder_store::testing::empty_spec(),
        created_by: None,
        secrets: secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect(),
    }
}

async fn raw_pool(database: &TestDatabase) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(&database.url).await.unwrap()
}

/// The `secrets` column as stored.
/// Claims open tasks until it has claimed `task_id` (its neighbours stay claimed).
async fn claim(store: &Store, task_id: &str) -> Lease {
    loop {
        let claim = store.claim_task().await.unwrap().expect("the task is open");
        if claim.task.id == task_id {
            return claim.lease;
        }
    }
}

async fn stored_secrets(database: &TestDatabase, task_id: &str) -> Option<String> {
    let pool = raw_pool(database).await;
    let sql = "SELECT secrets FROM tasks WHERE id = 'ID'".replace("ID", task_id);
    let value: Option<String> = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    value
}

async fn secrets_are_stored_encrypted_and_read_back(database: &TestDatabase) {
    let store = database.connect().await.unwrap();
    store
        .create_task(task("t", &[("token", "s3cr3t-token")]))
        .await
        .unwrap();
    let stored = stored_secrets(database, "t").await.unwrap();
    assert!(stored.starts_with("v1:"), "{stored}");
    assert!(!stored.contains("s3cr3t"), "{stored}");

    let claim = store.claim_task().await.unwrap().unwrap();
    assert_eq!(
        claim.secrets["token"],
        json!("s3cr3t-token"),
        "the claim decrypts them"
    );
    store
        .add_secret(&claim.lease, "generated", "added-password")
        .await
        .unwrap();
    let stored = stored_secrets(database, "t").await.unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains("added-password"));
    let expected: Map<String, Json> = [
        ("token".to_owned(), json!("s3cr3t-token")),
        ("generated".to_owned(), json!("added-password")),
    ]
    .into_iter()
    .collect();
    assert_eq!(store.secrets("t").await.unwrap(), expected);

    store
        .complete_task(&claim.lease, TaskStatus::Failed, &json!({}))
        .await
        .unwrap();
    assert_eq!(stored_secrets(database, "t").await, None);
    let fresh: Map<String, Json> = [("token".to_owned(), json!("retried-token"))]
        .into_iter()
        .collect();
    store.retry_task("t", fresh.clone(), "none").await.unwrap();
    let stored = stored_secrets(database, "t").await.unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains("retried-token"));
    assert_eq!(store.secrets("t").await.unwrap(), fresh);
    store.close().await;
}

async fn a_changed_key_is_named_in_the_error(database: &TestDatabase) {
    let store = database.connect().await.unwrap();
    store
        .create_task(task("t", &[("token", "x")]))
        .await
        .unwrap();
    store.close().await;

    let other = Store::connect_with(&database.url, Some(SecretsKey::generate()))
        .await
        .unwrap();
    let err = other.secrets("t").await.unwrap_err();
    assert!(matches!(err, StoreError::UnreadableSecrets { .. }), "{err}");
    assert!(
        err.to_string().contains("task 't'")
            && err
                .to_string()
                .contains("scaffolder.taskSecrets.key was changed"),
        "{err}"
    );
    let err = other.claim_task().await.unwrap_err();
    assert!(matches!(err, StoreError::UnreadableSecrets { .. }), "{err}");
    other.close().await;

    // The right key again: nothing was lost.
    let store = database.connect().await.unwrap();
    assert_eq!(store.secrets("t").await.unwrap()["token"], json!("x"));
    store.close().await;
}

async fn plaintext_secrets_from_before_encryption_still_read(database: &TestDatabase) {
    let store = database.connect().await.unwrap();
    store
        .create_task(task("t", &[("token", "placeholder")]))
        .await
        .unwrap();
    // A row as a version without encryption wrote it.
    let pool = raw_pool(database).await;
    sqlx::query(r#"UPDATE tasks SET secrets = '{"token":"legacy"}' WHERE id = 't'"#)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    assert_eq!(store.secrets("t").await.unwrap()["token"], json!("legacy"));
    let lease = store.claim_task().await.unwrap().unwrap().lease;
    store.add_secret(&lease, "added", "new").await.unwrap();
    let stored = stored_secrets(database, "t").await.unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains("legacy"),
        "the next write encrypts: {stored}"
    );
    let secrets = store.secrets("t").await.unwrap();
    assert_eq!(
        (&secrets["token"], &secrets["added"]),
        (&json!("legacy"), &json!("new"))
    );
    store.close().await;
}

#[tokio::test]
async fn postgres_refuses_to_store_secrets_without_a_key() {
    let database = TestDatabase::new(Backend::Postgres).await;
    let err = Store::connect(&database.url).await.unwrap_err();
    assert!(matches!(err, StoreError::SecretsKeyRequired), "{err}");
    database.finish().await;
}

#[tokio::test]
async fn encrypted_secrets_without_a_key_say_a_key_is_needed() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let store = database.connect().await.unwrap();
    store
        .create_task(task("t", &[("token", "x")]))
        .await
        .unwrap();
    store.close().await;
    let keyless = Store::connect(&database.url).await.unwrap();
    let err = keyless.secrets("t").await.unwrap_err();
    assert!(err.to_string().contains("no key is configured"), "{err}");
    keyless.close().await;
    database.finish().await;
}

/// Every value of a secret a task held, from its creation, `add_secret` and a retry,
/// with one larger than a page (overflow pages): none is left in the database, its
/// write-ahead log or its shared memory file once the task has ended. Without a key,
/// where the values are written in plaintext.
#[tokio::test]
async fn sqlite_files_keep_no_dropped_secret() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let dir = Path::new(database.url.strip_prefix("sqlite://").unwrap())
        .parent()
        .unwrap()
        .to_owned();
    let store = Store::connect(&database.url).await.unwrap();
    let large = format!("LARGE-{}", "q7".repeat(6_000));
    // Overflow pages split the large value; any 60 bytes of it are distinctive.
    let large_piece = "q7".repeat(30);
    let values = [
        "created-token-f1b2",
        large.as_str(),
        "added-password-93ac",
        "retried-token-5d1e",
        "cancelled-token-77aa",
    ];

    // A neighbour whose rows share pages with the task's, before and after it.
    store
        .create_task(task("before", &[("other", "kept-before")]))
        .await
        .unwrap();
    store
        .create_task(task("t", &[("token", values[0]), ("big", values[1])]))
        .await
        .unwrap();
    store
        .create_task(task("after", &[("other", "kept-after")]))
        .await
        .unwrap();
    let lease = claim(&store, "t").await;
    store
        .add_secret(&lease, "generated", values[2])
        .await
        .unwrap();
    for value in [values[0], &large_piece, values[2]] {
        assert!(
            find_in_files(&dir, value.as_bytes()).is_some(),
            "without a key the values are in the files while the task runs (the search works)"
        );
    }
    store
        .complete_task(&lease, TaskStatus::Failed, &json!({}))
        .await
        .unwrap();
    store
        .retry_task(
            "t",
            [("token".to_owned(), json!(values[3]))]
                .into_iter()
                .collect(),
            "none",
        )
        .await
        .unwrap();
    let lease = claim(&store, "t").await;
    store
        .complete_task(&lease, TaskStatus::Completed, &json!({}))
        .await
        .unwrap();
    for value in [values[0], &large_piece, values[2], values[3]] {
        assert_eq!(
            find_in_files(&dir, value.as_bytes()),
            None,
            "{value} found right after completion"
        );
    }

    // A cancel does not wait for the checkpoint; it follows shortly.
    store
        .create_task(task("c", &[("token", values[4])]))
        .await
        .unwrap();
    store.cancel_task("c", &json!({})).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(file) = find_in_files(&dir, values[4].as_bytes()) {
        assert!(
            Instant::now() < deadline,
            "the cancelled task's secret is still in {file}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(
        find_in_files(&dir, b"kept-after").is_some(),
        "other tasks keep theirs"
    );
    assert_eq!(store.secrets("after").await.unwrap()["other"], "kept-after");
    store.close().await;
    database.finish().await;
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let database = TestDatabase::new(Backend::Sqlite).await;
    let file = database.url.strip_prefix("sqlite://").unwrap().to_owned();
    let store = Store::connect(&database.url).await.unwrap();
    store.create_task(task("t", &[])).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{file}{suffix}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }
    store.close().await;
    database.finish().await;
}

/// The first file under `dir` (recursively) whose bytes contain `needle`.
fn find_in_files(dir: &Path, needle: &[u8]) -> Option<String> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if let Some(found) = find_in_files(&path, needle) {
                return Some(found);
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            return Some(path.display().to_string());
        }
    }
    None
}
