//! `scaffolder serve` as a child process for the tests of this crate: started on a free
//! port with the given arguments and environment, its output kept for the test to read.

#![allow(dead_code)] // Each test binary uses part of this.

pub mod postgres;
pub mod replicas;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// Runs `scaffolder <args>` in `dir` to completion, colours off.
pub fn run_scaffolder(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scaffolder"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("running scaffolder")
}

/// Runs `scaffolder <args>` in `dir` and returns its stdout; panics with its output when
/// it fails.
pub fn succeeds(dir: &Path, args: &[&str]) -> String {
    let output = run_scaffolder(dir, args);
    assert!(
        output.status.success(),
        "scaffolder {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Output bytes as text.
/// The action ids of `plugin inspect --json`'s answer, in its order.
pub fn inspected_action_ids(inspected: &Json) -> Vec<&str> {
    inspected["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions in {inspected}"))
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `scaffolder serve`.
/// The API route tests' fixture templates (`host/scaffolder-api/tests/fixtures/templates`).
pub fn fixture_templates() -> PathBuf {
    repo().join("host/scaffolder-api/tests/fixtures/templates")
}

/// `scaffolder serve` with the fixture templates and the friendly plugin, plus `extra`
/// arguments and `env`.
pub fn serve_fixtures(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let templates = fixture_templates();
    let mut args = vec![
        "--templates",
        templates.to_str().unwrap(),
        "--plugin",
        scaffolder_test_artifacts::FRIENDLY_GUEST,
    ];
    args.extend_from_slice(extra);
    Server::spawn(data_dir, &args, env)
}

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>/api/scaffolder`.
    pub base: String,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Runs `scaffolder serve --port 0 --data-dir <data_dir> <args>` with `env` added to
    /// the environment; returns once it listens.
    pub fn spawn(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_via(&[], data_dir, args, env)
    }

    /// [`Server::spawn`] run by the command `wrapper` (e.g. `prlimit --nofile=1024:1024`).
    pub fn spawn_via(
        wrapper: &[&str],
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let binary = env!("CARGO_BIN_EXE_scaffolder");
        let mut command = match wrapper {
            [] => Command::new(binary),
            [program, rest @ ..] => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
        };
        let mut child = command
            .envs(env.iter().copied())
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting scaffolder serve");
        let output = Arc::new(Mutex::new(String::new()));
        // Keep draining stderr so the server never blocks on a full pipe.
        let mut stderr = child.stderr.take().unwrap();
        let kept = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]);
                eprint!("{text}");
                kept.lock().unwrap().push_str(&text);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server exited before listening")
                .unwrap();
            output.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(url) = line.strip_prefix("scaffolder listening on ") {
                break url.to_owned();
            }
        };
        let kept = output.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Self {
            child,
            base,
            output,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (standard output and error).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the server's process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// The exit status once the server exits, or `None` if it still runs after `limit`.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `(status, JSON body)` of `GET base + path`, with `token` as bearer when given.
pub fn get_as(base: &str, path: &str, token: Option<&str>) -> (u16, Json) {
    let mut request = client().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Json::Null))
}

pub fn post_as(base: &str, path: &str, body: Json, token: Option<&str>) -> (u16, Json) {
    let mut request = client().post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Json::Null))
}

pub fn get(base: &str, path: &str) -> (u16, Json) {
    get_as(base, path, None)
}

pub fn post(base: &str, path: &str, body: Json) -> (u16, Json) {
    post_as(base, path, body, None)
}

/// The task's events once one matches `predicate`; panics after a minute.
pub fn wait_for_event_as(
    base: &str,
    task_id: &str,
    token: Option<&str>,
    predicate: impl Fn(&Json) -> bool,
) -> Vec<Json> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, events) = get_as(base, &format!("/v2/tasks/{task_id}/events"), token);
        let events = events.as_array().cloned().unwrap_or_default();
        if events.iter().any(&predicate) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "no matching event in {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_for_event(base: &str, task_id: &str, predicate: impl Fn(&Json) -> bool) -> Vec<Json> {
    wait_for_event_as(base, task_id, None, predicate)
}

/// Creates a task of `template_ref` with `values` and returns its events once its
/// completion event is among them (the last one).
pub fn run_task(base: &str, template_ref: &str, values: Json) -> Vec<Json> {
    let (status, created) = post(
        base,
        "/v2/tasks",
        serde_json::json!({ "templateRef": template_ref, "values": values }),
    );
    assert_eq!(status, 201, "{created}");
    wait_for_event(base, created["id"].as_str().unwrap(), |e| {
        e["type"] == "completion"
    })
}
