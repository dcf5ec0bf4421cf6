//! A run's log: the runner's events and the lines of its steps' actions, redacted,
//! formatted as Backstage's winston logger formats them, and recorded in order as `log`
//! events.
//!
//! Everything goes through one channel to one writer, polled beside the run in the same
//! task (`tokio::join!`), not spawned. The runtime calls [`StepHost::log`] synchronously
//! from the guest, which never waits for the database; events that queue while a batch
//! is written go in the next batch, so a step's `Beginning step` and its first lines, or
//! its `Finished step` and the next step's start, are usually one statement. A completed
//! step's output is saved in the batch too ([`RunLog::save_state`]): with its `Finished
//! step` and the next step's start, in one transaction, which the next step's action
//! waits for ([`RunLog::written`]): an action acts on the world only once the log says
//! its step began (and the steps before it completed), as Backstage awaits its
//! `Beginning step` event. (A run's writes are the throughput limit of SQLite, which has
//! one writer; and handing a dry run's lines to another thread cost more than its
//! actions.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use scaffolder_runtime::{Checkpoint, LogLevel, StepHost};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

use crate::events::{Journal, log_body};
use crate::redact::Redactor;

/// Where a run's events are sent, in the order they are to be recorded.
#[derive(Clone)]
pub(crate) struct RunLog {
    sender: mpsc::UnboundedSender<Entry>,
}

enum Entry {
    Event(Json),
    /// Save the journal's step state with the batch.
    State,
    /// Tell once everything sent before is written (or could not be: the journal says
    /// why).
    Written(oneshot::Sender<()>),
}

/// Records a run's events as they arrive from its [`RunLog`].
pub(crate) struct RunLogWriter {
    receiver: mpsc::UnboundedReceiver<Entry>,
    journal: Arc<dyn Journal>,
}

/// Where a step's lines are sent; cheap to clone, handed to the running action.
#[derive(Clone)]
pub(crate) struct LogLines {
    log: RunLog,
    step_id: Arc<str>,
    redactor: Arc<Redactor>,
}

/// Opens a run's log and the writer that records it; poll the writer beside the run.
pub(crate) fn open(journal: Arc<dyn Journal>) -> (RunLog, RunLogWriter) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (RunLog { sender }, RunLogWriter { receiver, journal })
}

impl RunLog {
    /// Records an event body after those sent before it.
    pub fn record(&self, body: Json) {
        let _ = self.sender.send(Entry::Event(body));
    }

    /// Saves the journal's step state ([`Journal::step_completed`]) with the events sent
    /// before and right after it, in one write.
    pub fn save_state(&self) {
        let _ = self.sender.send(Entry::State);
    }

    /// Waits until everything sent before is written (or could not be: the journal says
    /// why). Entries sent together are written together, so waiting right after a step's
    /// beginning usually costs no write of its own.
    pub async fn written(&self) {
        let (told, written) = oneshot::channel();
        if self.sender.send(Entry::Written(told)).is_ok() {
            // A dropped sender: the writer is gone with the run.
            let _ = written.await;
        }
    }

    /// Records a task-level event: `{ message }`.
    pub fn task(&self, message: String) {
        self.record(log_body(message, None, None));
    }

    /// Records a step status event: `{ message, stepId, status }`.
    pub fn step_status(&self, step_id: &str, message: String, status: &str) {
        self.record(log_body(message, Some(step_id), Some(status)));
    }

    /// The lines of one step, redacted with `redactor`.
    pub fn step_lines(&self, step_id: &str, redactor: Arc<Redactor>) -> LogLines {
        LogLines {
            log: self.clone(),
            step_id: step_id.into(),
            redactor,
        }
    }
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
        self.log.record(log_body(
            format_line(level, &message),
            Some(&self.step_id),
            None,
        ));
    }
}

impl RunLogWriter {
    /// Records events until every [`RunLog`] and [`LogLines`] of the run is dropped (the
    /// runtime drops an action's when its step returns) and the last event is recorded.
    pub async fn write_all(mut self) {
        let mut entries = Vec::new();
        while self.receiver.recv_many(&mut entries, 256).await > 0 {
            let mut bodies = Vec::with_capacity(entries.len());
            let (mut save_state, mut waiting) = (false, Vec::new());
            for entry in entries.drain(..) {
                match entry {
                    Entry::Event(body) => bodies.push(body),
                    Entry::State => save_state = true,
                    Entry::Written(tell) => waiting.push(tell),
                }
            }
            if !bodies.is_empty() || save_state {
                self.journal.record(bodies, save_state).await;
            }
            for tell in waiting {
                let _ = tell.send(());
            }
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
