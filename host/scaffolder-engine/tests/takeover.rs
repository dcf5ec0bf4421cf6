//! A run and the database under it, on PostgreSQL: a run that lost its task (taken over
//! by another replica) stops at once and writes nothing more; a connection cut shorter
//! than the stale timeout pauses the run's writes instead of dropping them; a replica that
//! cannot heartbeat until its task may be taken over stops the run itself; a step acts
//! only once its beginning is recorded.
//!
//! The engine reaches the database through a TCP proxy on loopback that the test can
//! cut; "another replica" is a second store straight on the database.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use scaffolder_engine::{
    ActionRegistry, Engine, EngineConfig, TaskSpec, WorkspaceStore, WorkspaceStoreConfig,
};
use scaffolder_runtime::{PluginConfig, Runtime, RuntimeConfig};
use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{Backend, EventRecord, EventType, SecretsKey, Store, TaskStatus};
use serde_json::{Map, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(&RuntimeConfig {
            cache_dir: Some(std::env::temp_dir().join("scaffolder-test-compile-cache")),
            ..RuntimeConfig::default()
        })
        .expect("creating the runtime")
    })
}

/// A TCP proxy to PostgreSQL that can be cut: every open connection is closed and new
/// ones are closed at once until it is restored.
struct Proxy {
    port: u16,
    cut: Arc<Mutex<CancellationToken>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let accept = tokio::spawn({
            let cut = cut.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let token = cut.lock().unwrap().clone();
                    if token.is_cancelled() {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        let (mut client, mut server) = (client, server);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            () = token.cancelled() => {}
                        }
                    });
                }
            }
        });
        Self { port, cut, accept }
    }

    /// Closes every connection and refuses new ones.
    fn cut(&self) {
        self.cut.lock().unwrap().cancel();
    }

    fn restore(&self) {
        *self.cut.lock().unwrap() = CancellationToken::new();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// An engine running the friendly test plugin's actions, one task at a time, on a
/// fresh PostgreSQL database reached through a [`Proxy`], and a second store on the same
/// database (another replica).
struct Replica {
    engine: Engine,
    proxy: Proxy,
    other: Store,
    shutdown: CancellationToken,
    workers: JoinHandle<()>,
    /// `None` for a replica started beside another, which owns the database.
    database: Option<TestDatabase>,
    workdir: tempfile::TempDir,
}

impl Replica {
    async fn start(stale_timeout: Duration) -> Self {
        Self::start_saving(stale_timeout, false).await
    }

    /// With `save_workspaces`, workspaces are saved to the task database.
    async fn start_saving(stale_timeout: Duration, save_workspaces: bool) -> Self {
        let database = TestDatabase::new(Backend::Postgres).await;
        let (url, key) = (database.url.clone(), database.secrets_key.clone());
        Self::start_on(&url, key, Some(database), stale_timeout, save_workspaces).await
    }

    /// Another replica on this one's database, with a working directory of its own.
    async fn start_beside(&self, stale_timeout: Duration, save_workspaces: bool) -> Self {
        let database = self
            .database
            .as_ref()
            .expect("the replica owns its database");
        let (url, key) = (database.url.clone(), database.secrets_key.clone());
        Self::start_on(&url, key, None, stale_timeout, save_workspaces).await
    }

    async fn start_on(
        url: &str,
        secrets_key: SecretsKey,
        database: Option<TestDatabase>,
        stale_timeout: Duration,
        save_workspaces: bool,
    ) -> Self {
        // `postgres://[user@]host:port/database`
        let authority = url.split('/').nth(2).expect("a PostgreSQL URL");
        let upstream = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host)
            .to_owned();
        let proxy = Proxy::start(upstream.clone()).await;
        let proxied = url.replacen(&upstream, &format!("127.0.0.1:{}", proxy.port), 1);
        let store = Store::connect_with(&proxied, Some(secrets_key.clone()))
            .await
            .unwrap();
        let other = Store::connect_with(url, Some(secrets_key)).await.unwrap();
        let plugin = runtime()
            .load_file(
                Path::new(scaffolder_test_artifacts::FRIENDLY_GUEST),
                PluginConfig::default(),
            )
            .await
            .unwrap();
        let workdir = tempfile::tempdir().unwrap();
        let workspace_store = save_workspaces.then(|| {
            WorkspaceStore::new(store.clone(), &WorkspaceStoreConfig::database()).unwrap()
        });
        let config = EngineConfig {
            concurrent_tasks_limit: 1,
            recovery_stale_timeout: Some(stale_timeout),
            workspace_store,
            ..EngineConfig::new(workdir.path().to_path_buf())
        };
        let engine = Engine::new(
            store,
            ActionRegistry::new([Arc::new(plugin)]).unwrap(),
            config,
        );
        let shutdown = CancellationToken::new();
        let workers = tokio::spawn({
            let (engine, shutdown) = (engine.clone(), shutdown.clone());
            async move { engine.run_workers(shutdown).await }
        });
        Self {
            engine,
            proxy,
            other,
            shutdown,
            workers,
            database,
            workdir,
        }
    }

    async fn create(&self, steps: serde_json::Value) -> String {
        self.create_with_output(steps, json!({})).await
    }

    async fn create_with_output(
        &self,
        steps: serde_json::Value,
        output: serde_json::Value,
    ) -> String {
        let spec: TaskSpec = serde_json::from_value(json!({
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "steps": steps,
            "output": output,
        }))
        .unwrap();
        self.engine
            .create_task(&spec, None, Map::new())
            .await
            .unwrap()
            .id
            .to_string()
    }

    /// The task's events, read straight from the database.
    async fn events(&self, task_id: &str) -> Vec<EventRecord> {
        self.other.list_events(task_id, None).await.unwrap()
    }

    async fn wait_for(&self, task_id: &str, what: &str, found: impl Fn(&EventRecord) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.events(task_id).await.iter().any(&found) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} for task {task_id}: {:#?}",
                self.events(task_id).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_until_ended(&self, task_id: &str) -> TaskStatus {
        self.wait_for(task_id, "completion", |e| {
            e.event_type == EventType::Completion
        })
        .await;
        self.other.get_task(task_id).await.unwrap().unwrap().status
    }

    async fn finish(self) {
        self.shutdown.cancel();
        let _ = self.workers.await;
        self.engine.store().close().await;
        self.other.close().await;
        drop(self.proxy);
        if let Some(database) = self.database {
            database.finish().await;
        }
    }
}

fn message(event: &EventRecord) -> &str {
    event.body["message"].as_str().unwrap_or("")
}

fn sleep_then_write(millis: u64) -> serde_json::Value {
    json!([
        { "id": "sleep", "name": "Sleep", "action": "friendly:sleep", "input": { "millis": millis } },
        { "id": "write", "name": "Write", "action": "friendly:write-file",
          "input": { "path": "after.txt", "content": "written" } },
    ])
}

/// Another replica recovers the task (as if this one had paused past the stale timeout)
/// and claims it while its 20 s step runs here: the run here stops at its next write
/// (the heartbeat), its slot is free for another task long before the step would have
/// ended, and it records nothing after the takeover.
#[tokio::test]
async fn a_run_that_lost_its_task_stops_at_once_and_writes_nothing() {
    let replica = Replica::start(Duration::from_secs(30)).await;
    let task = replica.create(sleep_then_write(20_000)).await;
    replica
        .wait_for(&task, "Beginning step Sleep", |e| {
            message(e) == "Beginning step Sleep"
        })
        .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        replica.other.recover_stale_tasks(0).await.unwrap(),
        std::slice::from_ref(&task)
    );
    let taken = replica
        .other
        .claim_task()
        .await
        .unwrap()
        .expect("the recovered task");
    assert_eq!(taken.lease.attempt, 2);
    let recovered_at = replica.events(&task).await.last().unwrap().id;

    let next = replica
        .create(json!([{ "id": "noop", "action": "friendly:noop" }]))
        .await;
    let started = Instant::now();
    assert_eq!(replica.wait_until_ended(&next).await, TaskStatus::Completed);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the only slot stayed busy: the lost run was not stopped ({:?})",
        started.elapsed()
    );

    let after: Vec<_> = replica
        .events(&task)
        .await
        .into_iter()
        .filter(|e| e.id > recovered_at)
        .collect();
    assert!(after.is_empty(), "the lost run wrote {after:#?}");
    // The new holder's writes go through, and end the task.
    replica
        .other
        .complete_task(&taken.lease, TaskStatus::Completed, &json!({}))
        .await
        .unwrap();
    replica.finish().await;
}

/// The database is unreachable for 2.5 s while a step ends (stale timeout 10 s): the
/// run's writes wait and are retried, and the task completes with every event.
#[tokio::test]
async fn event_writes_wait_out_a_dropped_connection() {
    let replica = Replica::start(Duration::from_secs(10)).await;
    let task = replica.create(sleep_then_write(1_000)).await;
    replica
        .wait_for(&task, "Beginning step Sleep", |e| {
            message(e) == "Beginning step Sleep"
        })
        .await;
    replica.proxy.cut();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    replica.proxy.restore();

    assert_eq!(replica.wait_until_ended(&task).await, TaskStatus::Completed);
    let messages: Vec<String> = replica
        .events(&task)
        .await
        .iter()
        .map(|e| message(e).to_owned())
        .collect();
    for expected in [
        "Beginning step Sleep",
        "Finished step Sleep",
        "Beginning step Write",
        "Finished step Write",
        "Run completed with status: completed",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected:?} is missing: {messages:#?}"
        );
    }
    assert!(
        !replica
            .events(&task)
            .await
            .iter()
            .any(|e| e.event_type == EventType::Recovered),
        "a cut shorter than the stale timeout is no takeover"
    );
    replica.finish().await;
}

/// The database is unreachable for longer than the stale timeout (3 s) while a step
/// runs: the run stops itself while the database is still away (one heartbeat interval
/// before another replica may take the task over), instead of carrying on until the
/// connection is back; the task is then recovered and completed.
#[tokio::test]
async fn a_replica_that_cannot_heartbeat_stops_its_run() {
    let replica = Replica::start(Duration::from_secs(3)).await;
    let task = replica.create(sleep_then_write(4_000)).await;
    replica
        .wait_for(&task, "Beginning step Sleep", |e| {
            message(e) == "Beginning step Sleep"
        })
        .await;
    replica.proxy.cut();
    let cut_at = Instant::now();
    while !replica.engine.running_tasks().is_empty() {
        assert!(
            cut_at.elapsed() < Duration::from_millis(4_500),
            "the run still goes on {:?} after the database went away",
            cut_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut_at.elapsed())).await;
    replica.proxy.restore();

    assert_eq!(replica.wait_until_ended(&task).await, TaskStatus::Completed);
    let events = replica.events(&task).await;
    let recovered = events
        .iter()
        .position(|e| e.event_type == EventType::Recovered)
        .unwrap_or_else(|| panic!("the run carried on instead of stopping: {events:#?}"));
    let begun = |from: usize| {
        events[from..]
            .iter()
            .filter(|e| message(e) == "Beginning step Sleep")
            .count()
    };
    assert_eq!(
        (begun(0), begun(recovered)),
        (2, 1),
        "the step ran again after the recovery, and only then: {events:#?}"
    );
    replica.finish().await;
}

/// Replica A writes a file, then is cut off from the database in the middle of the next
/// step; replica B, with an empty working directory of its own, takes the task over. It
/// restores the workspace saved after the completed step, so the step that reads the
/// file finds it, and the task completes with its content.
#[tokio::test]
async fn a_task_taken_over_finds_the_files_of_its_completed_steps() {
    let stale = Duration::from_secs(3);
    let a = Replica::start_saving(stale, true).await;
    let task = a
        .create_with_output(
            json!([
                { "id": "write", "name": "Write", "action": "friendly:write-file",
                  "input": { "path": "nested/kept.txt", "content": "from replica A" } },
                { "id": "sleep", "name": "Sleep", "action": "friendly:sleep", "input": { "millis": 8_000 } },
                { "id": "read", "name": "Read", "action": "friendly:read-file",
                  "input": { "path": "nested/kept.txt" } },
            ]),
            json!({ "content": "${{ steps.read.output.content }}" }),
        )
        .await;
    a.wait_for(&task, "Beginning step Sleep", |e| {
        message(e) == "Beginning step Sleep"
    })
    .await;
    // B shares the database, not the files.
    let b = a.start_beside(stale, true).await;
    a.proxy.cut();

    assert_eq!(b.wait_until_ended(&task).await, TaskStatus::Completed);
    let events = b.events(&task).await;
    assert!(
        events.iter().any(|e| e.event_type == EventType::Recovered),
        "{events:#?}"
    );
    let completion = events.last().unwrap();
    assert_eq!(
        completion.body["output"],
        json!({ "content": "from replica A" }),
        "{events:#?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| message(e) == "Beginning step Write")
            .count(),
        1,
        "the completed step did not run again: {events:#?}"
    );
    b.finish().await;
    a.finish().await;
}

/// A step acts only once the log says it began (as Backstage awaits its `Beginning step`
/// event): with the event log locked by another transaction when the task is claimed,
/// the first step's action does not run (its file does not appear in the run's
/// workspace) until the lock is released and the step's beginning can be recorded. A
/// replica paused between the two would otherwise act for a task with no trace of it in
/// the log another replica takes the task over from.
#[tokio::test]
async fn a_step_acts_only_after_its_beginning_is_recorded() {
    let replica = Replica::start(Duration::from_secs(30)).await;
    let held = replica
        .database
        .as_ref()
        .expect("the replica owns its database")
        .hold_event_writes()
        .await;
    let task = replica
        .create(json!([
            { "id": "write", "name": "Write", "action": "friendly:write-file",
              "input": { "path": "first.txt", "content": "written" } },
            { "id": "sleep", "name": "Sleep", "action": "friendly:sleep", "input": { "millis": 1_000 } },
        ]))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica.other.get_task(&task).await.unwrap().unwrap().status != TaskStatus::Processing {
        assert!(Instant::now() < deadline, "the task was not claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let file = replica.workdir.path().join(&task).join("first.txt");
    let claimed = Instant::now();
    while claimed.elapsed() < Duration::from_secs(1) {
        assert!(
            !file.exists(),
            "the step wrote its file {:?} after the claim, before its beginning was recorded",
            claimed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(replica.events(&task).await.is_empty());

    held.release().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "the step did not run once the lock was released: {:#?}",
            replica.events(&task).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(replica.wait_until_ended(&task).await, TaskStatus::Completed);
    assert!(
        replica
            .events(&task)
            .await
            .iter()
            .any(|e| message(e) == "Beginning step Write")
    );
    replica.finish().await;
}
