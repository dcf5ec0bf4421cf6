//! The hostile-guest suite. Each test runs one attack of `tests/guests/hostile` next to a
//! well-behaved step of `tests/guests/friendly`, and checks that the attack ends as a
//! failed step whose message names the cause while the bystander completes.

use std::future::Future;

use scaffolder_runtime::{Grants, Limits, PluginConfig, StepFailure, StepFailureKind};
use scaffolder_sandbox_tests::{CountingServer, load, request, run, workspace};
use scaffolder_test_artifacts::{FRIENDLY_GUEST, HOSTILE_GUEST};
use serde_json::json;

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
];

fn limits() -> Limits {
    Limits {
        memory_mib: 64,
        timeout_secs: 2,
        max_log_bytes: 64 << 10,
        max_output_bytes: 1 << 20,
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
    let hostile = load(
        HOSTILE_GUEST,
        PluginConfig {
            limits: limits(),
            ..PluginConfig::default()
        },
    )
    .await;
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
