//! Step overhead of the sandbox, printed as figures (run with `cargo bench -p scaffolder-sandbox-tests`),
//! for a plugin written in Rust (`tests/guests/friendly`) and one written in TypeScript
//! (`benches/ts-noop`, built here with the SDK's builder; its npm packages are installed
//! from its lockfile when `node_modules` is missing):
//!
//! - loading the component cold (compile + describe) and from the on-disk compile cache;
//! - instantiate + execute + drop of a no-op action, p50/p99, next to the same no-op
//!   called natively (JSON in, JSON out, as the SDK does);
//! - the linear memory one instance holds (what the runtime accounts per step).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scaffolder_runtime::{Plugin, PluginConfig, Runtime, RuntimeConfig};
use scaffolder_sandbox_tests::{RecordingHost, request, workspace};
use scaffolder_test_artifacts::FRIENDLY_GUEST;
use serde_json::json;

const WARMUP: usize = 200;

/// A plugin measured, and its no-op action.
struct Guest {
    language: &'static str,
    component: PathBuf,
    action: &'static str,
    samples: usize,
}

fn main() {
    let js_component = build_typescript_guest();
    let guests = [
        Guest {
            language: "Rust",
            component: PathBuf::from(FRIENDLY_GUEST),
            action: "friendly:noop",
            samples: 5_000,
        },
        Guest {
            language: "TypeScript",
            component: js_component,
            action: "ts:noop",
            samples: 2_000,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for guest in &guests {
            figures(guest).await;
        }
    });
    native();
}

async fn figures(guest: &Guest) {
    let size = std::fs::metadata(&guest.component).unwrap().len();
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    };

    let (cold_runtime, cold, cold_time) = timed_load(&config, &guest.component).await;
    assert!(!cold.cache_hit());
    // Gone before the cached load, as a restarted server starts without it.
    drop((cold, cold_runtime));
    let (runtime, plugin, cached_time) = timed_load(&config, &guest.component).await;
    assert!(plugin.cache_hit());

    let ws = workspace();
    let host = RecordingHost::new();
    let mut steps = Vec::with_capacity(guest.samples);
    for i in 0..WARMUP + guest.samples {
        let req = request(guest.action, json!({}), ws.path());
        let start = Instant::now();
        let out = plugin.execute(req, host.clone()).await.unwrap();
        let elapsed = start.elapsed();
        black_box(out);
        if i >= WARMUP {
            steps.push(elapsed);
        }
    }
    let memory = host.usage().expect("the step reported its usage");

    println!(
        "{} plugin ({}, {:.1} MiB)",
        guest.language,
        Path::new(&guest.component)
            .file_name()
            .unwrap()
            .to_string_lossy(),
        size as f64 / (1 << 20) as f64
    );
    println!(
        "  load, cold (compile + describe):       {}",
        fmt(cold_time)
    );
    println!(
        "  load, cached (deserialize + describe): {}",
        fmt(cached_time)
    );
    report(
        &format!(
            "  step: instantiate + execute + drop of {} ({} samples, pooling allocator: {})\n    ",
            guest.action,
            guest.samples,
            runtime.uses_pooling()
        ),
        &mut steps,
    );
    println!(
        "  linear memory of one instance: {:.1} MiB",
        memory.linear_memory_bytes as f64 / (1 << 20) as f64
    );
}

/// A new runtime on `config`, `component` loaded in it, and how long the load took.
async fn timed_load(config: &RuntimeConfig, component: &Path) -> (Runtime, Plugin, Duration) {
    let runtime = Runtime::new(config).unwrap();
    let start = Instant::now();
    let plugin = runtime
        .load_file(component, PluginConfig::default())
        .await
        .unwrap();
    (runtime, plugin, start.elapsed())
}

/// What the Rust SDK does around a no-op action, without the sandbox.
fn native() {
    let samples = 5_000;
    let mut native = Vec::with_capacity(samples);
    for i in 0..WARMUP + samples {
        let input = json!({}).to_string();
        let start = Instant::now();
        let value: serde_json::Value = serde_json::from_str(black_box(&input)).unwrap();
        black_box(value);
        let out = json!({}).to_string();
        let elapsed = start.elapsed();
        black_box(out);
        if i >= WARMUP {
            native.push(elapsed);
        }
    }
    report(
        &format!("the same no-op called natively ({samples} samples)\n   "),
        &mut native,
    );
}

/// Builds `benches/ts-noop` as `plugin build` does (`scaffolder_plugins::directory`:
/// `npm ci` when its packages are missing, then the SDK's `scaffolder-plugin-build`) and
/// returns the component.
fn build_typescript_guest() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ts-noop");
    let start = Instant::now();
    let component = scaffolder_plugins::directory::build(&dir)
        .unwrap_or_else(|err| panic!("building {} failed: {err:#}", dir.display()));
    println!(
        "TypeScript plugin built in {} (npm packages when missing, esbuild + componentize-js)\n",
        fmt(start.elapsed())
    );
    component
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label}  p50 {:>10}   p99 {:>10}   max {:>10}",
        fmt(p(0.50)),
        fmt(p(0.99)),
        fmt(*samples.last().unwrap())
    );
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.1} s", us / 1_000_000.0)
    }
}
