//! The only crate with SQL. Tasks, their events, secrets, step state and checkpoints,
//! on SQLite (embedded, the default) or PostgreSQL (when several replicas share the
//! work), through one [`Store`] whose queries run unchanged on both.
//!
//! Timestamps are milliseconds since the Unix epoch; JSON is stored as text. Event ids
//! are monotonic across all tasks. Task secrets are encrypted with the operator's key when
//! there is one (always on PostgreSQL), and on SQLite leave no trace in the files once a
//! task has ended.

mod checkpoints;
mod connections;
mod error;
mod file_modes;
mod notifications;
mod records;
mod scrub;
mod sealed;
mod spec;
mod store;
pub mod testing;
mod timing;
mod workspaces;

pub use error::{Result, StoreError};
pub use notifications::{Notification, Notifications};
pub use records::{
    ClaimedTask, Direction, EventRecord, EventType, Lease, NewTask, OrderField, StepState,
    TaskFilter, TaskId, TaskRecord, TaskState, TaskStatus,
};
pub use sealed::SecretsKey;
pub use spec::{SpecStep, TaskSpec, TaskTemplateInfo, TaskUser};
pub use store::{Backend, Store};
pub use timing::QUERY_DURATION_METRIC;
