//! Where a run's events go: the task store (persisted first, then announced on the
//! [`EventBus`] so open streams send them at once) or, in a dry run, memory.

use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use tokio::sync::broadcast;
use tokio::sync::mpsc::UnboundedSender;

use scaffolder_store::{EventRecord, EventType, Store, TaskState};

/// Announces "task X has new events" inside this process, with the events as they were
/// stored when the announcer has them; streams send those without reading them back, and
/// read the store otherwise (and now and then, for other replicas' events).
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Announcement>,
}

/// Events of one task were persisted (or removed, by a retry).
#[derive(Debug, Clone)]
pub struct Announcement {
    pub task_id: Arc<str>,
    /// The events just persisted, in id order, exactly as stored; empty when readers
    /// should read the store instead (which events changed is not known here).
    pub events: Arc<[EventRecord]>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }

    /// Receives every announcement from now on. A lagging receiver sees
    /// `RecvError::Lagged` and should read the store.
    pub fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.sender.subscribe()
    }

    /// Says the task's events changed; readers read the store.
    pub fn publish(&self, task_id: &str) {
        self.send(task_id, Vec::new());
    }

    /// Announces events that were just persisted.
    pub fn publish_events(&self, task_id: &str, events: Vec<EventRecord>) {
        if !events.is_empty() {
            self.send(task_id, events);
        }
    }

    fn send(&self, task_id: &str, events: Vec<EventRecord>) {
        // No receivers is fine: nobody is streaming.
        let _ = self.sender.send(Announcement {
            task_id: task_id.into(),
            events: events.into(),
        });
    }

    /// Persists an event, then announces it.
    pub async fn append(
        &self,
        store: &Store,
        task_id: &str,
        event_type: EventType,
        body: &Json,
    ) -> scaffolder_store::Result<EventRecord> {
        let event = store.append_event(task_id, event_type, body).await?;
        self.publish_events(task_id, vec![event.clone()]);
        Ok(event)
    }
}

/// The side effects of a run other than files: events, saved step outputs, checkpoints
/// and added secrets. Tasks record them in the store; dry runs in memory.
#[async_trait::async_trait]
pub(crate) trait Journal: Send + Sync {
    /// Records a `log` event with this body.
    async fn log(&self, body: Json);
    /// Records `log` events with these bodies, in order.
    async fn log_many(&self, bodies: Vec<Json>) {
        for body in bodies {
            self.log(body).await;
        }
    }
    /// Saves a completed step's output so a resumed task skips the step.
    async fn step_completed(&self, step_id: &str, output: &Json);
    async fn checkpoint(&self, step_id: &str, key: &str) -> Result<Option<Json>, String>;
    async fn set_checkpoint(&self, step_id: &str, key: &str, value: &Json) -> Result<(), String>;
    async fn add_secret(&self, name: &str, value: &str) -> Result<(), String>;
}

/// The journal of a real task.
pub(crate) struct TaskJournal {
    pub store: Store,
    pub bus: EventBus,
    pub task_id: String,
    /// The task's saved progress, as loaded when the run started. The run is its only
    /// writer: completed steps are written in one statement, each checkpoint in its own
    /// row.
    pub state: tokio::sync::Mutex<TaskState>,
}

#[async_trait::async_trait]
impl Journal for TaskJournal {
    async fn log(&self, body: Json) {
        if let Err(err) = self
            .bus
            .append(&self.store, &self.task_id, EventType::Log, &body)
            .await
        {
            tracing::error!(task_id = %self.task_id, "could not record an event: {err}");
        }
    }

    async fn log_many(&self, bodies: Vec<Json>) {
        match self.store.append_log_events(&self.task_id, &bodies).await {
            Ok(events) => self.bus.publish_events(&self.task_id, events),
            Err(err) => {
                tracing::error!(task_id = %self.task_id, "could not record {} events: {err}", bodies.len());
            }
        }
    }

    async fn step_completed(&self, step_id: &str, output: &Json) {
        let mut state = self.state.lock().await;
        state.complete_step(step_id, output);
        if let Err(err) = self.store.write_state(&self.task_id, &state).await {
            tracing::error!(task_id = %self.task_id, step_id, "could not save the step's output; a resumed task would run it again: {err}");
        }
    }

    async fn checkpoint(&self, step_id: &str, key: &str) -> Result<Option<Json>, String> {
        Ok(self.state.lock().await.checkpoint(step_id, key).cloned())
    }

    async fn set_checkpoint(&self, step_id: &str, key: &str, value: &Json) -> Result<(), String> {
        let mut state = self.state.lock().await;
        self.store
            .set_checkpoint(&self.task_id, step_id, key, value)
            .await
            .map_err(|e| e.to_string())?;
        state.set_checkpoint(step_id, key, value.clone());
        Ok(())
    }

    async fn add_secret(&self, name: &str, value: &str) -> Result<(), String> {
        self.store
            .add_secret(&self.task_id, name, value)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The journal of a run without a task: events collected (and sent to an observer, when
/// there is one), nothing persisted.
#[derive(Default)]
pub(crate) struct MemoryJournal {
    events: Mutex<Vec<Json>>,
    observer: Option<UnboundedSender<Json>>,
    state: Mutex<TaskState>,
}

impl MemoryJournal {
    pub fn new(observer: Option<UnboundedSender<Json>>) -> Self {
        Self {
            observer,
            ..Self::default()
        }
    }

    /// The events recorded so far, in order; the journal keeps none.
    pub fn take_events(&self) -> Vec<Json> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait::async_trait]
impl Journal for MemoryJournal {
    async fn log(&self, body: Json) {
        if let Some(observer) = &self.observer {
            // An observer that went away only stops watching.
            let _ = observer.send(body.clone());
        }
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(body);
    }

    async fn step_completed(&self, _step_id: &str, _output: &Json) {}

    async fn checkpoint(&self, step_id: &str, key: &str) -> Result<Option<Json>, String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.checkpoint(step_id, key).cloned())
    }

    async fn set_checkpoint(&self, step_id: &str, key: &str, value: &Json) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.set_checkpoint(step_id, key, value.clone());
        Ok(())
    }

    async fn add_secret(&self, _name: &str, _value: &str) -> Result<(), String> {
        Ok(())
    }
}

/// `{ message, stepId?, status? }`, the body of a workflow `log` event.
pub(crate) fn log_body(message: String, step_id: Option<&str>, status: Option<&str>) -> Json {
    let mut body = json!({ "message": message });
    if let Some(step_id) = step_id {
        body["stepId"] = json!(step_id);
    }
    if let Some(status) = status {
        body["status"] = json!(status);
    }
    body
}
