//! One action run on its own, outside any task: what Backstage's actions registry asks
//! of us (`POST .../actions/:id/invoke`). The action runs in the same sandbox, with the
//! same grants and limits as a task's step, in a fresh temporary workspace that is
//! removed afterwards; its log lines go to tracing, tagged with the invocation, and the
//! invocation itself (who, which action, the outcome) to the `scaffolder::audit` target.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scaffolder_runtime::{
    Checkpoint, LogLevel, StepContext, StepFailure, StepFailureKind, StepHost, StepRequest,
};
use scaffolder_template::validate_input;
use serde_json::{Map, Value as Json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Engine;
use crate::redact::Redactor;
use crate::workflow::describe_errors;

/// A request to run one action.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The action's id as loaded (`postgres:database:create`).
    pub action_id: String,
    pub input: Json,
    /// Secrets sent with the request, by name.
    pub secrets: Map<String, Json>,
    /// Who asks, for the audit log (`plugin:scaffolder`).
    pub caller: String,
    /// The user the caller acts for, when it said so (`user:default/jane`).
    pub user_ref: Option<String>,
}

/// Why an invocation produced no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("Action \"{0}\" not found")]
    NotFound(String),
    /// The input does not match the action's input schema, or the action rejected it.
    #[error("{0}")]
    InvalidInput(String),
    /// The output is not an object matching the action's output schema.
    #[error("{0}")]
    InvalidOutput(String),
    /// The action failed, or the sandbox stopped it.
    #[error("{0}")]
    Failed(String),
}

impl Engine {
    /// Runs one action in a fresh temporary workspace and returns its output object.
    pub async fn invoke(&self, invocation: Invocation) -> Result<Json, InvokeError> {
        let actions = self.actions();
        let Some(action) = actions.get(&invocation.action_id) else {
            return Err(InvokeError::NotFound(invocation.action_id));
        };
        let id = uuid::Uuid::new_v4().to_string();
        let span =
            tracing::info_span!("invocation", invocation = %id, action = %invocation.action_id);
        async {
            tracing::info!(
                target: "scaffolder::audit",
                caller = %invocation.caller,
                user = invocation.user_ref.as_deref().unwrap_or("-"),
                plugin = %action.plugin.name(),
                digest = %action.plugin.digest(),
                "action invoked"
            );
            let started = Instant::now();
            let result = self.run_invocation(&id, action, &invocation).await;
            let outcome = match &result {
                Ok(_) => "completed".to_owned(),
                Err(err) => format!("failed: {err}"),
            };
            tracing::info!(
                target: "scaffolder::audit",
                caller = %invocation.caller,
                elapsed_ms = started.elapsed().as_millis() as u64,
                outcome = %outcome,
                "action finished"
            );
            result
        }
        .instrument(span)
        .await
    }

    async fn run_invocation(
        &self,
        id: &str,
        action: &crate::RegisteredAction,
        invocation: &Invocation,
    ) -> Result<Json, InvokeError> {
        let action_id = &invocation.action_id;
        if let Err(errors) = validate_input(&action.info.input_schema, &invocation.input) {
            return Err(InvokeError::InvalidInput(format!(
                "Invalid input to action \"{action_id}\": {}",
                describe_errors(&errors)
            )));
        }
        let sent = invocation
            .secrets
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
            .collect();
        let secrets = self.config().environment.secrets_for_step(sent);
        let redactor = Arc::new(Redactor::new(secrets.values().map(String::as_str)));
        let workspace = tempfile::Builder::new()
            .prefix("invoke-")
            .tempdir_in(self.invocation_directory())
            .map_err(|err| {
                InvokeError::Failed(format!(
                    "could not create a workspace for the action: {err}"
                ))
            })?;
        let request = StepRequest {
            action_id: action_id.clone(),
            input: invocation.input.clone(),
            context: StepContext {
                task_id: id.to_owned(),
                step_id: action_id.clone(),
                step_name: action_id.clone(),
                user_ref: invocation.user_ref.clone(),
                ..StepContext::default()
            },
            workspace: workspace.path().to_owned(),
            template_directory: None,
            secrets,
            cancel: CancellationToken::new(),
            workspace_cap: None,
        };
        let host = Arc::new(InvocationHost {
            redactor: redactor.clone(),
            checkpoints: Mutex::default(),
        });
        let output = action
            .plugin
            .execute(request, host)
            .await
            .map_err(|failure| failed(&redactor, failure))?;
        let Json::Object(_) = &output else {
            return Err(InvokeError::InvalidOutput(format!(
                "Invalid output from action \"{action_id}\": the output is not an object"
            )));
        };
        if let Some(schema) = &action.info.output_schema
            && let Err(errors) = validate_input(schema, &output)
        {
            return Err(InvokeError::InvalidOutput(format!(
                "Invalid output from action \"{action_id}\": {}",
                describe_errors(&errors)
            )));
        }
        Ok(output)
    }

    /// Where invocations get their temporary workspaces (beside the tasks' ones).
    fn invocation_directory(&self) -> std::path::PathBuf {
        let dir = self.config().working_directory.join("invocations");
        // A failure shows when the workspace is created in it.
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}

fn failed(redactor: &Redactor, failure: StepFailure) -> InvokeError {
    let message = redactor.redact(&failure.message);
    match failure.kind {
        StepFailureKind::InvalidInput => InvokeError::InvalidInput(message),
        _ => InvokeError::Failed(message),
    }
}

/// The host side of an invocation: log lines to tracing (redacted), checkpoints kept for
/// the one run, secrets an action adds dropped (there is no later step to read them).
struct InvocationHost {
    redactor: Arc<Redactor>,
    checkpoints: Mutex<BTreeMap<String, Checkpoint>>,
}

#[async_trait::async_trait]
impl StepHost for InvocationHost {
    fn log(&self, level: LogLevel, message: &str) {
        // Called from the step's own task, inside the invocation's span.
        let message = self.redactor.redact(message);
        match level {
            LogLevel::Debug => tracing::debug!(target: "scaffolder::invoke", "{message}"),
            LogLevel::Info => tracing::info!(target: "scaffolder::invoke", "{message}"),
            LogLevel::Warn => tracing::warn!(target: "scaffolder::invoke", "{message}"),
            LogLevel::Error => tracing::error!(target: "scaffolder::invoke", "{message}"),
        }
    }

    async fn add_secret(&self, _name: &str, value: &str) -> Result<(), String> {
        self.redactor.add(value);
        Ok(())
    }

    async fn checkpoint_get(&self, key: &str) -> Result<Option<Checkpoint>, String> {
        let checkpoints = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        Ok(checkpoints.get(key).cloned())
    }

    async fn checkpoint_set(&self, key: &str, value: Checkpoint) -> Result<(), String> {
        let mut checkpoints = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        checkpoints.insert(key.to_owned(), value);
        Ok(())
    }
}
