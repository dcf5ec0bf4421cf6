//! The sandbox's denials (its `scaffolder::sandbox` warnings) per task, so a test can
//! check that a built-in's normal run touches nothing outside what it was given.
//!
//! A process-wide subscriber records every such warning with the `task_id` of the
//! engine's `task` span it was emitted in; tests in one binary run concurrently, and the
//! task id keeps their denials apart. A warning emitted outside any task span is kept
//! under no task and not returned: an outbound HTTP denial is, as wasmtime-wasi-http
//! sends requests from a future of its own.

use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const SANDBOX_TARGET: &str = "scaffolder::sandbox";

/// Every sandbox warning so far, with the task it belongs to.
static SEEN: Mutex<Vec<(Option<String>, String)>> = Mutex::new(Vec::new());

/// Starts recording; call it before the task runs. Idempotent.
pub fn record() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Recorder);
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the builtins tests");
    });
}

/// The sandbox warnings logged while task `task_id` ran, first first.
pub fn of_task(task_id: &str) -> Vec<String> {
    SEEN.lock()
        .expect("not poisoned")
        .iter()
        .filter(|(task, _)| task.as_deref() == Some(task_id))
        .map(|(_, message)| message.clone())
        .collect()
}

struct Recorder;

/// The `task_id` of an engine `task` span, kept in the span's extensions.
struct TaskId(String);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "task" {
            return;
        }
        let mut visitor = Fields::named("task_id");
        attrs.record(&mut visitor);
        if let (Some(task_id), Some(span)) = (visitor.value, ctx.span(id)) {
            span.extensions_mut().insert(TaskId(task_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != SANDBOX_TARGET {
            return;
        }
        let mut visitor = Fields::named("message");
        event.record(&mut visitor);
        let task = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<TaskId>().map(|t| t.0.clone()))
        });
        SEEN.lock()
            .expect("not poisoned")
            .push((task, visitor.value.unwrap_or_default()));
    }
}

/// Reads one field's value as text.
struct Fields {
    name: &'static str,
    value: Option<String>,
}

impl Fields {
    fn named(name: &'static str) -> Self {
        Self { name, value: None }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.name {
            self.value = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.name {
            self.value = Some(format!("{value:?}"));
        }
    }
}
