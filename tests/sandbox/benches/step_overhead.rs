//! Step overhead of the sandbox, printed as figures (run with `cargo bench -p scaffolder-sandbox-tests`).
//!
//! - instantiate + execute + drop of a no-op action from a precompiled component, p50/p99,
//!   next to the same no-op called natively (JSON in, JSON out, as the SDK does);
//! - loading the largest test component cold (compile) and from the on-disk cache.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use scaffolder_runtime::{PluginConfig, Runtime, RuntimeConfig};
use scaffolder_sandbox_tests::{RecordingHost, request, workspace};
use scaffolder_test_artifacts::{
    FRIENDLY_GUEST, FUTURE_VERSION_GUEST, HOSTILE_GUEST, NOT_A_PLUGIN_GUEST,
};
use serde_json::json;

const WARMUP: usize = 200;
const SAMPLES: usize = 5_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        step_overhead().await;
        compile_vs_cache().await;
    });
}

async fn step_overhead() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime
        .load_file(Path::new(FRIENDLY_GUEST), PluginConfig::default())
        .await
        .unwrap();
    let ws = workspace();
    let host = RecordingHost::new();

    let mut wasm = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let req = request("friendly:noop", json!({}), ws.path());
        let start = Instant::now();
        let out = plugin.execute(req, host.clone()).await.unwrap();
        let elapsed = start.elapsed();
        black_box(out);
        if i >= WARMUP {
            wasm.push(elapsed);
        }
    }

    let mut native = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let input = json!({}).to_string();
        let start = Instant::now();
        let out = native_noop(black_box(&input));
        let elapsed = start.elapsed();
        black_box(out);
        if i >= WARMUP {
            native.push(elapsed);
        }
    }

    println!("step overhead: instantiate + execute + drop of friendly:noop ({SAMPLES} samples)");
    println!("  pooling allocator: {}", runtime.uses_pooling());
    report("  wasm  ", &mut wasm);
    report("  native", &mut native);
}

/// What the SDK does around a no-op action, without the sandbox.
fn native_noop(input: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(input).unwrap();
    black_box(value);
    json!({}).to_string()
}

async fn compile_vs_cache() {
    let largest = [
        FRIENDLY_GUEST,
        HOSTILE_GUEST,
        FUTURE_VERSION_GUEST,
        NOT_A_PLUGIN_GUEST,
    ]
    .into_iter()
    .filter(|p| !p.contains("future_version") && !p.contains("not_a_plugin"))
    .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
    .unwrap();
    let size = std::fs::metadata(largest).unwrap().len();
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    };

    let cold_runtime = Runtime::new(&config).unwrap();
    let start = Instant::now();
    let cold = cold_runtime
        .load_file(Path::new(largest), PluginConfig::default())
        .await
        .unwrap();
    let cold_time = start.elapsed();
    assert!(!cold.cache_hit());

    let warm_runtime = Runtime::new(&config).unwrap();
    let start = Instant::now();
    let warm = warm_runtime
        .load_file(Path::new(largest), PluginConfig::default())
        .await
        .unwrap();
    let warm_time = start.elapsed();
    assert!(warm.cache_hit());

    let name = Path::new(largest).file_name().unwrap().to_string_lossy();
    println!(
        "plugin load of the largest component ({name}, {} KiB)",
        size / 1024
    );
    println!("  cold (compile + describe):      {}", fmt(cold_time));
    println!("  cached (deserialize + describe): {}", fmt(warm_time));
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
    } else {
        format!("{:.2} ms", us / 1_000.0)
    }
}
