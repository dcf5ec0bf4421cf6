//! The hostile-guest suite. Each test runs one attack of `tests/guests/hostile` next to a
//! well-behaved step of `tests/guests/friendly`, and checks that the attack ends as a
//! failed step whose message names the cause while the bystander completes.
//!
//! Attacks on the guest's own sandbox (paths, network, memory, time) run as single steps
//! of the runtime. Attacks on what a guest makes the *host* do (store writes, events,
//! descriptors, the dry run's walk of the workspace, disk) run as tasks of a whole server
//! in this process ([`Server`]), which must meanwhile keep its resident memory under
//! 300 MiB, answer a new HTTP connection within 1 s, complete a friendly task beside the
//! attack, and create and complete a new task afterwards.
//!
//! Tests take [`ONE_AT_A_TIME`], and each server test runs in a process of its own
//! ([`server_test`]): the memory measured is the whole process's.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use scaffolder_runtime::{Grants, Limits, PluginConfig, StepFailure, StepFailureKind};
use scaffolder_sandbox_tests::server::{
    FRIENDLY_TEMPLATE, Server, Watched, climbing_path, completion, in_own_process, template_entity,
};
use scaffolder_sandbox_tests::{CountingServer, load, request, run, workspace};
use scaffolder_test_artifacts::{FRIENDLY_GUEST, HOSTILE_GUEST};
use serde_json::{Value as Json, json};

/// Every action of the hostile guest, each with a test of the same name below.
const ATTACKS: &[&str] = &[
    "hostile:read-etc-passwd",
    "hostile:escape-dotdot",
    "hostile:absolute-path",
    "hostile:symlink-escape",
    "hostile:read-host-env",
    "hostile:tcp-ungranted",
    "hostile:http-ungranted",
    "hostile:http-rebound",
    "hostile:infinite-loop",
    "hostile:memory-bomb",
    "hostile:deep-recursion",
    "hostile:unreachable",
    "hostile:log-flood",
    "hostile:oversize-output",
    "hostile:secret-ungranted",
    "hostile:dry-run-symlink",
    "hostile:secret-loop",
    "hostile:empty-log-flood",
    "hostile:descriptor-hoard",
    "hostile:checkpoint-bomb",
    "hostile:output-secret",
    "hostile:dns-exfil",
    "hostile:exit-zero",
    "hostile:denial-flood",
    "hostile:ansi-log",
    "hostile:disk-fill",
    "hostile:denied-then-failed",
    "hostile:remember",
];

/// One test at a time, so each sees the process's memory as its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The hostile guest under [`limits`], with no grants.
async fn hostile_with_limits() -> scaffolder_runtime::Plugin {
    load(
        HOSTILE_GUEST,
        PluginConfig {
            limits: limits(),
            ..PluginConfig::default()
        },
    )
    .await
}

fn limits() -> Limits {
    Limits {
        memory_mib: 64,
        timeout_secs: 2,
        max_log_bytes: 64 << 10,
        max_output_bytes: 1 << 20,
        ..Limits::default()
    }
}

/// Runs `attack` while a friendly plugin writes and reads back a file in its own
/// workspace; asserts the bystander succeeded and returns the attack's failure.
async fn contained(
    attack: &str,
    input: serde_json::Value,
    grants: Grants,
    prepare: impl FnOnce(&std::path::Path),
) -> StepFailure {
    let _one = ONE_AT_A_TIME.lock().await;
    let hostile = load(
        HOSTILE_GUEST,
        PluginConfig {
            grants,
            limits: limits(),
            ..PluginConfig::default()
        },
    )
    .await;
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let hostile_ws = workspace();
    prepare(hostile_ws.path());
    let friendly_ws = workspace();

    let attack_run = run(&hostile, request(attack, input, hostile_ws.path()));
    let bystander = async {
        let (write, _) = run(
            &friendly,
            request(
                "friendly:write-file",
                json!({"path": "ok.txt", "content": "still fine"}),
                friendly_ws.path(),
            ),
        )
        .await;
        write.expect("the bystander's write succeeds");
        let (read, _) = run(
            &friendly,
            request(
                "friendly:read-file",
                json!({"path": "ok.txt"}),
                friendly_ws.path(),
            ),
        )
        .await;
        read.expect("the bystander's read succeeds")
    };
    let ((outcome, _host), read) = tokio::join!(attack_run, bystander);
    assert_eq!(read["content"], "still fine");
    outcome.expect_err("the attack must fail")
}

fn assert_failure(failure: &StepFailure, kind: StepFailureKind, needles: &[&str]) {
    assert_eq!(
        failure.kind, kind,
        "unexpected kind for: {}",
        failure.message
    );
    for needle in needles {
        assert!(
            failure.message.contains(needle),
            "expected {needle:?} in {:?}",
            failure.message
        );
    }
}

#[tokio::test]
async fn read_etc_passwd() {
    let failure = contained(
        "hostile:read-etc-passwd",
        json!({}),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &["access outside the workspace denied: /etc/passwd"],
    );
}

#[tokio::test]
async fn escape_dotdot() {
    let failure = contained(
        "hostile:escape-dotdot",
        json!({}),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &["access outside the workspace denied", "etc/passwd"],
    );
}

#[tokio::test]
async fn absolute_path() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("planted.txt");
    let failure = contained(
        "hostile:absolute-path",
        json!({ "path": target.display().to_string() }),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &[&format!(
            "access outside the workspace denied: {}",
            target.display()
        )],
    );
    assert!(!target.exists(), "the plugin wrote outside its workspace");
}

#[tokio::test]
async fn symlink_escape() {
    let failure = contained(
        "hostile:symlink-escape",
        json!({ "path": "escape/passwd" }),
        Grants::default(),
        |ws| std::os::unix::fs::symlink("/etc", ws.join("escape")).unwrap(),
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &["access outside the workspace denied: escape/passwd"],
    );
}

#[tokio::test]
async fn read_host_env() {
    // The test process has variables (PATH, CARGO_*); none may reach the guest.
    assert!(std::env::vars().count() > 0);
    let failure = contained(
        "hostile:read-host-env",
        json!({}),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Failed,
        &["0 variables, 0 arguments, empty stdin"],
    );
}

#[tokio::test]
async fn tcp_ungranted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let failure = contained(
        "hostile:tcp-ungranted",
        json!({ "address": addr.to_string() }),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &[&format!("TCP connection to {addr} denied")],
    );
    assert!(
        listener.accept().is_err(),
        "the connection reached the listener"
    );
}

#[tokio::test]
async fn http_ungranted() {
    let server = CountingServer::start().await;
    let failure = contained(
        "hostile:http-ungranted",
        json!({ "url": format!("http://127.0.0.1:{}/", server.port) }),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &[&format!(
            "outbound HTTP to http://127.0.0.1:{} denied: it is not granted to this plugin",
            server.port
        )],
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn http_rebound() {
    // The operator granted the *name* localhost; it resolves to 127.0.0.1, an internal
    // address the grant does not name, so the request must not be sent.
    let server = CountingServer::start().await;
    let failure = contained(
        "hostile:http-rebound",
        json!({ "url": format!("http://localhost:{}/", server.port) }),
        Grants {
            outbound_http: vec![format!("http://localhost:{}", server.port)],
            ..Grants::default()
        },
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &[
            "the name resolves to",
            "an internal address that is not granted",
        ],
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn infinite_loop() {
    let failure = contained(
        "hostile:infinite-loop",
        json!({}),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::Timeout,
        &["deadline of 2s exceeded"],
    );
}

#[tokio::test]
async fn memory_bomb() {
    let failure = contained("hostile:memory-bomb", json!({}), Grants::default(), |_| {}).await;
    assert_failure(
        &failure,
        StepFailureKind::OutOfMemory,
        &["memory limit of 64 MiB exceeded"],
    );
}

/// What a step held is accounted: a guest stopped at its memory cap reports (nearly) the
/// cap, a no-op a small fraction of it.
#[tokio::test]
async fn a_step_reports_the_linear_memory_it_held() {
    let _one = ONE_AT_A_TIME.lock().await;
    let hostile = hostile_with_limits().await;
    let ws = workspace();
    let (outcome, host) = run(
        &hostile,
        request("hostile:memory-bomb", json!({}), ws.path()),
    )
    .await;
    assert!(outcome.is_err());
    let held = host
        .usage()
        .expect("the ended step reports")
        .linear_memory_bytes;
    assert!((48 << 20..=64 << 20).contains(&held), "{held} bytes");

    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let (outcome, host) = run(&friendly, request("friendly:noop", json!({}), ws.path())).await;
    outcome.unwrap();
    let held = host
        .usage()
        .expect("the ended step reports")
        .linear_memory_bytes;
    assert!(held > 0 && held < 8 << 20, "{held} bytes");
}

/// Every step gets a fresh instance: what a step leaves in its memory is gone for the
/// next step of the same plugin, which the pooling allocator may give the same memory
/// (reset in place for its first MiB, returned to the kernel beyond).
#[tokio::test]
async fn remember() {
    let _one = ONE_AT_A_TIME.lock().await;
    let hostile = hostile_with_limits().await;
    let ws = workspace();
    for step in 0..3 {
        let (outcome, _) = run(&hostile, request("hostile:remember", json!({}), ws.path())).await;
        let output = outcome.expect("the action succeeds");
        assert_eq!(output["found"], json!([0, 0]), "step {step} found marks");
    }
}

#[tokio::test]
async fn deep_recursion() {
    let failure = contained(
        "hostile:deep-recursion",
        json!({}),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(&failure, StepFailureKind::Trap, &["stack overflow"]);
}

#[tokio::test]
async fn unreachable() {
    let failure = contained("hostile:unreachable", json!({}), Grants::default(), |_| {}).await;
    assert_failure(
        &failure,
        StepFailureKind::Trap,
        &["the plugin crashed", "unreachable"],
    );
}

#[tokio::test]
async fn log_flood() {
    let failure = contained("hostile:log-flood", json!({}), Grants::default(), |_| {}).await;
    assert_failure(
        &failure,
        StepFailureKind::LimitExceeded,
        &["log limit of 64 KiB exceeded"],
    );
}

#[tokio::test]
async fn oversize_output() {
    let failure = contained(
        "hostile:oversize-output",
        json!({}),
        Grants::default(),
        |_| {},
    )
    .await;
    assert_failure(
        &failure,
        StepFailureKind::LimitExceeded,
        &["exceeds the limit of 1 MiB"],
    );
}

#[tokio::test]
async fn secret_ungranted() {
    let _one = ONE_AT_A_TIME.lock().await;
    let hostile = hostile_with_limits().await;
    let ws = workspace();
    let mut req = request("hostile:secret-ungranted", json!({}), ws.path());
    req.secrets
        .insert("admin-password".into(), "hunter2".into());
    let (outcome, host) = run(&hostile, req).await;
    let failure = outcome.unwrap_err();
    assert_failure(
        &failure,
        StepFailureKind::Denied,
        &["secret 'admin-password' denied: it is not granted to this action"],
    );
    assert!(!failure.message.contains("hunter2"));
    assert!(host.lines().iter().all(|(_, l)| !l.contains("hunter2")));
}

/// Issue 20, item 1: a denial names the step's failure only when it plausibly caused
/// it. A plugin that shrugged a refusal off and then failed for a reason of its own
/// reports that reason; one that passes the refusal on, or crashes without a word, is
/// reported as denied, naming what was refused; one that explains the refusal in its
/// own words keeps them.
#[tokio::test]
async fn denied_then_failed() {
    let cases = [
        (
            "fail",
            StepFailureKind::Failed,
            "the git server answered HTTP 404: there is no repository at this URL",
        ),
        (
            "pass-on",
            StepFailureKind::Denied,
            "access outside the workspace denied: /.gitignore (the plugin reported: /.gitignore: Permission denied",
        ),
        (
            "explain",
            StepFailureKind::Denied,
            "this plugin may not read the host's /.gitignore",
        ),
        (
            "crash",
            StepFailureKind::Denied,
            "access outside the workspace denied: /.gitignore (then: the plugin crashed",
        ),
    ];
    for (then, kind, expected) in cases {
        let failure = contained(
            "hostile:denied-then-failed",
            json!({ "then": then }),
            Grants::default(),
            |_| {},
        )
        .await;
        assert_eq!(failure.kind, kind, "{then}: {}", failure.message);
        assert!(
            failure.message.starts_with(expected),
            "{then}: expected {expected:?}, got {:?}",
            failure.message
        );
    }
}

/// Attacks are added to the guest and to this suite together.
#[tokio::test]
async fn every_attack_has_a_test() {
    let hostile = load(HOSTILE_GUEST, PluginConfig::default()).await;
    let declared: Vec<&str> = hostile
        .info()
        .actions
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(declared, ATTACKS);
    let source = include_str!("hostile.rs");
    for attack in ATTACKS {
        let test_name = attack.trim_start_matches("hostile:").replace('-', "_");
        assert!(
            source.contains(&format!("async fn {test_name}()")),
            "{attack} has no test named {test_name}"
        );
    }
}

/// A guest spinning in a loop yields to the executor: on a single-threaded runtime a
/// concurrent step still finishes first.
#[tokio::test(flavor = "current_thread")]
async fn infinite_loop_does_not_block_the_executor() {
    let _one = ONE_AT_A_TIME.lock().await;
    let hostile = load(
        HOSTILE_GUEST,
        PluginConfig {
            limits: Limits {
                timeout_secs: 30,
                ..limits()
            },
            ..PluginConfig::default()
        },
    )
    .await;
    let friendly = load(FRIENDLY_GUEST, PluginConfig::default()).await;
    let (a, b) = (workspace(), workspace());
    let looping = run(
        &hostile,
        request("hostile:infinite-loop", json!({}), a.path()),
    );
    let quick = run(&friendly, request("friendly:noop", json!({}), b.path()));
    tokio::pin!(looping);
    let first = first_of(looping.as_mut(), quick).await;
    assert_eq!(first, "friendly", "the looping guest starved the executor");
}

async fn first_of<A, B, TA, TB>(a: A, b: B) -> &'static str
where
    A: Future<Output = TA>,
    B: Future<Output = TB>,
{
    tokio::select! {
        biased;
        _ = a => "hostile",
        _ = b => "friendly",
    }
}

// Attacks on the host, through a whole server.

/// Starts a test of a whole server: one at a time, in a fresh process of this binary
/// (see [`in_own_process`]). The child process gets the lock and runs the test's body;
/// the parent gets `None` once the child passed, and returns.
async fn server_test(name: &str) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    let one = ONE_AT_A_TIME.lock().await;
    in_own_process(name).await.then_some(one)
}

/// The limits the server's hostile plugin gets unless a test says otherwise: the
/// defaults, with a deadline short enough that a missing limit fails the test quickly.
fn server_limits() -> Limits {
    Limits {
        timeout_secs: 5,
        ..Limits::default()
    }
}

async fn server_with(limits: Limits, grants: Grants) -> Server {
    Server::start(PluginConfig {
        grants,
        limits,
        ..PluginConfig::default()
    })
    .await
}

/// A server whose template `attack` is the one step `attack` running `action`.
async fn attack_server(action: &str, input: Json, limits: Limits, grants: Grants) -> Server {
    let server = server_with(limits, grants).await;
    server.template(
        "attack",
        json!([{ "id": "attack", "action": action, "input": input }]),
        json!({}),
    );
    server
}

/// What an attack task did.
struct Attack {
    events: Vec<Json>,
    /// From its creation to its completion event.
    elapsed: Duration,
    /// The task's workspace (kept when the task failed).
    workspace: std::path::PathBuf,
    /// What the host went through meanwhile.
    watched: Watched,
}

impl Attack {
    fn completion(&self) -> &Json {
        completion(&self.events)
    }

    fn log_events(&self) -> impl Iterator<Item = &Json> {
        self.events.iter().filter(|e| e["type"] == "log")
    }

    /// The step failed, and the step's failure and the task's error name the cause.
    fn assert_failed(&self, name: &str, cause: &str) {
        let completion = self.completion();
        assert_eq!(
            completion["message"], "Run completed with status: failed",
            "{completion:#}"
        );
        assert_eq!(completion["error"]["name"], name, "{completion:#}");
        let message = completion["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(cause),
            "expected {cause:?} in the task's error {message:?}"
        );
        let step = self
            .log_events()
            .find(|e| e["body"]["stepId"] == "attack" && e["body"]["status"] == "failed")
            .unwrap_or_else(|| panic!("no failed event for the step: {:#?}", self.events));
        assert_eq!(
            step["body"]["message"],
            format!("{name}: {message}"),
            "the step's failure"
        );
    }

    fn assert_completed(&self) {
        let completion = self.completion();
        assert_eq!(
            completion["message"], "Run completed with status: completed",
            "{completion:#}"
        );
    }
}

/// Runs the `attack` template as a task beside the friendly task while watching the
/// host, then checks the promises every attack shares: the friendly task completed, the
/// host's memory and HTTP latency stayed in bounds, and a new task is created within
/// 1 s and completes.
async fn attack_task(server: &Server, values: Json, secrets: Json) -> Attack {
    let watch = server.watch();
    let started = Instant::now();
    let attack = server.create_task("attack", values, secrets).await;
    let friendly = server
        .create_task(FRIENDLY_TEMPLATE, json!({}), json!({}))
        .await;
    let (events, elapsed, friendly) = {
        let within = Duration::from_secs(20);
        let attack = async {
            let events = server.events_until_completion(&attack, within).await;
            (events, started.elapsed())
        };
        let ((events, elapsed), friendly) =
            tokio::join!(attack, server.events_until_completion(&friendly, within));
        (events, elapsed, friendly)
    };
    let watched = watch.stop().await;
    let bystander = completion(&friendly);
    assert_eq!(
        bystander["message"], "Run completed with status: completed",
        "the friendly task beside the attack: {bystander:#}"
    );
    watched.assert_host_unharmed();
    server.assert_still_works().await;
    Attack {
        events,
        elapsed,
        workspace: server.working_directory.join(&attack),
        watched,
    }
}

/// Runs the attack with default values and no secrets, stops the server, and returns it.
async fn attack(action: &str, input: Json, limits: Limits, grants: Grants) -> Attack {
    let server = attack_server(action, input, limits, grants).await;
    let attack = attack_task(&server, json!({}), json!({})).await;
    server.finish().await;
    attack
}

/// A dry run collects the workspace on the host: links planted by the guest, climbing
/// to `/etc/passwd`, `/proc/self/environ` and the server's live database, must not be
/// followed (and opening the database through one must not release SQLite's locks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_symlink() {
    let Some(_one) = server_test("dry_run_symlink").await else {
        return;
    };
    let server = server_with(server_limits(), Grants::default()).await;
    // The database has a WAL once something was written.
    server.assert_still_works().await;
    let wal = server.database.with_extension("sqlite-wal");
    assert!(wal.exists(), "no WAL at {}", wal.display());
    let links = json!({
        "passwd": climbing_path(Path::new("/etc/passwd")),
        "env": climbing_path(Path::new("/proc/self/environ")),
        "db": climbing_path(&server.database),
        "db-wal": climbing_path(&wal),
    });
    let entity = template_entity(
        "dry-run-symlink",
        json!([
            {
                "id": "kept",
                "action": "friendly:write-file",
                "input": { "path": "kept.txt", "content": "made in the workspace" }
            },
            { "id": "attack", "action": "hostile:dry-run-symlink", "input": { "links": links } }
        ]),
        json!({}),
    );
    let watch = server.watch();
    let friendly = server
        .create_task(FRIENDLY_TEMPLATE, json!({}), json!({}))
        .await;
    let (status, body) = server
        .post(
            "/v2/dry-run",
            json!({ "template": entity, "values": {}, "directoryContents": [] }),
        )
        .await;
    let friendly = server
        .events_until_completion(&friendly, Duration::from_secs(20))
        .await;
    let watched = watch.stop().await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(
        completion(&friendly)["message"],
        "Run completed with status: completed"
    );
    watched.assert_host_unharmed();

    let targets = links.as_object().unwrap();
    let environ = std::fs::read("/proc/self/environ").unwrap();
    let variables: Vec<&[u8]> = environ
        .split(|b| *b == 0)
        .filter(|v| v.len() >= 8 && v.contains(&b'='))
        .collect();
    assert!(!variables.is_empty());
    let files = body["directoryContents"]
        .as_array()
        .expect("directoryContents");
    let mut kept = false;
    for file in files {
        let path = file["path"].as_str().unwrap();
        let content = base64::engine::general_purpose::STANDARD
            .decode(file["base64Content"].as_str().unwrap())
            .unwrap();
        let shown = String::from_utf8_lossy(&content[..content.len().min(200)]).into_owned();
        if path == "kept.txt" {
            kept = content == b"made in the workspace";
        }
        if let Some(target) = targets.get(path) {
            assert_eq!(
                content,
                target.as_str().unwrap().as_bytes(),
                "the link {path} must come back as its target text, not {shown:?}"
            );
        }
        let found = |needle: &[u8]| content.windows(needle.len()).any(|w| w == needle);
        assert!(!found(b"root:"), "{path} holds /etc/passwd: {shown:?}");
        assert!(
            !found(b"SQLite format 3"),
            "{path} holds the database: {shown:?}"
        );
        // A WAL starts with the magic number 0x377f0682 or 0x377f0683.
        assert!(
            !content.starts_with(&[0x37, 0x7f, 0x06]),
            "{path} holds the WAL"
        );
        for variable in &variables {
            assert!(
                !found(variable),
                "{path} holds the server's environment: {shown:?}"
            );
        }
    }
    assert!(
        kept,
        "the workspace's own file is missing: {:#?}",
        files.iter().map(|f| &f["path"]).collect::<Vec<_>>()
    );
    // SQLite's locks survived: the database takes writes.
    server.assert_still_works().await;
    server.finish().await;
}

/// Each `host.add-secret` is a store write; a guest adding them in a loop is stopped
/// by a count, and the store is not left locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_loop() {
    let Some(_one) = server_test("secret_loop").await else {
        return;
    };
    let attack = attack(
        "hostile:secret-loop",
        json!({}),
        server_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "secret limit of 32 added secrets exceeded");
}

/// A secret loop allowed to run until the user cancels it: the step's future is
/// dropped, and no store transaction may be left half-done ("database is locked").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_loop_until_cancel() {
    let Some(_one) = server_test("secret_loop_until_cancel").await else {
        return;
    };
    let limits = Limits {
        timeout_secs: 60,
        max_secrets: 100_000,
        max_secret_bytes: 1 << 30,
        ..Limits::default()
    };
    let server = attack_server("hostile:secret-loop", json!({}), limits, Grants::default()).await;
    let watch = server.watch();
    let id = server.create_task("attack", json!({}), json!({})).await;
    server
        .wait_for_event(&id, |e| {
            e["body"]["stepId"] == "attack" && e["body"]["status"] == "processing"
        })
        .await;
    // The loop writes for a while, with a friendly task beside it.
    let friendly = server
        .create_task(FRIENDLY_TEMPLATE, json!({}), json!({}))
        .await;
    let friendly = server
        .events_until_completion(&friendly, Duration::from_secs(20))
        .await;
    assert_eq!(
        completion(&friendly)["message"],
        "Run completed with status: completed"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = server
        .post(&format!("/v2/tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let cancelled = Instant::now();
    let events = server
        .events_until_completion(&id, Duration::from_secs(20))
        .await;
    let took = cancelled.elapsed();
    assert!(took < Duration::from_secs(5), "the cancel took {took:?}");
    let ended = completion(&events);
    assert_eq!(ended["message"], "Run completed with status: failed");
    let cause = ended["error"]["message"].as_str().unwrap_or_default();
    assert!(cause.ends_with("has been cancelled."), "{ended:#}");
    let watched = watch.stop().await;
    watched.assert_host_unharmed();
    server.assert_still_works().await;
    // And again, once any connection the dropped step held has gone back to the pool.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.assert_still_works().await;
    server.finish().await;
}

/// The line limit the default limits give the log.
const LOG_LINES: usize = 10_000;

fn assert_log_bounded(attack: &Attack) {
    attack.assert_failed("Error", "log line limit of 10000 lines exceeded");
    let stored = attack.log_events().count();
    // The guest's lines plus the runner's few (beginning, failure).
    assert!(
        stored <= LOG_LINES + 10,
        "{stored} log events stored for the task"
    );
}

/// Empty lines through `host.log` cost a line each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_log_flood() {
    let Some(_one) = server_test("empty_log_flood").await else {
        return;
    };
    let attack = attack(
        "hostile:empty-log-flood",
        json!({}),
        server_limits(),
        Grants::default(),
    )
    .await;
    assert_log_bounded(&attack);
}

/// Empty lines on stdout cost a line each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_log_flood_on_stdout() {
    let Some(_one) = server_test("empty_log_flood_on_stdout").await else {
        return;
    };
    let attack = attack(
        "hostile:empty-log-flood",
        json!({ "stdout": true }),
        server_limits(),
        Grants::default(),
    )
    .await;
    assert_log_bounded(&attack);
}

/// Every open file of a guest is a descriptor of the host process; a guest hoarding
/// them must not starve the server's `accept()` (the prober opens a new connection
/// each time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_hoard() {
    let Some(_one) = server_test("descriptor_hoard").await else {
        return;
    };
    let attack = attack(
        "hostile:descriptor-hoard",
        json!({}),
        server_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "open handle limit of 256 exceeded");
    // Refused, the guest holds its handles for a second (unless stopped at once), so a
    // host without the limit shows here and in the prober's failed connections.
    assert!(
        attack.watched.peak_fds < 256 + 256,
        "the process held {} descriptors",
        attack.watched.peak_fds
    );
}

/// Twenty 8 MiB checkpoints: stopped at the first, before the host holds or stores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_bomb() {
    let Some(_one) = server_test("checkpoint_bomb").await else {
        return;
    };
    let attack = attack(
        "hostile:checkpoint-bomb",
        json!({}),
        server_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "checkpoint size limit of 1 MiB exceeded");
}

/// A granted secret returned as output is redacted before the output is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_secret() {
    let Some(_one) = server_test("output_secret").await else {
        return;
    };
    const SECRET: &str = "s3cr3t-d3pl0y-t0k3n-4f9c2e";
    let server = server_with(
        server_limits(),
        Grants {
            secrets: vec!["deploy-token".into()],
            ..Grants::default()
        },
    )
    .await;
    server.template(
        "attack",
        json!([{ "id": "attack", "action": "hostile:output-secret", "input": {} }]),
        json!({ "leak": "${{ steps.attack.output.leak }}" }),
    );
    let attack = attack_task(&server, json!({}), json!({ "deploy-token": SECRET })).await;
    attack.assert_completed();
    assert_eq!(attack.completion()["output"]["leak"], "***");
    let events = serde_json::to_string(&attack.events).unwrap();
    assert!(!events.contains(SECRET), "the secret is in the events");
    let task_id = attack.events[0]["taskId"].as_str().unwrap();
    let (status, task) = server.get(&format!("/v2/tasks/{task_id}")).await;
    assert_eq!(status, 200);
    assert!(
        !task.to_string().contains(SECRET),
        "the secret is in {task}"
    );
    server.finish().await;
}

/// A TCP grant names an address; resolving a name would send it to a DNS server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_exfil() {
    let Some(_one) = server_test("dns_exfil").await else {
        return;
    };
    let attack = attack(
        "hostile:dns-exfil",
        json!({ "name": "secret-data.exfil.invalid" }),
        server_limits(),
        Grants {
            tcp: vec!["127.0.0.1:9".into()],
            ..Grants::default()
        },
    )
    .await;
    attack.assert_failed(
        "NotAllowedError",
        "name lookup of 'secret-data.exfil.invalid' denied",
    );
}

/// `exit(0)` ends the component without a result: a clear message, not a backtrace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_zero() {
    let Some(_one) = server_test("exit_zero").await else {
        return;
    };
    let attack = attack(
        "hostile:exit-zero",
        json!({ "code": 0 }),
        server_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "exited with status 0");
    assert!(
        !attack.completion()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wasm backtrace")
    );
}

/// A non-zero `exit` is named too. (WASI 0.2's stable `exit` carries only success or
/// failure, so wasi-libc reports every non-zero status as 1.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_zero_nonzero_status() {
    let Some(_one) = server_test("exit_zero_nonzero_status").await else {
        return;
    };
    let attack = attack(
        "hostile:exit-zero",
        json!({ "code": 3 }),
        server_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "exited with status 1");
}

/// Fifty thousand refused opens: the step is stopped at the denial limit, long before
/// its deadline, instead of recording (and logging) every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_flood() {
    let Some(_one) = server_test("denial_flood").await else {
        return;
    };
    let attack = attack(
        "hostile:denial-flood",
        json!({}),
        server_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "denial limit of 100 refused operations exceeded");
    assert!(
        attack.elapsed < Duration::from_millis(2500),
        "the flood ran for {:?} of its 5 s",
        attack.elapsed
    );
}

/// Log lines keep no terminal escapes and no line breaks, so a guest cannot forge
/// lines or repaint a terminal that shows the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansi_log() {
    let Some(_one) = server_test("ansi_log").await else {
        return;
    };
    let attack = attack(
        "hostile:ansi-log",
        json!({}),
        server_limits(),
        Grants::default(),
    )
    .await;
    let messages: Vec<&str> = attack
        .log_events()
        .filter_map(|e| e["body"]["message"].as_str())
        .map(|m| {
            // The runner's own colour prefix, winston's `<coloured level>: `.
            match m.split_once("\u{1b}[39m: ") {
                Some((level, rest)) if level.starts_with('\u{1b}') => rest,
                _ => m,
            }
        })
        .collect();
    for marker in ["red", "cleared"] {
        assert!(
            messages.iter().any(|m| m.contains(marker)),
            "the line with {marker:?} was not logged: {messages:#?}"
        );
    }
    // A newline stays (Backstage's own messages span lines, and events carry them as
    // JSON); escape sequences, carriage returns and the other control characters go.
    for message in &messages {
        assert!(
            !message.contains(|c: char| c.is_control() && c != '\n' && c != '\t'),
            "a control character survived in {message:?}"
        );
    }
}

/// The apparent size of the files under `dir`, and how many entries it holds.
fn disk_usage(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut entries) = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let metadata = entry.path().symlink_metadata().unwrap();
        entries += 1;
        if metadata.is_dir() {
            let (b, e) = disk_usage(&entry.path());
            bytes += b;
            entries += e;
        } else {
            bytes += metadata.len();
        }
    }
    (bytes, entries)
}

fn disk_limits() -> Limits {
    Limits {
        max_workspace_bytes: 64 << 20,
        max_workspace_files: 1000,
        ..server_limits()
    }
}

/// Writes in 1 MiB chunks: stopped near the quota, and what it left is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill() {
    let Some(_one) = server_test("disk_fill").await else {
        return;
    };
    let attack = attack(
        "hostile:disk-fill",
        json!({ "mode": "chunks" }),
        disk_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "workspace size limit of 64 MiB exceeded");
    let (bytes, _) = disk_usage(&attack.workspace);
    assert!(
        bytes <= 128 << 20,
        "the failed task's workspace holds {} MiB",
        bytes >> 20
    );
}

/// A 2 GiB sparse file costs no disk but counts whole (a dry run or a publish would
/// read it all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill_sparse() {
    let Some(_one) = server_test("disk_fill_sparse").await else {
        return;
    };
    let attack = attack(
        "hostile:disk-fill",
        json!({ "mode": "sparse" }),
        disk_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "workspace size limit of 64 MiB exceeded");
    let (bytes, _) = disk_usage(&attack.workspace);
    assert!(
        bytes <= 128 << 20,
        "the failed task's workspace holds {} MiB",
        bytes >> 20
    );
}

/// Empty files cost an inode each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill_files() {
    let Some(_one) = server_test("disk_fill_files").await else {
        return;
    };
    let attack = attack(
        "hostile:disk-fill",
        json!({ "mode": "files" }),
        disk_limits(),
        Grants::default(),
    )
    .await;
    attack.assert_failed("Error", "workspace file limit of 1000 files exceeded");
    let (_, entries) = disk_usage(&attack.workspace);
    assert!(
        entries <= 2000,
        "the failed task's workspace holds {entries} entries"
    );
}
