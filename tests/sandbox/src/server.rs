//! A whole scaffolder server in the test process, for attacks on what a plugin makes the
//! *host* do (store writes, events, descriptors, the dry run's file walk): the real API
//! router on loopback, the engine with its workers, SQLite in a temporary directory, the
//! hostile plugin under the test's grants and limits beside the friendly one.
//!
//! [`Watch`] samples what the suite promises about the host while an attack runs: the
//! process's peak resident memory and the worst latency of a fresh HTTP connection.
//!
//! Deliberately absent: PostgreSQL (the attacks are on the host, not on SQL) and the
//! built-in plugins.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scaffolder_api::auth::{AuthConfig, Authenticator};
use scaffolder_api::{ApiState, DirectoryTemplates};
use scaffolder_engine::{ActionRegistry, Engine, EngineConfig};
use scaffolder_runtime::PluginConfig;
use scaffolder_store::Store;
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;

use crate::load;

/// A running server; [`Server::finish`] stops it.
pub struct Server {
    /// `http://127.0.0.1:<port>/api/scaffolder`
    pub base: String,
    /// The SQLite database file.
    pub database: PathBuf,
    /// Where task and dry-run workspaces go.
    pub working_directory: PathBuf,
    client: reqwest::Client,
    templates: PathBuf,
    store: Store,
    shutdown: CancellationToken,
    workers: tokio::task::JoinHandle<()>,
    _root: tempfile::TempDir,
}

/// The template every server has: one friendly step that writes and reads back a file.
pub const FRIENDLY_TEMPLATE: &str = "friendly";

impl Server {
    /// Starts a server with the hostile guest configured by `hostile` and the friendly
    /// guest with default grants and limits.
    pub async fn start(hostile: PluginConfig) -> Self {
        let root = tempfile::Builder::new()
            .prefix("scaffolder-hostile-server-")
            .tempdir()
            .unwrap();
        let database = root.path().join("scaffolder.sqlite");
        let working_directory = root.path().join("work");
        let templates = root.path().join("templates");
        std::fs::create_dir_all(&working_directory).unwrap();
        std::fs::create_dir_all(&templates).unwrap();

        let store = Store::connect(&format!("sqlite://{}", database.display()))
            .await
            .expect("connecting to SQLite");
        let plugins = vec![
            Arc::new(load(scaffolder_test_artifacts::HOSTILE_GUEST, hostile).await),
            Arc::new(
                load(
                    scaffolder_test_artifacts::FRIENDLY_GUEST,
                    PluginConfig::default(),
                )
                .await,
            ),
        ];
        let actions = ActionRegistry::new(plugins).expect("unique action ids");
        let config = EngineConfig {
            concurrent_tasks_limit: 4,
            ..EngineConfig::new(working_directory.clone())
        };
        let engine = Engine::new(store.clone(), actions, config);
        let shutdown = CancellationToken::new();
        let state = ApiState {
            engine: engine.clone(),
            templates: Arc::new(DirectoryTemplates::new(vec![templates.clone()])),
            auth: Authenticator::new(AuthConfig {
                allow_anonymous: true,
                ..AuthConfig::default()
            }),
            shutdown: shutdown.clone(),
        };
        let app = scaffolder_api::app(state, None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        let workers = tokio::spawn({
            let engine = engine.clone();
            let shutdown = shutdown.clone();
            async move { engine.run_workers(shutdown).await }
        });
        let server = Self {
            base: format!("http://{address}/api/scaffolder"),
            database,
            working_directory,
            client: reqwest::Client::new(),
            templates,
            store,
            shutdown,
            workers,
            _root: root,
        };
        server.template(
            FRIENDLY_TEMPLATE,
            json!([
                {
                    "id": "write",
                    "action": "friendly:write-file",
                    "input": { "path": "ok.txt", "content": "still fine" }
                },
                { "id": "read", "action": "friendly:read-file", "input": { "path": "ok.txt" } }
            ]),
            json!({ "content": "${{ steps.read.output.content }}" }),
        );
        server
    }

    /// Writes the template `name` (`template:default/<name>`) with these steps and
    /// `spec.output`.
    pub fn template(&self, name: &str, steps: Json, output: Json) {
        let entity = template_entity(name, steps, output);
        // Block keys (the template source looks for a `kind:` line), JSON values (JSON
        // is YAML).
        let yaml: String = entity
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| format!("{key}: {value}\n"))
            .collect();
        std::fs::write(self.templates.join(format!("{name}.yaml")), yaml).unwrap();
    }

    /// Stops the workers and the listener, and closes the database.
    pub async fn finish(self) {
        self.shutdown.cancel();
        let _ = self.workers.await;
        self.store.close().await;
    }

    /// `(status, JSON body)`; a body that is not JSON comes back as a string.
    pub async fn get(&self, path: &str) -> (u16, Json) {
        send(self.client.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// Creates a task of the template `name`; returns its id.
    pub async fn create_task(&self, name: &str, values: Json, secrets: Json) -> String {
        let (status, body) = self
            .post(
                "/v2/tasks",
                json!({
                    "templateRef": format!("template:default/{name}"),
                    "values": values,
                    "secrets": secrets,
                }),
            )
            .await;
        assert_eq!(status, 201, "creating a task of {name}: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Every event of the task, following `/events` until the completion event (at most
    /// `within`).
    pub async fn events_until_completion(&self, task_id: &str, within: Duration) -> Vec<Json> {
        let deadline = Instant::now() + within;
        let mut events: Vec<Json> = Vec::new();
        loop {
            let after = events
                .last()
                .and_then(|e| e["id"].as_i64())
                .map(|id| format!("?after={id}"))
                .unwrap_or_default();
            let (status, batch) = self
                .get(&format!("/v2/tasks/{task_id}/events{after}"))
                .await;
            assert_eq!(status, 200, "events of {task_id}: {batch}");
            events.extend(batch.as_array().unwrap().iter().cloned());
            if events.iter().any(|e| e["type"] == "completion") {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "task {task_id} did not complete within {within:?}; last events: {:#?}",
                &events[events.len().saturating_sub(5)..]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the task has an event matching `predicate`.
    pub async fn wait_for_event(&self, task_id: &str, predicate: impl Fn(&Json) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, events) = self.get(&format!("/v2/tasks/{task_id}/events")).await;
            if events.as_array().into_iter().flatten().any(&predicate) {
                return;
            }
            assert!(Instant::now() < deadline, "no matching event: {events:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The friendly task, created within 1 s and completed: the database and the
    /// workers still work.
    pub async fn assert_still_works(&self) {
        let started = Instant::now();
        let id = self
            .create_task(FRIENDLY_TEMPLATE, json!({}), json!({}))
            .await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "creating a task took {took:?}"
        );
        let events = self
            .events_until_completion(&id, Duration::from_secs(10))
            .await;
        let completion = completion(&events);
        assert_eq!(
            completion["message"], "Run completed with status: completed",
            "a task after the attack: {completion:#}"
        );
        assert_eq!(completion["output"]["content"], "still fine");
    }

    /// Starts watching the host: peak RSS and probe latency.
    pub fn watch(&self) -> Watch {
        Watch::start(format!("{}/v2/tasks", self.base))
    }
}

/// The completion event of a task's events.
pub fn completion(events: &[Json]) -> &Json {
    &events
        .iter()
        .find(|e| e["type"] == "completion")
        .expect("a completion event")["body"]
}

/// A template entity with `steps` and `spec.output`.
pub fn template_entity(name: &str, steps: Json, output: Json) -> Json {
    json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": { "name": name },
        "spec": { "type": "service", "steps": steps, "output": output }
    })
}

/// Samples the host while an attack runs: the test process's VmRSS and open descriptors
/// every 50 ms (a thread of its own, so a starved executor cannot hide a peak) and a
/// `GET` over a *new* connection every 100 ms (so a server that cannot `accept()` shows).
pub struct Watch {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<(u64, usize)>,
    probe: tokio::task::JoinHandle<Probes>,
}

/// What [`Watch`] saw.
#[derive(Debug)]
pub struct Watched {
    /// Peak resident memory of the test process, in bytes.
    pub peak_rss: u64,
    /// Peak number of open descriptors of the test process.
    pub peak_fds: usize,
    /// Probes sent.
    pub probes: usize,
    /// The slowest probe (a failed one counts as its time to fail).
    pub worst_probe: Duration,
    /// The first failed probe's error.
    pub probe_error: Option<String>,
}

impl Watched {
    /// The suite's promises about the host: RSS under 300 MiB, every probe answered
    /// within 1 s.
    pub fn assert_host_unharmed(&self) {
        eprintln!(
            "peak RSS {} MiB, {} descriptors; {} probes, the slowest {:?}",
            self.peak_rss >> 20,
            self.peak_fds,
            self.probes,
            self.worst_probe
        );
        assert!(self.probes > 0, "no probe was sent: {self:?}");
        assert!(self.probe_error.is_none(), "a probe failed: {self:?}");
        assert!(
            self.worst_probe < Duration::from_secs(1),
            "the server answered too slowly: {self:?}"
        );
        assert!(
            self.peak_rss < 300 << 20,
            "host RSS reached {} MiB: {self:?}",
            self.peak_rss >> 20
        );
    }
}

#[derive(Default)]
struct Probes {
    count: usize,
    worst: Duration,
    error: Option<String>,
}

impl Watch {
    fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let (mut rss, mut fds) = (0, 0);
                loop {
                    rss = rss_bytes().max(rss);
                    fds = open_descriptors().max(fds);
                    if stop.load(Ordering::Relaxed) {
                        return (rss, fds);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        let probe = tokio::spawn({
            let stop = stop.clone();
            async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let mut probes = Probes::default();
                loop {
                    let started = Instant::now();
                    let result = client.get(&url).send().await;
                    let result = match result {
                        Ok(response) if response.status().is_success() => response
                            .bytes()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        Ok(response) => Err(format!("status {}", response.status())),
                        Err(err) => Err(err.to_string()),
                    };
                    probes.worst = probes.worst.max(started.elapsed());
                    probes.count += 1;
                    if let Err(err) = result {
                        probes.error.get_or_insert(err);
                    }
                    if stop.load(Ordering::Relaxed) {
                        return probes;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self {
            stop,
            sampler,
            probe,
        }
    }

    /// Stops sampling (after one more probe) and returns what was seen.
    pub async fn stop(self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        let probes = self.probe.await.expect("the prober panicked");
        let (peak_rss, peak_fds) = self.sampler.join().expect("the sampler panicked");
        Watched {
            peak_rss,
            peak_fds,
            probes: probes.count,
            worst_probe: probes.worst,
            probe_error: probes.error,
        }
    }
}

/// The test process's resident set size, from `/proc/self/status`.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib << 10)
}

/// The test process's open descriptors, from `/proc/self/fd`.
pub fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Json) {
    let response = request.send().await.expect("sending the request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Json::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Json::String(text))
    };
    (status, body)
}

/// A path to `target` that climbs from any directory to `/` first, as a link target
/// relative to a workspace.
pub fn climbing_path(target: &Path) -> String {
    let relative = target.strip_prefix("/").unwrap_or(target);
    format!("{}{}", "../".repeat(32), relative.display())
}

/// The variable naming the test a child process of the test binary runs.
const OWN_PROCESS_TEST: &str = "SCAFFOLDER_TEST_IN_OWN_PROCESS";

/// Runs the test `name` in a fresh process of this test binary, so that what it measures
/// of the process (resident memory, descriptors) is its own server's and not what earlier
/// tests left behind. Returns `true` in that process, where the caller runs the test's
/// body; elsewhere returns `false` after the child passed (and panics with its output if
/// it failed).
pub async fn in_own_process(name: &str) -> bool {
    if std::env::var(OWN_PROCESS_TEST).is_ok_and(|test| test == name) {
        return true;
    }
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(OWN_PROCESS_TEST, name)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} failed in its own process ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The child's figures, for `--nocapture`.
    for line in stderr.lines().filter(|l| l.starts_with("peak RSS")) {
        eprintln!("{line}");
    }
    false
}
