//! A step's log: lines from the runner and from the Wasm action, redacted, formatted as
//! Backstage's winston logger formats them, and recorded in order as `log` events.
//!
//! The runtime calls [`StepHost::log`] synchronously from the guest; lines go through a
//! channel to one writer, polled beside the step, so the guest never waits for the
//! database and the events keep their order. The writer has recorded every line before
//! the step's `Finished step` event is recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use scaffolder_runtime::{Checkpoint, LogLevel, StepHost};
use tokio::sync::mpsc;

use crate::events::{Journal, log_body};
use crate::redact::Redactor;

/// Records a step's lines, in order, as they arrive from its [`LogLines`].
pub(crate) struct LogWriter {
    receiver: mpsc::UnboundedReceiver<String>,
    journal: Arc<dyn Journal>,
    step_id: String,
}

/// Where a step's lines are sent; cheap to clone, handed to the running action.
#[derive(Clone)]
pub(crate) struct LogLines {
    sender: mpsc::UnboundedSender<String>,
    redactor: Arc<Redactor>,
}

/// Opens a step's log: its lines, and the writer that records them. The writer is meant
/// to be polled beside the step in the same task (`tokio::join!`), not spawned: a dry
/// run's journal is memory, and handing each step's lines to another thread and waiting
/// for it cost more than the step's own action.
pub(crate) fn open(
    journal: Arc<dyn Journal>,
    step_id: &str,
    redactor: Arc<Redactor>,
) -> (LogLines, LogWriter) {
    let (sender, receiver) = mpsc::unbounded_channel::<String>();
    (
        LogLines { sender, redactor },
        LogWriter {
            receiver,
            journal,
            step_id: step_id.to_owned(),
        },
    )
}

impl LogLines {
    pub fn info(&self, message: &str) {
        self.line(LogLevel::Info, message);
    }

    /// Records a line, redacted. Debug lines go to tracing only (Backstage's task logger
    /// drops them at its default level).
    pub fn line(&self, level: LogLevel, message: &str) {
        let message = self.redactor.redact(message);
        // The server's log keeps one line per record: newlines are escaped there.
        let logged = message.replace('\n', "\\n");
        if level == LogLevel::Debug {
            tracing::debug!(target: "scaffolder::step", "{logged}");
            return;
        }
        tracing::info!(target: "scaffolder::step", "{logged}");
        let _ = self.sender.send(format_line(level, &message));
    }
}

impl LogWriter {
    /// Records lines until every [`LogLines`] of the step is dropped (the runtime drops
    /// the action's when the step returns) and the last line is recorded. Lines that
    /// arrived while the last batch was being written go in one batch.
    pub async fn write_all(mut self) {
        let mut messages = Vec::new();
        while self.receiver.recv_many(&mut messages, 256).await > 0 {
            let bodies = messages
                .drain(..)
                .map(|message| log_body(message, Some(&self.step_id), None))
                .collect();
            self.journal.log_many(bodies).await;
        }
    }
}

/// winston's `colorize()` + `simple()`: `<coloured level>: <message>`.
fn format_line(level: LogLevel, message: &str) -> String {
    let (colour, name) = match level {
        LogLevel::Error => (31, "error"),
        LogLevel::Warn => (33, "warn"),
        LogLevel::Info => (32, "info"),
        LogLevel::Debug => (34, "debug"),
    };
    format!("\u{1b}[{colour}m{name}\u{1b}[39m: {message}")
}

/// What one step's action sees of the engine.
pub(crate) struct ActionHost {
    pub log: LogLines,
    pub redactor: Arc<Redactor>,
    pub journal: Arc<dyn Journal>,
    pub step_id: String,
    /// The task's secrets; secrets added here are visible to later steps.
    pub secrets: Arc<Mutex<BTreeMap<String, String>>>,
}

#[async_trait::async_trait]
impl StepHost for ActionHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.log.line(level, message);
    }

    async fn add_secret(&self, name: &str, value: &str) -> Result<(), String> {
        self.redactor.add(value);
        let journal = self.journal.clone();
        let (name_owned, value_owned) = (name.to_owned(), value.to_owned());
        detached(async move { journal.add_secret(&name_owned, &value_owned).await }).await?;
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    async fn checkpoint_get(&self, key: &str) -> Result<Option<Checkpoint>, String> {
        let Some(value) = self.journal.checkpoint(&self.step_id, key).await? else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("the stored checkpoint '{key}' is not valid: {e}"))
    }

    fn holds_task(&self) -> bool {
        self.journal.holds_task()
    }

    async fn checkpoint_set(&self, key: &str, value: Checkpoint) -> Result<(), String> {
        let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
        let (journal, step_id, key) = (self.journal.clone(), self.step_id.clone(), key.to_owned());
        detached(async move { journal.set_checkpoint(&step_id, &key, &value).await }).await
    }
}

/// Runs a store write a guest asked for on a task of its own. The step's future may be
/// dropped at any await (deadline, cancel); the write then still commits or rolls back
/// by itself instead of being abandoned inside an open transaction.
async fn detached<T: Send + 'static>(
    write: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    tokio::spawn(write)
        .await
        .map_err(|err| format!("the write was interrupted: {err}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_winston_colours() {
        assert_eq!(
            format_line(LogLevel::Info, "hello"),
            "\u{1b}[32minfo\u{1b}[39m: hello"
        );
        assert_eq!(
            format_line(LogLevel::Error, "bad"),
            "\u{1b}[31merror\u{1b}[39m: bad"
        );
    }
}
