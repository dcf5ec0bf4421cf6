//! The rows the store reads and writes, as typed values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::spec::TaskSpec;

/// Backstage's `TaskStatus`, for tasks and steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Open,
    Processing,
    Failed,
    Cancelled,
    Completed,
    Skipped,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Processing => "processing",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Completed => "completed",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "processing" => Self::Processing,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "completed" => Self::Completed,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }

    /// Whether a task in this status has ended (and may be retried).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Cancelled | Self::Completed | Self::Skipped
        )
    }
}

/// Backstage's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Log,
    Completion,
    Cancelled,
    Recovered,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Completion => "completion",
            Self::Cancelled => "cancelled",
            Self::Recovered => "recovered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "log" => Self::Log,
            "completion" => Self::Completion,
            "cancelled" => Self::Cancelled,
            "recovered" => Self::Recovered,
            _ => return None,
        })
    }
}

/// A task's id, as the store keys its rows. Backstage makes them with
/// `crypto.randomUUID()` and so does the engine ([`TaskId::random`]); the store itself
/// takes any text (its tests use short names). It reads as a `&str` wherever one is
/// wanted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// A new random (version 4) UUID.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TaskId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for TaskId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for TaskId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl PartialEq<str> for TaskId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for TaskId {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

impl PartialEq<TaskId> for String {
    fn eq(&self, other: &TaskId) -> bool {
        *self == other.0
    }
}

impl PartialEq<&str> for TaskId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A task to insert.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    pub spec: TaskSpec,
    pub created_by: Option<String>,
    pub secrets: Map<String, Json>,
}

/// A task as stored (never with its secrets: those are read on claim only).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: TaskId,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    pub created_at: i64,
    pub last_heartbeat_at: Option<i64>,
    pub created_by: Option<String>,
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: i64,
    pub task_id: TaskId,
    pub event_type: EventType,
    pub body: Json,
    pub created_at: i64,
}

/// A worker's hold on a task it claimed: the task and the claim's attempt number (a
/// fencing token). Every write of a run names its lease, and the store refuses it
/// ([`crate::StoreError::LeaseLost`]) once the task was recovered, claimed again or ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub task_id: TaskId,
    /// 1 for the first claim, incremented by every claim after it.
    pub attempt: i64,
}

/// A task a worker has just claimed, with what the worker needs to run it.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub task: TaskRecord,
    /// This claim; the run's writes go through it.
    pub lease: Lease,
    pub secrets: Map<String, Json>,
    /// What earlier runs of the task completed (for a retried or recovered task).
    pub state: TaskState,
    /// Whether the task was cancelled before this claim.
    pub cancelled: bool,
}

/// Saved progress of a task: outputs of completed steps and checkpoints, so a retried or
/// recovered task skips work it already did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    #[serde(default)]
    pub steps: BTreeMap<String, StepState>,
    #[serde(default)]
    pub checkpoints: Map<String, Json>,
}

impl TaskState {
    /// Records a completed step's output, so a recovered task skips the step.
    pub fn complete_step(&mut self, step_id: &str, output: &Json) {
        self.steps.insert(
            step_id.to_owned(),
            StepState::Completed {
                output: output.clone(),
            },
        );
    }

    /// The checkpoint of a step under `key`.
    pub fn checkpoint(&self, step_id: &str, key: &str) -> Option<&Json> {
        self.checkpoints.get(&checkpoint_key(step_id, key))
    }

    pub fn set_checkpoint(&mut self, step_id: &str, key: &str, value: Json) {
        self.checkpoints.insert(checkpoint_key(step_id, key), value);
    }
}

/// What an earlier run saved of a step, stored as `{ "status": "completed", "output": ... }`.
/// Only completed steps are saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum StepState {
    Completed {
        #[serde(default = "empty_object")]
        output: Json,
    },
}

fn empty_object() -> Json {
    Json::Object(Map::new())
}

/// Backstage's key of a checkpoint: `v1.task.checkpoint.<step id>.<key>`.
pub(crate) fn checkpoint_key(step_id: &str, key: &str) -> String {
    format!("v1.task.checkpoint.{step_id}.{key}")
}

/// Columns tasks can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    CreatedAt,
    Status,
    CreatedBy,
}

impl OrderField {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created_at" => Self::CreatedAt,
            "status" => Self::Status,
            "created_by" => Self::CreatedBy,
            _ => return None,
        })
    }

    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::Status => "status",
            Self::CreatedBy => "created_by",
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// Filters of `GET /v2/tasks`.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub created_by: Vec<String>,
    pub status: Vec<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// Empty means `created_at desc`.
    pub order: Vec<(OrderField, Direction)>,
}
