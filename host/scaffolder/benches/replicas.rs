//! Replica benchmark (`cargo bench -p scaffolder --bench replicas`, issue 18): 1, 2 and 3
//! release `scaffolder serve` replicas, each with its own data directory, on one fresh
//! PostgreSQL database (127.0.0.1:5432, as the tests use; `SCAFFOLDER_TEST_POSTGRES_URL`
//! names another). For each count it measures:
//!
//! - tasks/s: [`THROUGHPUT_TASKS`] tasks of the 4-step `bench` template created across
//!   the replicas at once, until the last one has ended;
//! - event latency: tasks of `replica-ticks` (`fixtures/replicas/`) followed on an event
//!   stream (SSE) of every replica; an event's latency is its arrival minus its
//!   `createdAt`, "cross" when the stream's replica is not the one running the task;
//! - takeover: the replica running a task is killed with SIGKILL during its wait step;
//!   the time from the kill to another replica's `recovered` event, and to its
//!   `Beginning step` of the interrupted step (stale timeout [`STALE_TIMEOUT_SECS`] s, the
//!   least the configuration accepts).
//!
//! Prints a table; asserts nothing about speed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::replicas::{Replica, created_ms, start_all};
use common::{get, post};
use scaffolder_store::Backend;
use scaffolder_store::testing::TestDatabase;
use serde_json::{Value as Json, json};

const THROUGHPUT_TASKS: usize = 300;
/// Rounds of [`LATENCY_TASKS_PER_ROUND`] `replica-ticks` tasks followed at once.
const LATENCY_ROUNDS: usize = 10;
const LATENCY_TASKS_PER_ROUND: usize = 3;
/// Kills per replica count (with two or more replicas).
const TAKEOVERS: usize = 5;
const STALE_TIMEOUT_SECS: u64 = 3;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list; this bench has no tests.
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    for replicas in 1..=3 {
        let row = measure(&runtime, replicas);
        eprintln!("{replicas} replica(s) measured");
        rows.push(row);
    }
    println!(
        "\nreplicas on one PostgreSQL ({THROUGHPUT_TASKS} tasks for tasks/s; stale timeout {STALE_TIMEOUT_SECS} s)"
    );
    println!(
        "{:<9} {:>8}   {:>28}   {:>28}   {:>22}   {:>22}",
        "replicas",
        "tasks/s",
        "same-replica event p50/p99",
        "cross-replica event p50/p99",
        "takeover: recovered",
        "takeover: next step"
    );
    for row in &rows {
        println!(
            "{:<9} {:>8.1}   {:>28}   {:>28}   {:>22}   {:>22}",
            row.replicas,
            row.tasks_per_sec,
            Summary::of(&row.same).text("ms"),
            Summary::of(&row.cross).text("ms"),
            Summary::of(&row.recovered).text("s"),
            Summary::of(&row.resumed).text("s"),
        );
    }
    println!("(issue 18, before: cross-replica events ~1.0 s behind (polling), same replica 2 ms)");
}

/// One replica count's figures; latencies in milliseconds, takeovers in seconds.
struct Row {
    replicas: usize,
    tasks_per_sec: f64,
    same: Vec<f64>,
    cross: Vec<f64>,
    recovered: Vec<f64>,
    resumed: Vec<f64>,
}

fn measure(runtime: &tokio::runtime::Runtime, count: usize) -> Row {
    let database = runtime.block_on(TestDatabase::new(Backend::Postgres));
    let scaffolder =
        format!("  taskRecovery:\n    staleTimeout: {{ seconds: {STALE_TIMEOUT_SECS} }}\n");
    let key = database.secrets_key.to_base64();
    let mut replicas: Vec<Replica> = (1..=count)
        .map(|i| {
            Replica::new(
                &format!("r{i}"),
                &database.url,
                &key,
                &fixtures(),
                &scaffolder,
            )
        })
        .collect();
    start_all(&mut replicas);

    let tasks_per_sec = throughput(&replicas);
    let (same, cross) = latency(runtime, &replicas);
    let (recovered, resumed) = if count > 1 {
        takeovers(&mut replicas)
    } else {
        (Vec::new(), Vec::new())
    };
    drop(replicas);
    runtime.block_on(database.finish());
    Row {
        replicas: count,
        tasks_per_sec,
        same,
        cross,
        recovered,
        resumed,
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures")
}

/// Creates a task on `base`; its id.
fn create(base: &str, template: &str, values: Json) -> String {
    let (status, body) = post(
        base,
        "/v2/tasks",
        json!({ "templateRef": template, "values": values }),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Tasks per second of [`THROUGHPUT_TASKS`] `bench` tasks created round-robin on the
/// replicas, from the first creation to the last task's end.
fn throughput(replicas: &[Replica]) -> f64 {
    let started = Instant::now();
    for i in 0..THROUGHPUT_TASKS {
        let base = &replicas[i % replicas.len()].server().base;
        create(
            base,
            "template:default/bench",
            json!({ "name": format!("svc-{i}") }),
        );
    }
    let base = &replicas[0].server().base;
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(base, "status=open&status=processing") > 0 {
        assert!(
            Instant::now() < deadline,
            "tasks still running after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed();
    let failed = count(base, "status=failed");
    if failed > 0 {
        eprintln!("warning: {failed} of the throughput tasks failed");
    }
    THROUGHPUT_TASKS as f64 / elapsed.as_secs_f64()
}

/// `totalTasks` of `GET /v2/tasks?<query>`.
fn count(base: &str, query: &str) -> u64 {
    let (status, body) = get(base, &format!("/v2/tasks?{query}&limit=1"));
    assert_eq!(status, 200, "{body}");
    body["totalTasks"].as_u64().unwrap_or(0)
}

/// Event latencies (ms) on streams of the replica running the task, and of the others.
fn latency(runtime: &tokio::runtime::Runtime, replicas: &[Replica]) -> (Vec<f64>, Vec<f64>) {
    let client = reqwest::Client::new();
    let (mut same, mut cross) = (Vec::new(), Vec::new());
    for round in 0..LATENCY_ROUNDS {
        // Each task waits half a second before its ticks: time for the streams to connect.
        let ids: Vec<String> = (0..LATENCY_TASKS_PER_ROUND)
            .map(|k| {
                let creator = &replicas[(round * LATENCY_TASKS_PER_ROUND + k) % replicas.len()];
                create(
                    &creator.server().base,
                    "template:default/replica-ticks",
                    json!({ "waitMillis": 500 }),
                )
            })
            .collect();
        let followed = runtime.block_on(async {
            let mut follows = Vec::new();
            for id in &ids {
                for replica in replicas {
                    let stream = follow(client.clone(), replica.server().base.clone(), id.clone());
                    follows.push((replica.name.clone(), tokio::spawn(stream)));
                }
            }
            let mut followed = Vec::new();
            for (stream_replica, follow) in follows {
                followed.push((stream_replica, follow.await.unwrap()));
            }
            followed
        });
        for (stream_replica, arrivals) in followed {
            let runner = arrivals
                .iter()
                .find_map(|a| runner(&a.message))
                .expect("the task's first step names its replica");
            let samples = if runner == stream_replica {
                &mut same
            } else {
                &mut cross
            };
            samples.extend(arrivals.iter().filter_map(Arrival::latency_ms));
        }
    }
    (same, cross)
}

/// An event as one stream received it.
struct Arrival {
    arrived_ms: f64,
    created_ms: i64,
    /// When the stream's response began: earlier events are sent from the store's
    /// first read and say nothing of latency.
    connected_ms: f64,
    message: String,
}

impl Arrival {
    fn latency_ms(&self) -> Option<f64> {
        (self.created_ms as f64 > self.connected_ms)
            .then(|| (self.arrived_ms - self.created_ms as f64).max(0.0))
    }
}

/// Reads `GET /v2/tasks/:id/eventstream` until the completion event.
async fn follow(client: reqwest::Client, base: String, id: String) -> Vec<Arrival> {
    let mut response = client
        .get(format!("{base}/v2/tasks/{id}/eventstream"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let connected_ms = now_ms();
    let mut arrivals = Vec::new();
    let mut buffer = String::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            let arrived_ms = now_ms();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                    continue;
                };
                let event: Json = serde_json::from_str(data).unwrap();
                let created_ms = created_ms(&event).expect("createdAt");
                arrivals.push(Arrival {
                    arrived_ms,
                    created_ms,
                    connected_ms,
                    message: event["body"]["message"].as_str().unwrap_or("").to_owned(),
                });
                if event["type"] == "completion" {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .unwrap_or_else(|_| panic!("no completion on {base} for {id} within a minute"));
    arrivals
}

/// SIGKILL of the replica running a task in its wait step: seconds until the `recovered`
/// event, and until the interrupted step begins again.
fn takeovers(replicas: &mut [Replica]) -> (Vec<f64>, Vec<f64>) {
    let (mut recovered, mut resumed) = (Vec::new(), Vec::new());
    for round in 0..TAKEOVERS {
        let base = replicas[round % replicas.len()].server().base.clone();
        let id = create(
            &base,
            "template:default/replica-ticks",
            json!({ "waitMillis": 60_000 }),
        );
        let events = wait_for(&base, &id, |events| events.iter().any(begins_wait));
        let runner = events
            .iter()
            .find_map(|e| runner(e["body"]["message"].as_str()?))
            .expect("the task's first step names its replica");
        let victim = replicas.iter().position(|r| r.name == runner).unwrap();
        replicas[victim].kill();
        let killed_ms = now_ms() as i64;
        let witness = replicas[(victim + 1) % replicas.len()]
            .server()
            .base
            .clone();
        let events = wait_for(&witness, &id, |events| {
            let recovery = events.iter().position(|e| e["type"] == "recovered");
            recovery.is_some_and(|at| events[at..].iter().any(begins_wait))
        });
        let at = events
            .iter()
            .position(|e| e["type"] == "recovered")
            .unwrap();
        let begun = events[at..].iter().find(|e| begins_wait(e)).unwrap();
        recovered.push((created_ms(&events[at]).unwrap() - killed_ms) as f64 / 1e3);
        resumed.push((created_ms(begun).unwrap() - killed_ms) as f64 / 1e3);
        let (status, body) = post(&witness, &format!("/v2/tasks/{id}/cancel"), json!({}));
        assert_eq!(status, 200, "{body}");
        replicas[victim].start();
    }
    (recovered, resumed)
}

/// The replica a `who` step's log line names (`run by r2`; the line with the step's
/// input as JSON names it too).
fn runner(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("run by ")?;
    Some(
        rest.chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect(),
    )
}

/// The event that says the `wait` step began.
fn begins_wait(event: &Json) -> bool {
    event["body"]["stepId"] == "wait" && event["body"]["status"] == "processing"
}

/// The task's events once `done` holds for them; panics after a minute.
fn wait_for(base: &str, id: &str, done: impl Fn(&[Json]) -> bool) -> Vec<Json> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, events) = get(base, &format!("/v2/tasks/{id}/events"));
        let events = events.as_array().cloned().unwrap_or_default();
        if done(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "{events:#?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// p50, p99 and the number of samples.
struct Summary(Option<(f64, f64, usize)>);

impl Summary {
    fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self(None);
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
        Self(Some((at(0.5), at(0.99), sorted.len())))
    }

    fn text(&self, unit: &str) -> String {
        match self.0 {
            None => "-".to_owned(),
            Some((p50, p99, n)) => format!("{p50:.1} / {p99:.1} {unit} (n={n})"),
        }
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}
