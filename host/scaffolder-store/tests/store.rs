//! Every store operation, run on SQLite and on PostgreSQL (a fresh database per test on
//! the server at `SCAFFOLDER_TEST_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/postgres).

use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{
    Backend, ClaimedTask, Direction, EventType, Lease, NewTask, OrderField, Store, StoreError,
    TaskFilter, TaskState, TaskStatus,
};
use serde_json::{Map, json};

/// A store on a fresh database, dropped afterwards.
struct TestDb {
    store: Store,
    database: TestDatabase,
}

impl TestDb {
    async fn sqlite() -> Self {
        Self::on(Backend::Sqlite).await
    }

    async fn postgres() -> Self {
        Self::on(Backend::Postgres).await
    }

    /// As a server runs by default: SQLite without a secrets key (plaintext secrets,
    /// scrubbed from the files after the task), PostgreSQL with one (required there).
    async fn on(backend: Backend) -> Self {
        let database = TestDatabase::new(backend).await;
        let store = match backend {
            Backend::Sqlite => Store::connect(&database.url).await.unwrap(),
            Backend::Postgres => database.connect().await.unwrap(),
        };
        Self { store, database }
    }

    async fn finish(self) {
        self.store.close().await;
        self.database.finish().await;
    }
}

/// Runs each listed test body on both databases, as `sqlite::<name>` and `postgres::<name>`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let db = super::TestDb::sqlite().await;
                super::$name(&db.store).await;
                db.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let db = super::TestDb::postgres().await;
                super::$name(&db.store).await;
                db.finish().await;
            })*
        }
    };
}

on_both_databases!(
    create_and_get,
    list_filters_orders_and_pages,
    claim_takes_each_open_task_once,
    a_claim_carries_saved_progress_and_cancellation,
    events_are_monotonic_and_listed_after,
    log_events_append_in_one_batch_in_order,
    completion_is_always_listed,
    complete_drops_secrets_and_appends_completion,
    complete_twice_conflicts,
    cancel_appends_event_and_drops_secrets,
    retry_reopens_only_ended_tasks,
    start_over_recovery_trims_events,
    stale_tasks_are_recovered,
    step_state_and_checkpoints_persist,
    state_and_events_are_written_together,
    added_secrets_are_kept_until_the_end,
    heartbeat_only_while_processing,
    a_lost_lease_writes_nothing,
);

fn new_task(id: &str, created_by: Option<&str>) -> NewTask {
    let mut secrets = Map::new();
    secrets.insert("token".into(), json!("s3cr3t"));
    NewTask {
        id: id.into(),
        spec: scaffolder_store::testing::empty_spec(),
        created_by: created_by.map(str::to_owned),
        secrets,
    }
}

/// Creates the task and claims it (it must be the only open one).
async fn claimed(store: &Store, id: &str) -> Lease {
    store.create_task(new_task(id, None)).await.unwrap();
    let claim = store.claim_task().await.unwrap().expect("the open task");
    assert_eq!(claim.task.id, id);
    claim.lease
}

async fn create_and_get(store: &Store) {
    let created = store
        .create_task(new_task("t1", Some("user:default/jane")))
        .await
        .unwrap();
    let got = store.get_task("t1").await.unwrap().unwrap();
    assert_eq!(got, created);
    assert_eq!(got.status, TaskStatus::Open);
    assert_eq!(got.last_heartbeat_at, None);
    assert!(store.get_task("nope").await.unwrap().is_none());
}

async fn list_filters_orders_and_pages(store: &Store) {
    for (id, who) in [
        ("a", "user:default/ann"),
        ("b", "user:default/bob"),
        ("c", "user:default/ann"),
    ] {
        store.create_task(new_task(id, Some(who))).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let ids = |tasks: &[scaffolder_store::TaskRecord]| {
        tasks.iter().map(|t| t.id.to_string()).collect::<Vec<_>>()
    };

    let (all, total) = store.list_tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!(
        (ids(&all), total),
        (vec!["c".to_owned(), "b".into(), "a".into()], 3),
        "newest first by default"
    );

    let filter = TaskFilter {
        created_by: vec!["user:default/ann".into(), "user:default/ann".into()],
        ..TaskFilter::default()
    };
    let (ann, total) = store.list_tasks(&filter).await.unwrap();
    assert_eq!((ids(&ann), total), (vec!["c".to_owned(), "a".into()], 2));

    let filter = TaskFilter {
        order: vec![(OrderField::CreatedAt, Direction::Asc)],
        limit: Some(1),
        offset: Some(1),
        ..TaskFilter::default()
    };
    let (page, total) = store.list_tasks(&filter).await.unwrap();
    assert_eq!(
        (ids(&page), total),
        (vec!["b".to_owned()], 3),
        "total ignores limit and offset"
    );

    let filter = TaskFilter {
        offset: Some(2),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(&store.list_tasks(&filter).await.unwrap().0),
        vec!["a".to_owned()]
    );

    let filter = TaskFilter {
        status: vec!["completed".into()],
        ..TaskFilter::default()
    };
    assert_eq!(store.list_tasks(&filter).await.unwrap(), (vec![], 0));
}

async fn claim_takes_each_open_task_once(store: &Store) {
    store.create_task(new_task("first", None)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    store.create_task(new_task("second", None)).await.unwrap();
    let claims = futures_join(store).await;
    let mut claimed: Vec<String> = claims
        .into_iter()
        .flatten()
        .map(|c| c.task.id.to_string())
        .collect();
    claimed.sort();
    assert_eq!(
        claimed,
        vec!["first".to_owned(), "second".into()],
        "each task claimed exactly once"
    );
    assert!(store.claim_task().await.unwrap().is_none());
    let task = store.get_task("first").await.unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Processing);
    assert!(task.last_heartbeat_at.is_some());
}

/// Four concurrent claims for two tasks.
async fn futures_join(store: &Store) -> Vec<Option<ClaimedTask>> {
    let (a, b, c, d) = tokio::join!(
        store.claim_task(),
        store.claim_task(),
        store.claim_task(),
        store.claim_task()
    );
    let all = vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    for claim in all.iter().flatten() {
        assert_eq!(
            claim.secrets.get("token"),
            Some(&json!("s3cr3t")),
            "secrets come with the claim of {}",
            claim.task.id
        );
        assert_eq!(claim.state, TaskState::default());
        assert!(!claim.cancelled);
    }
    all
}

async fn events_are_monotonic_and_listed_after(store: &Store) {
    let lease = claimed(store, "t").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let e = store
            .append_event(
                &lease,
                EventType::Log,
                &json!({ "message": format!("line {i}") }),
            )
            .await
            .unwrap();
        ids.push(e.id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let after = store.list_events("t", Some(ids[0])).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[1..].to_vec()
    );
    assert_eq!(after[0].body["message"], "line 1");
    assert_eq!(store.list_events("t", None).await.unwrap().len(), 3);
}

async fn log_events_append_in_one_batch_in_order(store: &Store) {
    let lease = claimed(store, "t").await;
    let first = store
        .append_event(&lease, EventType::Log, &json!({ "message": "before" }))
        .await
        .unwrap();
    let lines: Vec<_> = (0..5)
        .map(|i| json!({ "message": format!("line {i}"), "stepId": "s" }))
        .collect();
    let appended = store.append_log_events(&lease, &lines).await.unwrap();
    assert!(
        store
            .append_log_events(&lease, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let events = store.list_events("t", Some(first.id)).await.unwrap();
    assert_eq!(appended, events, "the records returned are the ones stored");
    assert_eq!(
        events.iter().map(|e| e.body.clone()).collect::<Vec<_>>(),
        lines
    );
    assert!(events.iter().all(|e| e.event_type == EventType::Log));
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    let ghost = Lease {
        task_id: "ghost".into(),
        attempt: 1,
    };
    let err = store.append_log_events(&ghost, &lines).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
}

async fn completion_is_always_listed(store: &Store) {
    let lease = claimed(store, "t").await;
    store
        .append_event(&lease, EventType::Log, &json!({ "message": "x" }))
        .await
        .unwrap();
    let done = store
        .complete_task(
            &lease,
            TaskStatus::Completed,
            &json!({ "message": "Run completed with status: completed" }),
        )
        .await
        .unwrap();
    let after_everything = store.list_events("t", Some(done.id + 100)).await.unwrap();
    assert_eq!(after_everything.len(), 1);
    assert_eq!(after_everything[0].event_type, EventType::Completion);
}

async fn complete_drops_secrets_and_appends_completion(store: &Store) {
    let lease = claimed(store, "t").await;
    let event = store
        .complete_task(
            &lease,
            TaskStatus::Failed,
            &json!({ "message": "Run completed with status: failed" }),
        )
        .await
        .unwrap();
    assert_eq!(event.event_type, EventType::Completion);
    assert_eq!(
        store.get_task("t").await.unwrap().unwrap().status,
        TaskStatus::Failed
    );
    assert!(
        store.secrets("t").await.unwrap().is_empty(),
        "secrets are gone when the task ends"
    );
}

async fn complete_twice_conflicts(store: &Store) {
    let lease = claimed(store, "t").await;
    store
        .complete_task(&lease, TaskStatus::Completed, &json!({}))
        .await
        .unwrap();
    let err = store
        .complete_task(&lease, TaskStatus::Completed, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    let completions = store.list_events("t", None).await.unwrap();
    assert_eq!(completions.len(), 1, "the failed completion wrote nothing");
}

async fn cancel_appends_event_and_drops_secrets(store: &Store) {
    store.create_task(new_task("t", None)).await.unwrap();
    let body =
        json!({ "message": "Step 0 has been cancelled.", "stepId": "0", "status": "cancelled" });
    let event = store.cancel_task("t", &body).await.unwrap();
    assert_eq!((event.event_type, event.body), (EventType::Cancelled, body));
    assert!(store.secrets("t").await.unwrap().is_empty());
    assert_eq!(
        store.get_task("t").await.unwrap().unwrap().status,
        TaskStatus::Open,
        "cancel leaves the status to the worker"
    );
    assert!(matches!(
        store.cancel_task("nope", &json!({})).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

async fn retry_reopens_only_ended_tasks(store: &Store) {
    store.create_task(new_task("t", None)).await.unwrap();
    let err = store.retry_task("t", Map::new(), "none").await.unwrap_err();
    assert_eq!(err.to_string(), "Task with taskId t cannot be retried");
    assert!(matches!(
        store
            .retry_task("nope", Map::new(), "none")
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));

    let lease = store.claim_task().await.unwrap().unwrap().lease;
    store
        .append_event(&lease, EventType::Log, &json!({ "message": "kept" }))
        .await
        .unwrap();
    store
        .cancel_task("t", &json!({ "message": "cancelled" }))
        .await
        .unwrap();
    store
        .complete_task(&lease, TaskStatus::Failed, &json!({ "message": "failed" }))
        .await
        .unwrap();

    let mut secrets = Map::new();
    secrets.insert("fresh".into(), json!("again"));
    let recovered = store.retry_task("t", secrets, "none").await.unwrap();
    assert_eq!(recovered.body, json!({ "recoverStrategy": "none" }));
    let task = store.get_task("t").await.unwrap().unwrap();
    assert_eq!(task.status, TaskStatus::Open);
    let types: Vec<EventType> = store
        .list_events("t", None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        vec![EventType::Log, EventType::Recovered],
        "cancelled and completion events are deleted"
    );
    assert_eq!(
        store.secrets("t").await.unwrap().get("fresh"),
        Some(&json!("again"))
    );
}

async fn a_claim_carries_saved_progress_and_cancellation(store: &Store) {
    let lease = claimed(store, "t").await;
    assert_eq!(lease.attempt, 1);
    let mut state = TaskState::default();
    state.complete_step("fetch", &json!({ "files": 2 }));
    store.write_state(&lease, &state).await.unwrap();
    store
        .set_checkpoint(
            &lease,
            "publish",
            "commit",
            &json!({ "status": "success", "value": 7 }),
        )
        .await
        .unwrap();
    state.set_checkpoint(
        "publish",
        "commit",
        json!({ "status": "success", "value": 7 }),
    );
    store
        .complete_task(&lease, TaskStatus::Failed, &json!({ "message": "failed" }))
        .await
        .unwrap();
    store.retry_task("t", Map::new(), "none").await.unwrap();
    let claim = store.claim_task().await.unwrap().expect("the retried task");
    assert_eq!(claim.lease.attempt, 2, "each claim is a new attempt");
    assert_eq!(
        claim.state, state,
        "the retry resumes after the saved step, with its checkpoints"
    );
    assert!(!claim.cancelled);

    // Cancelled while open (Backstage leaves the status to the worker).
    store.create_task(new_task("u", None)).await.unwrap();
    store
        .cancel_task("u", &json!({ "message": "stop" }))
        .await
        .unwrap();
    let claim = store
        .claim_task()
        .await
        .unwrap()
        .expect("the cancelled task");
    assert_eq!(claim.task.id, "u");
    assert!(claim.cancelled);
}

async fn start_over_recovery_trims_events(store: &Store) {
    let lease = claimed(store, "t").await;
    store
        .append_event(&lease, EventType::Log, &json!({ "message": "old" }))
        .await
        .unwrap();
    store
        .complete_task(&lease, TaskStatus::Failed, &json!({}))
        .await
        .unwrap();
    store
        .retry_task("t", Map::new(), "startOver")
        .await
        .unwrap();
    assert!(
        store.list_events("t", None).await.unwrap().is_empty(),
        "a trailing startOver recovery lists nothing"
    );
    let lease = store.claim_task().await.unwrap().unwrap().lease;
    store
        .append_event(&lease, EventType::Log, &json!({ "message": "new" }))
        .await
        .unwrap();
    let events = store.list_events("t", None).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, EventType::Recovered);
    assert_eq!(events[1].body["message"], "new");
}

async fn stale_tasks_are_recovered(store: &Store) {
    store.create_task(new_task("t", None)).await.unwrap();
    store.claim_task().await.unwrap();
    assert!(
        store.recover_stale_tasks(60_000).await.unwrap().is_empty(),
        "a fresh heartbeat is not stale"
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        store.recover_stale_tasks(10).await.unwrap(),
        vec!["t".to_owned()]
    );
    assert_eq!(
        store.get_task("t").await.unwrap().unwrap().status,
        TaskStatus::Open
    );
    let events = store.list_events("t", None).await.unwrap();
    assert_eq!(
        events.last().unwrap().body,
        json!({ "recoverStrategy": "none" })
    );
    assert_eq!(
        store.secrets("t").await.unwrap().get("token"),
        Some(&json!("s3cr3t")),
        "secrets survive for the resumed run"
    );
}

async fn step_state_and_checkpoints_persist(store: &Store) {
    let lease = claimed(store, "t").await;
    let mut state = store.task_state("t").await.unwrap();
    assert_eq!(state, TaskState::default());
    state.complete_step("fetch", &json!({ "files": 2 }));
    store.write_state(&lease, &state).await.unwrap();
    let value = json!({ "status": "success", "value": "https://x" });
    store
        .set_checkpoint(&lease, "publish", "create.repo", &json!("first"))
        .await
        .unwrap();
    store
        .set_checkpoint(&lease, "publish", "create.repo", &value)
        .await
        .unwrap();
    // Writing the steps again leaves the checkpoints, which live in rows of their own.
    store.write_state(&lease, &state).await.unwrap();

    let stored = store.task_state("t").await.unwrap();
    assert_eq!(
        serde_json::to_value(&stored.steps["fetch"]).unwrap(),
        json!({ "status": "completed", "output": { "files": 2 } })
    );
    // Backstage's key, so state written by either can be read by the other.
    assert_eq!(
        stored.checkpoints,
        Map::from_iter([(
            "v1.task.checkpoint.publish.create.repo".to_owned(),
            value.clone()
        )])
    );
    assert_eq!(stored.checkpoint("publish", "create.repo"), Some(&value));
    assert_eq!(stored.checkpoint("publish", "other"), None);
}

async fn state_and_events_are_written_together(store: &Store) {
    let lease = claimed(store, "t").await;
    let mut state = TaskState::default();
    state.complete_step("fetch", &json!({ "files": 2 }));
    let bodies = [
        json!({ "message": "Finished step fetch" }),
        json!({ "message": "Beginning step publish" }),
    ];
    let events = store
        .write_state_and_log_events(&lease, &state, &bodies)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| &e.body).collect::<Vec<_>>(),
        bodies.iter().collect::<Vec<_>>(),
        "returned in order"
    );
    assert!(events.iter().all(|e| e.event_type == EventType::Log));
    let listed = store.list_events("t", None).await.unwrap();
    assert_eq!(listed, events);
    assert_eq!(store.task_state("t").await.unwrap(), state);

    // Without events it is a state write.
    state.complete_step("publish", &json!({}));
    let events = store
        .write_state_and_log_events(&lease, &state, &[])
        .await
        .unwrap();
    assert!(events.is_empty());
    assert_eq!(store.task_state("t").await.unwrap(), state);
}

async fn added_secrets_are_kept_until_the_end(store: &Store) {
    let lease = claimed(store, "t").await;
    store.add_secret(&lease, "db-password", "pw").await.unwrap();
    let secrets = store.secrets("t").await.unwrap();
    assert_eq!(
        (secrets.get("token"), secrets.get("db-password")),
        (Some(&json!("s3cr3t")), Some(&json!("pw")))
    );
    store
        .complete_task(&lease, TaskStatus::Completed, &json!({}))
        .await
        .unwrap();
    assert!(store.secrets("t").await.unwrap().is_empty());
}

async fn heartbeat_only_while_processing(store: &Store) {
    let lease = claimed(store, "t").await;
    store.heartbeat(&lease).await.unwrap();
    store
        .complete_task(&lease, TaskStatus::Completed, &json!({}))
        .await
        .unwrap();
    let err = store.heartbeat(&lease).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
}

/// A run paused past the stale timeout: its task was recovered and claimed again, and
/// every write of the old claim is refused and leaves nothing, while the new claim's go
/// through.
async fn a_lost_lease_writes_nothing(store: &Store) {
    let old = claimed(store, "t").await;
    store
        .append_event(
            &old,
            EventType::Log,
            &json!({ "message": "before the pause" }),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(store.recover_stale_tasks(10).await.unwrap(), ["t"]);

    // Recovered, not claimed yet: the old claim is already out.
    let lost = |err: StoreError| {
        assert!(
            matches!(err, StoreError::LeaseLost { attempt: 1, .. }),
            "{err}"
        )
    };
    lost(store.heartbeat(&old).await.unwrap_err());
    let new = store
        .claim_task()
        .await
        .unwrap()
        .expect("the recovered task")
        .lease;
    assert_eq!(new.attempt, 2);

    let body = json!({ "message": "from the old claim" });
    lost(store.heartbeat(&old).await.unwrap_err());
    lost(
        store
            .append_event(&old, EventType::Log, &body)
            .await
            .unwrap_err(),
    );
    lost(
        store
            .append_log_events(&old, &[body.clone(), body.clone()])
            .await
            .unwrap_err(),
    );
    let mut state = TaskState::default();
    state.complete_step("late", &json!({}));
    lost(store.write_state(&old, &state).await.unwrap_err());
    lost(
        store
            .write_state_and_log_events(&old, &state, std::slice::from_ref(&body))
            .await
            .unwrap_err(),
    );
    lost(
        store
            .set_checkpoint(&old, "late", "k", &json!(1))
            .await
            .unwrap_err(),
    );
    lost(store.add_secret(&old, "late", "value").await.unwrap_err());
    lost(
        store
            .complete_task(&old, TaskStatus::Completed, &json!({}))
            .await
            .unwrap_err(),
    );

    let events = store.list_events("t", None).await.unwrap();
    assert!(
        events.iter().all(|e| e.body != body),
        "no event of the old claim after the recovery: {events:?}"
    );
    let saved = store.task_state("t").await.unwrap();
    assert_eq!(
        saved,
        TaskState::default(),
        "no state or checkpoint of the old claim"
    );
    assert_eq!(store.secrets("t").await.unwrap().get("late"), None);
    assert_eq!(
        store.get_task("t").await.unwrap().unwrap().status,
        TaskStatus::Processing
    );

    store.heartbeat(&new).await.unwrap();
    store
        .append_event(&new, EventType::Log, &json!({ "message": "new" }))
        .await
        .unwrap();
    store
        .complete_task(&new, TaskStatus::Completed, &json!({}))
        .await
        .unwrap();
    assert_eq!(
        store.get_task("t").await.unwrap().unwrap().status,
        TaskStatus::Completed
    );
}
