//! Rows read back into records: tasks and events, their JSON columns parsed, a row that
//! does not parse reported as `Corrupt`.

use serde_json::{Map, Value as Json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Result, StoreError};
use crate::records::{EventRecord, EventType, TaskRecord, TaskState, TaskStatus};
use crate::spec::TaskSpec;

pub(super) fn task_from_row(row: &AnyRow) -> Result<TaskRecord> {
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    Ok(TaskRecord {
        spec: parse_spec(&id, row.try_get("spec")?)?,
        status: TaskStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            task_id: id.clone(),
            message: format!("unknown status '{status}'"),
        })?,
        created_at: row.try_get("created_at")?,
        last_heartbeat_at: row.try_get("last_heartbeat_at")?,
        created_by: row.try_get("created_by")?,
        id: id.into(),
    })
}

pub(super) fn event_from_row(row: &AnyRow) -> Result<EventRecord> {
    let task_id: String = row.try_get("task_id")?;
    let event_type: String = row.try_get("event_type")?;
    Ok(EventRecord {
        id: row.try_get("id")?,
        body: parse_json(&task_id, row.try_get("body")?)?,
        event_type: EventType::parse(&event_type).ok_or_else(|| StoreError::Corrupt {
            task_id: task_id.clone(),
            message: format!("unknown event type '{event_type}'"),
        })?,
        created_at: row.try_get("created_at")?,
        task_id: task_id.into(),
    })
}

pub(super) fn parse_json(task_id: &str, text: String) -> Result<Json> {
    serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
        task_id: task_id.into(),
        message: err.to_string(),
    })
}

/// A task's spec, read once here: every reader gets the typed spec or `Corrupt`.
fn parse_spec(task_id: &str, text: String) -> Result<TaskSpec> {
    serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
        task_id: task_id.into(),
        message: format!("the stored spec is not a task spec: {err}"),
    })
}

pub(super) fn parse_state(task_id: &str, text: Option<String>) -> Result<TaskState> {
    match text {
        None => Ok(TaskState::default()),
        Some(text) => serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
            task_id: task_id.into(),
            message: err.to_string(),
        }),
    }
}

pub(super) fn parse_object(task_id: &str, text: Option<String>) -> Result<Map<String, Json>> {
    match text {
        None => Ok(Map::new()),
        Some(text) => match parse_json(task_id, text)? {
            Json::Object(map) => Ok(map),
            _ => Err(StoreError::Corrupt {
                task_id: task_id.into(),
                message: "secrets are not a JSON object".into(),
            }),
        },
    }
}

/// The length of the `spec` column of a task row (0 if it has none).
pub(super) fn spec_len(row: &AnyRow) -> usize {
    row.try_get::<&str, _>("spec").map_or(0, str::len)
}
