//! One step: a fresh store, the action's grants and limits, one call of `execute`, and an
//! outcome that names the cause of any failure.

mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::bindings::wit;
use crate::budget::{StepBudget, limit_message};
use crate::capability::filesystem::{TEMPLATE_GUEST_PATH, WORKSPACE_GUEST_PATH};
use crate::capability::logs::LogSink;
use crate::capability::workspace_quota::WorkspaceCap;
use crate::capability::{Denials, StepPlace, StepSetup};
use crate::limits::human_bytes;
use crate::plugin::StepPlan;
use crate::runtime::MAX_WASM_STACK;

pub(crate) use state::{StepState, linker};

/// Severity of a step log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// A stored checkpoint value (Backstage's `{status: 'success', value}` or
/// `{status: 'failed', reason}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Checkpoint {
    Success { value: serde_json::Value },
    Failed { reason: String },
}

/// What the engine provides to a running step. Implementations persist and redact; the
/// runtime only forwards.
#[async_trait::async_trait]
pub trait StepHost: Send + Sync {
    /// Appends a line to the step's log.
    fn log(&self, level: LogLevel, message: &str);
    /// Adds a task-scoped secret; `Err` is a message explaining why it could not be kept.
    async fn add_secret(&self, name: &str, value: &str) -> Result<(), String>;
    /// The checkpoint stored under `key` for this step in an earlier run.
    async fn checkpoint_get(&self, key: &str) -> Result<Option<Checkpoint>, String>;
    /// Stores a checkpoint durably.
    async fn checkpoint_set(&self, key: &str, value: Checkpoint) -> Result<(), String>;
    /// Whether the step's run still holds its task, as far as the host knows without
    /// asking anyone. Checked before the step opens a connection (HTTP or TCP): a host
    /// that stalled (paused, cut off) long enough for another replica to take the task
    /// over must not act on the world for it any more, even before its next write tells
    /// it so.
    fn holds_task(&self) -> bool {
        true
    }
    /// What the step used, reported once it has ended, whatever its outcome.
    fn ended(&self, usage: StepUsage) {
        let _ = usage;
    }
}

/// What one step used of its host, for accounting: each capability reports its own
/// (`capability/`). Counts are of what the step was charged, so one that hit a limit
/// includes the charge that was refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepUsage {
    /// Linear memory of the step's instances at its end (the most they held: memories
    /// only grow), within the plugin's memory limit.
    pub linear_memory_bytes: u64,
    /// Log lines, including stdout and stderr.
    pub log_lines: u64,
    /// Bytes of log lines, each with [`crate::LOG_LINE_OVERHEAD_BYTES`].
    pub log_bytes: u64,
    /// Bytes written to workspace files (a rewrite counts like an append).
    pub workspace_bytes_written: u64,
    /// Files, directories and links created in the workspace.
    pub workspace_files_created: u64,
    /// Outbound HTTP requests that passed the sandbox's checks and were sent.
    pub http_requests: u64,
    /// TCP connections the sandbox allowed.
    pub tcp_connections: u64,
    /// Task secrets the step added.
    pub secrets_added: u64,
    /// Checkpoints the step wrote.
    pub checkpoints_written: u64,
    /// Operations the sandbox refused.
    pub denials: u64,
}

/// The template a task was created from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInfo {
    pub entity_ref: String,
    pub base_url: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

/// Where and for whom the step runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepContext {
    pub task_id: String,
    pub step_id: String,
    pub step_name: String,
    pub dry_run: bool,
    pub user_ref: Option<String>,
    pub user_entity: Option<serde_json::Value>,
    pub template: Option<TemplateInfo>,
}

/// Everything needed to run one step.
#[derive(Debug, Clone)]
pub struct StepRequest {
    pub action_id: String,
    /// The rendered input object.
    pub input: serde_json::Value,
    pub context: StepContext,
    /// The task workspace on the host; must exist.
    pub workspace: PathBuf,
    /// The template's directory on the host, if it has one.
    pub template_directory: Option<PathBuf>,
    /// All task secrets; the step sees only the granted ones.
    pub secrets: BTreeMap<String, String>,
    /// Fires when the user cancels the task.
    pub cancel: CancellationToken,
    /// Workspace limits tighter than the plugin's, if the host sets any for this step.
    pub workspace_cap: Option<WorkspaceCap>,
}

/// Why a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepFailureKind {
    /// The action rejected its input.
    InvalidInput,
    /// The action reported a failure.
    Failed,
    /// The sandbox refused something the action tried.
    Denied,
    /// The guest trapped (crashed).
    Trap,
    /// The wall-clock deadline passed.
    Timeout,
    /// The memory cap was reached.
    OutOfMemory,
    /// A log or output cap was exceeded.
    LimitExceeded,
    /// The task was cancelled.
    Cancelled,
    /// The host could not set up or serve the step.
    Host,
}

/// A failed step, with a message for the user that names the cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StepFailure {
    pub kind: StepFailureKind,
    pub message: String,
}

impl StepFailure {
    pub fn new(kind: StepFailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// How a call ended before it is classified.
enum Ended {
    Returned(Result<String, wit::ActionError>),
    /// The guest called `exit` with this status instead of returning.
    Exited(i32),
    Trapped(wasmtime::Error),
    TimedOut,
    Cancelled,
}

pub(crate) async fn execute(
    plan: StepPlan<'_>,
    request: StepRequest,
    host: Arc<dyn StepHost>,
) -> Result<serde_json::Value, StepFailure> {
    let StepPlan {
        engine,
        code,
        grants,
        limits,
        settings,
        sentinel_dir,
    } = plan;
    let budget = Arc::new(StepBudget::new(&limits));
    let denials = Denials::new(budget.clone());
    let setup = StepSetup {
        place: Some(StepPlace {
            sentinel: sentinel_dir,
            workspace: &request.workspace,
            template: request.template_directory.as_deref(),
            workspace_cap: request.workspace_cap.as_ref(),
        }),
        grants,
        budget: budget.clone(),
        denials: denials.clone(),
        host: host.clone(),
        secrets: &request.secrets,
        settings,
        cancel: request.cancel.clone(),
    };
    let state = StepState::new(&setup, &limits)?;
    let context = wit_context(&request, setup.granted_template().is_some());
    let log = state.capabilities.logs.sink().clone();
    let mut store = Store::new(engine, state);
    store.limiter(|state| state.limiter());
    store.set_epoch_deadline(1);
    // Every tick: a guest past one of its limits is stopped here, whatever it does next.
    store.epoch_deadline_callback(|store| match store.data().budget.exceeded() {
        Some(_) => Err(wasmtime::format_err!("step limit exceeded")),
        None => Ok(UpdateDeadline::Yield(1)),
    });

    let input = request.input.to_string();
    let deadline = Duration::from_secs(limits.timeout_secs);
    let ended = {
        let call = async {
            let instance = code.instantiate_async(&mut store).await?;
            instance
                .scaffolder_action_plugin()
                .call_execute(&mut store, &request.action_id, &input, &context)
                .await
        };
        tokio::select! {
            result = call => match result {
                Ok(returned) => Ended::Returned(returned),
                Err(trap) => match find_cause::<wasmtime_wasi::I32Exit>(&trap) {
                    Some(exit) => Ended::Exited(exit.0),
                    None => Ended::Trapped(trap),
                },
            },
            () = tokio::time::sleep(deadline) => Ended::TimedOut,
            () = request.cancel.cancelled() => Ended::Cancelled,
        }
    };

    let memory_exceeded = store.data().limiter.memory_exceeded;
    let usage = store.data().usage();
    drop(store);
    tracing::debug!(
        linear_memory_bytes = usage.linear_memory_bytes,
        log_lines = usage.log_lines,
        log_bytes = usage.log_bytes,
        workspace_bytes_written = usage.workspace_bytes_written,
        workspace_files_created = usage.workspace_files_created,
        http_requests = usage.http_requests,
        tcp_connections = usage.tcp_connections,
        secrets_added = usage.secrets_added,
        checkpoints_written = usage.checkpoints_written,
        denials = usage.denials,
        "step ended"
    );
    host.ended(usage);
    classify(ended, &budget, memory_exceeded, &log, &denials.all())
}

/// The step's context as the guest sees it; `/template` only when the directory is
/// there for it.
fn wit_context(request: &StepRequest, template_granted: bool) -> wit::StepContext {
    let c = &request.context;
    wit::StepContext {
        task_id: c.task_id.clone(),
        step_id: c.step_id.clone(),
        step_name: c.step_name.clone(),
        dry_run: c.dry_run,
        user_ref: c.user_ref.clone(),
        user_entity: c.user_entity.as_ref().map(|e| e.to_string()),
        template: c.template.as_ref().map(|t| wit::TemplateInfo {
            entity_ref: t.entity_ref.clone(),
            base_url: t.base_url.clone(),
            metadata: t.metadata.as_ref().map(|m| m.to_string()),
        }),
        workspace: WORKSPACE_GUEST_PATH.to_owned(),
        template_directory: request
            .template_directory
            .as_ref()
            .filter(|_| template_granted)
            .map(|_| TEMPLATE_GUEST_PATH.to_owned()),
    }
}

/// Turns how the call ended into the step's outcome.
///
/// A limit the host saw exceeded (and a deadline, a memory cap) is the cause whatever
/// the guest said, because a guest stopped by a limit reports at best a symptom.
///
/// A denial is different: the guest got an error back and carried on, and plugins
/// routinely probe and shrug a refusal off (a library looking for a `.gitignore`
/// above its directory, an optional secret). So a denial names the failure only when
/// it plausibly caused it, judged from what the guest said:
/// - it crashed without a word, or with a word that is a refusal's symptom: the
///   denial explains what the guest did not;
/// - it returned an error whose message is a refusal's symptom as the sandbox hands it
///   out (std's `Permission denied`, a WASI error code, the SDK's wording of a refused
///   request or secret): it passed the refusal on, and the host's denial names what
///   was refused (the guest's message follows it);
/// - it returned any other error: it explained its failure in its own words, and they
///   stand, with its kind. A plugin that acted on a refusal (`fetch:plain`'s
///   "Reading from '…' is not allowed", Backstage's message) keeps its message; one
///   that refused nothing itself but met a 404 after a shrugged-off probe reports
///   the 404.
///
/// When several denials fit, the last one is named: the guest went on after the
/// earlier ones. Every denial is in the host's log (`scaffolder::sandbox`) either way.
fn classify(
    ended: Ended,
    budget: &StepBudget,
    memory_exceeded: bool,
    log: &LogSink,
    denials: &[String],
) -> Result<serde_json::Value, StepFailure> {
    use StepFailureKind as K;
    let limits = budget.limits();
    let fail = |kind, message: String| Err(StepFailure::new(kind, message));
    let exceeded = budget.exceeded();
    match ended {
        Ended::Cancelled => fail(K::Cancelled, "the task was cancelled".to_owned()),
        // A limit the host saw exceeded is the cause, whatever the guest did after it.
        _ if exceeded.is_some() => fail(K::LimitExceeded, exceeded.unwrap_or_default().to_owned()),
        Ended::TimedOut => fail(
            K::Timeout,
            format!("deadline of {}s exceeded", limits.timeout_secs),
        ),
        Ended::Trapped(_) if memory_exceeded => fail(
            K::OutOfMemory,
            format!(
                "memory limit of {} exceeded",
                human_bytes(limits.memory_mib << 20)
            ),
        ),
        Ended::Trapped(err) if table_was_full(&err) => fail(
            K::LimitExceeded,
            limit_message(
                &format!("open handle limit of {}", limits.max_open_handles),
                "maxOpenHandles",
            ),
        ),
        Ended::Exited(status) => fail(
            K::Failed,
            format!(
                "the plugin exited with status {status} instead of returning from the action (exit() ends the whole plugin; return an error or an output instead)"
            ),
        ),
        Ended::Trapped(err) => {
            let message = match err.downcast_ref::<Trap>() {
                Some(Trap::StackOverflow) => format!(
                    "stack overflow: the plugin recursed deeper than its {} stack allows",
                    human_bytes(MAX_WASM_STACK as u64)
                ),
                Some(Trap::MemoryOutOfBounds) => format!(
                    "the plugin crashed: {}: a memory bug in the plugin, or its stack (in linear memory) overflowed",
                    Trap::MemoryOutOfBounds
                ),
                Some(trap) => {
                    let tail = log.stderr_tail();
                    let said = tail.trim();
                    if said.is_empty() {
                        format!("the plugin crashed: {trap}")
                    } else {
                        format!("the plugin crashed: {trap}; it wrote: {said}")
                    }
                }
                // Not a wasm trap: a host call refused to go on (it says why).
                None => format!("{err:#}"),
            };
            // A crash explains nothing unless the plugin wrote why (a panic message);
            // then it is judged as a returned error is.
            let said = log.stderr_tail();
            let cause = if said.trim().is_empty() {
                denials.last()
            } else {
                denial_passed_on(denials, &said)
            };
            match cause {
                Some(d) => fail(K::Denied, format!("{d} (then: {message})")),
                None => fail(K::Trap, message),
            }
        }
        Ended::Returned(Err(error)) => {
            let (kind, said) = match error {
                wit::ActionError::InvalidInput(m) => (K::InvalidInput, m),
                wit::ActionError::Failed(m) => (K::Failed, m),
                wit::ActionError::Denied(m) => (K::Denied, m),
            };
            match denial_passed_on(denials, &said) {
                Some(d) => fail(K::Denied, format!("{d} (the plugin reported: {said})")),
                None => fail(kind, said),
            }
        }
        Ended::Returned(Ok(output)) => {
            if output.len() as u64 > limits.max_output_bytes {
                return fail(
                    K::LimitExceeded,
                    format!(
                        "output of {} exceeds the limit of {}",
                        human_bytes(output.len() as u64),
                        human_bytes(limits.max_output_bytes)
                    ),
                );
            }
            let value: serde_json::Value = serde_json::from_str(&output).map_err(|err| {
                StepFailure::new(
                    K::Failed,
                    format!("the plugin returned invalid JSON: {err}"),
                )
            })?;
            if !value.is_object() {
                return fail(
                    K::Failed,
                    format!("the plugin returned {value} where an output object was expected"),
                );
            }
            Ok(value)
        }
    }
}

/// The symptoms of each kind of refusal as a guest receives it, by the start of the
/// host's denial message (each capability words its own, in `capability/`). Matched without case.
const REFUSAL_SYMPTOMS: &[(&[&str], &[&str])] = &[
    (
        // `wasi:filesystem`'s `access` and `not-permitted`: std's EACCES and EPERM texts
        // (also in the error codes' own descriptions and Node-style `EACCES: permission
        // denied`).
        &[
            "access outside the workspace denied",
            "write to the read-only template directory denied",
        ],
        &["permission denied", "operation not permitted"],
    ),
    (
        // `wasi:sockets`' `access-denied`: std's EACCES text, or the code itself.
        &[
            "TCP connection to",
            "TCP peer",
            "socket use",
            "name lookup of",
        ],
        &[
            "permission denied",
            "access denied",
            "access-denied",
            "accessdenied",
        ],
    ),
    (
        // `wasi:http`'s `HTTP-request-denied`, raw or as the SDKs word it; JavaScript's
        // `fetch` (StarlingMonkey, in TypeScript plugins) says only "NetworkError when
        // attempting to fetch resource" for any refused request.
        &["outbound HTTP"],
        &[
            "httprequestdenied",
            "denied: its origin is not granted",
            "networkerror when attempting to fetch resource",
        ],
    ),
    (
        // `host.get-secret` answering none, as the SDK's `required_secret` words it.
        &["secret '"],
        &["is not available: add it to the task or grant it"],
    ),
];

/// The last denial whose symptom is in `said`: the refusal the guest passed on.
fn denial_passed_on<'a>(denials: &'a [String], said: &str) -> Option<&'a String> {
    let said = said.to_lowercase();
    denials.iter().rev().find(|denial| {
        REFUSAL_SYMPTOMS.iter().any(|(kinds, symptoms)| {
            kinds.iter().any(|k| denial.starts_with(k)) && symptoms.iter().any(|s| said.contains(s))
        })
    })
}

/// Whether a trap came from the step's resource table being full (`maxOpenHandles`).
fn table_was_full(err: &wasmtime::Error) -> bool {
    use wasmtime::component::ResourceTableError;
    matches!(
        find_cause::<ResourceTableError>(err),
        Some(ResourceTableError::Full)
    )
}

/// The error of type `E` in `err` or among its causes.
fn find_cause<E: std::error::Error + Send + Sync + 'static>(err: &wasmtime::Error) -> Option<&E> {
    err.downcast_ref::<E>()
        .or_else(|| err.chain().find_map(|cause| cause.downcast_ref::<E>()))
}

#[cfg(test)]
mod tests;
