//! The WIT `host` interface: granted secrets, secrets the step adds, checkpoints,
//! cancellation, the operator's settings, and log lines (served by [`Logs`]).
//!
//! Every call that leaves something with the host is charged to the step's budget
//! before the host keeps it (`maxSecrets`, `maxSecretBytes`, `maxCheckpoints`,
//! `maxCheckpointBytes`, and the log's limits).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::WasiCtxBuilder;

use super::logs::Logs;
use super::{Capability, Denials, EffectiveGrants, StepSetup};
use crate::bindings::scaffolder::action::{host, types};
use crate::bindings::wit;
use crate::budget::{LimitExceeded, Meter, StepBudget};
use crate::step::{Checkpoint, LogLevel, StepFailure, StepHost, StepState, StepUsage};

/// Per-step state of the host calls.
pub(crate) struct HostCalls {
    host: Arc<dyn StepHost>,
    grants: Arc<EffectiveGrants>,
    denials: Denials,
    budget: Arc<StepBudget>,
    /// The task's secrets, and those the step added.
    secrets: BTreeMap<String, String>,
    settings: Arc<BTreeMap<String, String>>,
    cancel: CancellationToken,
}

impl Capability for HostCalls {
    fn link(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
        types::add_to_linker::<_, HostCallsData>(linker, view)?;
        host::add_to_linker::<_, HostCallsData>(linker, view)
    }

    fn prepare(setup: &StepSetup<'_>, _wasi: &mut WasiCtxBuilder) -> Result<Self, StepFailure> {
        Ok(Self {
            host: setup.host.clone(),
            grants: setup.grants.clone(),
            denials: setup.denials.clone(),
            budget: setup.budget.clone(),
            secrets: setup.secrets.clone(),
            settings: setup.settings.clone(),
            cancel: setup.cancel.clone(),
        })
    }

    fn account(&self, usage: &mut StepUsage) {
        usage.secrets_added = self.budget.used(Meter::Secrets);
        usage.checkpoints_written = self.budget.used(Meter::Checkpoints);
    }
}

/// The `HasData` marker that links the host calls.
struct HostCallsData;

impl HasData for HostCallsData {
    type Data<'a> = HostCallsView<'a>;
}

/// The host calls' state, and the log that `host.log` writes to.
struct HostCallsView<'a> {
    calls: &'a mut HostCalls,
    logs: &'a Logs,
}

fn view(state: &mut StepState) -> HostCallsView<'_> {
    let capabilities = &mut state.capabilities;
    HostCallsView {
        calls: &mut capabilities.host_calls,
        logs: &capabilities.logs,
    }
}

impl types::Host for HostCallsView<'_> {}

impl host::Host for HostCallsView<'_> {
    async fn log(&mut self, level: wit::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            wit::Level::Debug => LogLevel::Debug,
            wit::Level::Info => LogLevel::Info,
            wit::Level::Warn => LogLevel::Warn,
            wit::Level::Error => LogLevel::Error,
        };
        self.logs
            .sink()
            .line(level, &message)
            .map_err(|LimitExceeded| wasmtime::format_err!("log limit exceeded"))
    }

    async fn get_secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        let calls = &self.calls;
        if !calls.grants.allows_secret(&name) {
            calls.denials.record(format!(
                "secret '{name}' denied: it is not granted to this action"
            ));
            return Ok(None);
        }
        Ok(calls.secrets.get(&name).cloned())
    }

    async fn add_secret(&mut self, name: String, value: String) -> wasmtime::Result<()> {
        let calls = &mut self.calls;
        calls
            .budget
            .charge_item(Meter::Secrets, Meter::SecretBytes, name.len() + value.len())
            .map_err(|LimitExceeded| wasmtime::format_err!("secret limit exceeded"))?;
        calls
            .host
            .add_secret(&name, &value)
            .await
            .map_err(|message| {
                wasmtime::format_err!("secret '{name}' could not be stored: {message}")
            })?;
        calls.secrets.insert(name, value);
        Ok(())
    }

    async fn checkpoint_get(&mut self, key: String) -> wasmtime::Result<Option<wit::Checkpoint>> {
        let stored = self
            .calls
            .host
            .checkpoint_get(&key)
            .await
            .map_err(|message| {
                wasmtime::format_err!("checkpoint '{key}' could not be read: {message}")
            })?;
        Ok(stored.map(|c| match c {
            Checkpoint::Success { value } => wit::Checkpoint::Success(value.to_string()),
            Checkpoint::Failed { reason } => wit::Checkpoint::Failed(reason),
        }))
    }

    async fn checkpoint_set(
        &mut self,
        key: String,
        value: wit::Checkpoint,
    ) -> wasmtime::Result<()> {
        let calls = &self.calls;
        let size = match &value {
            wit::Checkpoint::Success(json) => json.len(),
            wit::Checkpoint::Failed(reason) => reason.len(),
        };
        calls
            .budget
            .charge_item(Meter::Checkpoints, Meter::CheckpointBytes, key.len() + size)
            .map_err(|LimitExceeded| wasmtime::format_err!("checkpoint limit exceeded"))?;
        let value = match value {
            wit::Checkpoint::Success(json) => Checkpoint::Success {
                value: serde_json::from_str(&json).map_err(|err| {
                    wasmtime::format_err!("checkpoint '{key}' is not valid JSON: {err}")
                })?,
            },
            wit::Checkpoint::Failed(reason) => Checkpoint::Failed { reason },
        };
        calls
            .host
            .checkpoint_set(&key, value)
            .await
            .map_err(|message| {
                wasmtime::format_err!("checkpoint '{key}' could not be stored: {message}")
            })
    }

    async fn is_cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.calls.cancel.is_cancelled())
    }

    async fn get_config(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.calls.settings.get(&key).cloned())
    }
}
