//! `Store::listen`: a second store on the same PostgreSQL database (another replica)
//! hears about tasks that became `open` and events that were added; SQLite has no
//! notifications.

use std::time::Duration;

use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{
    Backend, EventType, NewTask, Notification, Notifications, Store, TaskStatus,
};
use serde_json::{Map, json};
use sqlx::Executor;

/// Far longer than a notification takes; a missing one fails the test, it does not hang.
const PATIENCE: Duration = Duration::from_secs(10);

fn new_task(id: &str) -> NewTask {
    NewTask {
        id: id.into(),
        spec: scaffolder_store::testing::empty_spec(),
        created_by: None,
        secrets: Map::new(),
    }
}

/// A PostgreSQL database with two stores on it, the second listening.
async fn replicas() -> (TestDatabase, Store, Store, Notifications) {
    let database = TestDatabase::new(Backend::Postgres).await;
    let writer = database.connect().await.unwrap();
    let replica = database.connect().await.unwrap();
    let notifications = replica.listen().await.expect("PostgreSQL notifies");
    (database, writer, replica, notifications)
}

async fn finish(database: TestDatabase, stores: impl IntoIterator<Item = Store>) {
    for store in stores {
        store.close().await;
    }
    database.finish().await;
}

async fn next(notifications: &mut Notifications) -> Notification {
    tokio::time::timeout(PATIENCE, notifications.next())
        .await
        .expect("a notification")
}

fn opened(task_id: &str) -> Notification {
    Notification::TaskOpened {
        task_id: task_id.into(),
    }
}

fn added(task_id: &str, event_id: i64) -> Notification {
    Notification::EventsAdded {
        task_id: task_id.into(),
        event_id,
    }
}

#[tokio::test]
async fn another_store_hears_of_opened_tasks_and_added_events_when_on_postgres() {
    let (database, writer, replica, mut notifications) = replicas().await;

    // Created.
    writer.create_task(new_task("t")).await.unwrap();
    assert_eq!(next(&mut notifications).await, opened("t"));

    // Events: one notification per statement, with its greatest id.
    let lease = writer.claim_task().await.unwrap().unwrap().lease;
    let event = writer
        .append_event(&lease, EventType::Log, &json!({ "message": "one" }))
        .await
        .unwrap();
    assert_eq!(next(&mut notifications).await, added("t", event.id));
    let burst = writer
        .append_log_events(
            &lease,
            &[json!({ "message": "two" }), json!({ "message": "three" })],
        )
        .await
        .unwrap();
    assert_eq!(
        next(&mut notifications).await,
        added("t", burst.last().unwrap().id)
    );
    let completion = writer
        .complete_task(&lease, TaskStatus::Failed, &json!({ "message": "failed" }))
        .await
        .unwrap();
    assert_eq!(next(&mut notifications).await, added("t", completion.id));

    // Retried: the task is open again, and its `recovered` event (added where the retry
    // removed the completion) makes streams read the store again.
    let recovered = writer.retry_task("t", Map::new(), "none").await.unwrap();
    let mut heard = vec![
        next(&mut notifications).await,
        next(&mut notifications).await,
    ];
    heard.sort_by_key(|n| format!("{n:?}"));
    assert_eq!(heard, [added("t", recovered.id), opened("t")]);

    // Recovered after its worker stopped.
    writer.claim_task().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(writer.recover_stale_tasks(10).await.unwrap(), ["t"]);
    let recovered = writer
        .list_events("t", None)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    let mut heard = vec![
        next(&mut notifications).await,
        next(&mut notifications).await,
    ];
    heard.sort_by_key(|n| format!("{n:?}"));
    assert_eq!(heard, [added("t", recovered), opened("t")]);

    // Nothing else: a claim and a heartbeat open no task and add no event.
    let lease = writer.claim_task().await.unwrap().unwrap().lease;
    writer.heartbeat(&lease).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), notifications.next())
            .await
            .is_err(),
        "no notification for a claim or a heartbeat"
    );

    finish(database, [writer, replica]).await;
}

#[tokio::test]
async fn a_listener_that_lost_its_connection_says_so_and_hears_again() {
    let (database, writer, replica, mut notifications) = replicas().await;

    let admin = sqlx::AnyPool::connect(&database.url).await.unwrap();
    let terminated = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await
        .unwrap();
    assert_eq!(terminated.rows_affected(), 1, "the listener's connection");
    admin.close().await;

    assert_eq!(next(&mut notifications).await, Notification::Reconnected);
    writer.create_task(new_task("t")).await.unwrap();
    assert_eq!(next(&mut notifications).await, opened("t"));

    finish(database, [writer, replica]).await;
}

#[tokio::test]
async fn sqlite_has_no_notifications() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let store = database.connect().await.unwrap();
    assert!(store.listen().await.is_none());
    finish(database, [store]).await;
}
