//! Tasks and events in their wire shapes (`SerializedTask`, `SerializedTaskEvent`).

use scaffolder_store::{EventRecord, TaskRecord};
use serde_json::{Value as Json, json};

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as JavaScript's `Date.toISOString()`.
pub fn iso8601(epoch_ms: i64) -> String {
    let nanos = i128::from(epoch_ms) * 1_000_000;
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `{ id, spec, status, createdAt, lastHeartbeatAt?, createdBy? }`; never secrets or state.
pub fn task(task: &TaskRecord) -> Json {
    let mut out = json!({
        "id": task.id,
        "spec": task.spec,
        "status": task.status.as_str(),
        "createdAt": iso8601(task.created_at),
    });
    if let Some(at) = task.last_heartbeat_at {
        out["lastHeartbeatAt"] = json!(iso8601(at));
    }
    if let Some(by) = &task.created_by {
        out["createdBy"] = json!(by);
    }
    out
}

/// Whether a task's stream stays open after completion (`startOver` recovery).
pub fn is_recoverable(task: &TaskRecord) -> bool {
    task.spec.recover_strategy() == "startOver"
}

/// `{ id, isTaskRecoverable, taskId, body, type, createdAt }`.
pub fn event(event: &EventRecord, recoverable: bool) -> Json {
    json!({
        "id": event.id,
        "isTaskRecoverable": recoverable,
        "taskId": event.task_id,
        "body": event.body,
        "type": event.event_type.as_str(),
        "createdAt": iso8601(event.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_javascript_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_735_725_600_123), "2025-01-01T10:00:00.123Z");
    }
}
