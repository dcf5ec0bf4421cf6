//! Helpers for driving plugins in tests: a recording [`StepHost`], a shared runtime with a
//! compile cache, a loopback HTTP server that counts what reaches it, and a whole
//! scaffolder server in the test process ([`server`]).

pub mod server;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use scaffolder_runtime::{
    Checkpoint, LogLevel, Plugin, PluginConfig, Runtime, RuntimeConfig, StepContext, StepFailure,
    StepHost, StepRequest, StepUsage,
};
use tokio_util::sync::CancellationToken;

/// One runtime per test binary, caching compiled components under `target/`.
pub fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cache_dir =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-component-cache");
            Runtime::new(&RuntimeConfig {
                cache_dir: Some(cache_dir),
                ..RuntimeConfig::default()
            })
            .expect("creating the runtime")
        })
        .clone()
}

/// Loads a test component with the given grants and limits.
pub async fn load(component: &str, config: PluginConfig) -> Plugin {
    runtime()
        .load_file(Path::new(component), config)
        .await
        .unwrap_or_else(|err| panic!("loading {component}: {err}"))
}

/// A [`StepHost`] that keeps everything in memory for assertions.
#[derive(Default)]
pub struct RecordingHost {
    lines: Mutex<Vec<(LogLevel, String)>>,
    secrets: Mutex<BTreeMap<String, String>>,
    checkpoints: Mutex<BTreeMap<String, Checkpoint>>,
    /// Set when the run may have lost its task ([`StepHost::holds_task`] answers no).
    task_lost: std::sync::atomic::AtomicBool,
    usage: Mutex<Option<StepUsage>>,
}

impl RecordingHost {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// From now on the run may have lost its task, as a stalled replica's would.
    pub fn lose_task(&self) {
        self.task_lost
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The log lines so far.
    pub fn lines(&self) -> Vec<(LogLevel, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// Secrets added by steps.
    pub fn added_secrets(&self) -> BTreeMap<String, String> {
        self.secrets.lock().unwrap().clone()
    }

    /// What the last step that ended reported it used.
    pub fn usage(&self) -> Option<StepUsage> {
        *self.usage.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl StepHost for RecordingHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.lines.lock().unwrap().push((level, message.to_owned()));
    }

    async fn add_secret(&self, name: &str, value: &str) -> Result<(), String> {
        self.secrets
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    async fn checkpoint_get(&self, key: &str) -> Result<Option<Checkpoint>, String> {
        Ok(self.checkpoints.lock().unwrap().get(key).cloned())
    }

    async fn checkpoint_set(&self, key: &str, value: Checkpoint) -> Result<(), String> {
        self.checkpoints
            .lock()
            .unwrap()
            .insert(key.to_owned(), value);
        Ok(())
    }

    fn holds_task(&self) -> bool {
        !self.task_lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn ended(&self, usage: StepUsage) {
        *self.usage.lock().unwrap() = Some(usage);
    }
}

/// A step request for `action` with `input`, in `workspace`.
pub fn request(action: &str, input: serde_json::Value, workspace: &Path) -> StepRequest {
    StepRequest {
        action_id: action.to_owned(),
        input,
        context: StepContext {
            task_id: "task-1".into(),
            step_id: "step-1".into(),
            step_name: action.into(),
            ..StepContext::default()
        },
        workspace: workspace.to_owned(),
        template_directory: None,
        secrets: BTreeMap::new(),
        cancel: CancellationToken::new(),
        workspace_cap: None,
    }
}

/// Runs one step with a fresh recording host.
pub async fn run(
    plugin: &Plugin,
    request: StepRequest,
) -> (Result<serde_json::Value, StepFailure>, Arc<RecordingHost>) {
    let host = RecordingHost::new();
    let outcome = plugin.execute(request, host.clone()).await;
    (outcome, host)
}

/// A temporary workspace directory.
pub fn workspace() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("scaffolder-test-workspace-")
        .tempdir()
        .unwrap()
}

/// A loopback HTTP server answering every request with `200 hello`, counting requests.
pub struct CountingServer {
    pub port: u16,
    requests: Arc<AtomicUsize>,
}

impl CountingServer {
    pub async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
                        .await;
                });
            }
        });
        Self { port, requests }
    }

    /// Connections the server accepted.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}
