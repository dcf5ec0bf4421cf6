//! Server benchmark (`cargo bench -p scaffolder --bench server`): starts the release
//! `scaffolder serve` on SQLite and measures, over HTTP like the Backstage frontend:
//! the dry-run round trip of a 3-step template (debug:log, fetch:template, fs:rename),
//! the time from `POST /v2/tasks` to the completion event on the event stream, tasks per
//! second at 10 concurrent clients, the server's idle RSS, and its RSS with 1,000 event
//! streams open. Prints figures; asserts nothing about speed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value as Json, json};

#[path = "../tests/common/mod.rs"]
mod common;

use common::Server;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures")
}

/// The release server on `data` with the benchmark's templates.
fn start(data: &Path) -> Server {
    let templates = fixtures();
    Server::spawn(
        data,
        &["--templates", templates.to_str().unwrap()],
        &[("RUST_LOG", "warn")],
    )
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn report(name: &str, samples: &mut [Duration]) {
    println!(
        "{name:<40} p50 {:>8.2} ms   p99 {:>8.2} ms   ({} runs)",
        percentile(samples, 0.5).as_secs_f64() * 1e3,
        percentile(samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    );
}

fn dry_run_body() -> Json {
    let template_yaml = std::fs::read_to_string(fixtures().join("bench/template.yaml")).unwrap();
    let template = scaffolder_template::Template::from_yaml(&template_yaml, None).unwrap();
    let b64 = |path: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(fixtures().join("bench").join(path)).unwrap())
    };
    json!({
        "template": template.entity,
        "values": { "name": "bench" },
        "secrets": {},
        "directoryContents": [
            { "path": "skeleton/README.md", "base64Content": b64("skeleton/README.md") },
            { "path": "skeleton/catalog-info.yaml", "base64Content": b64("skeleton/catalog-info.yaml") }
        ]
    })
}

/// `POST /v2/tasks` of `template:default/<template>`; returns the task's id.
async fn create_task(client: &reqwest::Client, base: &str, template: &str, values: Json) -> String {
    let response = client
        .post(format!("{base}/v2/tasks"))
        .json(&json!({ "templateRef": format!("template:default/{template}"), "values": values }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Json>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Creates a task and reads its event stream until the completion event.
async fn scaffold(client: &reqwest::Client, base: &str, name: &str) -> Duration {
    let started = Instant::now();
    let id = create_task(client, base, "bench", json!({ "name": name })).await;
    let mut stream = client
        .get(format!("{base}/v2/tasks/{id}/eventstream"))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: completion") {
            assert!(
                text.contains("Run completed with status: completed"),
                "{text}"
            );
            return started.elapsed();
        }
    }
    panic!("the stream ended without a completion: {text}");
}

/// Starts `tasks` tasks that keep running and opens `per_task` event streams on each;
/// returns the tasks' ids and the streams once each has received the task's first events.
async fn open_streams(
    client: &reqwest::Client,
    base: &str,
    tasks: usize,
    per_task: usize,
) -> (Vec<String>, Vec<reqwest::Response>) {
    let mut ids = Vec::with_capacity(tasks);
    let mut streams = Vec::with_capacity(tasks * per_task);
    for _ in 0..tasks {
        let id = create_task(client, base, "bench-wait", json!({})).await;
        for _ in 0..per_task {
            // A client of its own per stream: one connection each, as browsers hold them.
            let mut stream = reqwest::Client::new()
                .get(format!("{base}/v2/tasks/{id}/eventstream"))
                .send()
                .await
                .unwrap();
            assert_eq!(stream.status(), 200);
            stream
                .chunk()
                .await
                .unwrap()
                .expect("the task's first events");
            streams.push(stream);
        }
        ids.push(id);
    }
    (ids, streams)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list; this bench has no tests.
    }
    // 0700, as a data directory should be (the server warns about a wider one).
    let data = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    // The first start compiles the plugins into the cache; measure a warm start, as a
    // restarted server runs.
    let mut cold = start(data.path());
    std::thread::sleep(Duration::from_secs(2));
    let cold_idle = rss_kib(cold.pid());
    // Stopped as an operator does (SIGTERM): the server removes its run directory, and an
    // instrumented build writes its profile (`link/order-symbols`).
    cold.terminate();
    let mut server = start(data.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let base = server.base.clone();

    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_kib(server.pid());

    runtime.block_on(async {
        let body = dry_run_body();
        let mut samples = Vec::new();
        for i in 0..220 {
            let started = Instant::now();
            let response = client
                .post(format!("{base}/v2/dry-run"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let result: Json = response.json().await.unwrap();
            assert_eq!(
                result["directoryContents"].as_array().unwrap().len(),
                2,
                "{result}"
            );
            if i >= 20 {
                samples.push(started.elapsed());
            }
        }
        report("dry run, 3 steps (round trip)", &mut samples);

        let mut samples = Vec::new();
        for i in 0..120 {
            let elapsed = scaffold(&client, &base, &format!("svc-{i}")).await;
            if i >= 20 {
                samples.push(elapsed);
            }
        }
        report("scaffold, POST to completion event", &mut samples);

        let tasks = 500;
        let concurrency = 10;
        let started = Instant::now();
        let mut clients = Vec::new();
        for c in 0..concurrency {
            let client = client.clone();
            let base = base.clone();
            clients.push(tokio::spawn(async move {
                for i in 0..tasks / concurrency {
                    scaffold(&client, &base, &format!("load-{c}-{i}")).await;
                }
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "{:<40} {:>8.0} tasks/s ({tasks} tasks, {concurrency} clients, {:.2} s)",
            "throughput on SQLite",
            tasks as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
        let loaded = rss_kib(server.pid());
        let (waiting, streams) = open_streams(&client, &base, 10, 100).await;
        std::thread::sleep(Duration::from_secs(1));
        println!(
            "{:<40} {:>8.1} MiB",
            format!("RSS with {} event streams open", streams.len()),
            rss_kib(server.pid()) as f64 / 1024.0
        );
        println!(
            "{:<40} {:>8.1} MiB",
            "  of which before the streams",
            loaded as f64 / 1024.0
        );
        // The waiting tasks would hold the server's shutdown for its grace period.
        for id in waiting {
            let response = client
                .post(format!("{base}/v2/tasks/{id}/cancel"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    });
    println!(
        "{:<40} {:>8.1} MiB",
        "idle RSS, first start (compiling)",
        cold_idle as f64 / 1024.0
    );
    println!(
        "{:<40} {:>8.1} MiB",
        "idle RSS, start with a warm cache",
        idle as f64 / 1024.0
    );
    println!(
        "{:<40} {:>8.1} MiB",
        "RSS after the load",
        rss_kib(server.pid()) as f64 / 1024.0
    );
    server.terminate();
}
