//! A task's saved progress (`tasks.state`, the completed steps), read with its checkpoints
//! and written by the run holding the lease.

use serde_json::json;

use super::Store;
use super::leases::lease_held;
use super::rows::parse_state;
use crate::error::Result;
use crate::records::{Lease, TaskState};
use crate::timing::Timer;

/// Replaces the completed steps of the run holding a lease. Binds: the state
/// ([`state_text`]), task id, attempt.
pub(super) const WRITE_STATE: &str =
    "UPDATE tasks SET state = ? WHERE id = ? AND attempt = ? AND status = 'processing'";

impl Store {
    /// The task's saved progress.
    pub async fn task_state(&self, task_id: &str) -> Result<TaskState> {
        let mut state = parse_state(
            task_id,
            self.task_column(&mut *self.reader().await?, task_id, "state")
                .await?,
        )?;
        self.load_checkpoints(task_id, &mut state).await?;
        Ok(state)
    }

    /// Replaces the task's completed steps; only the run holding `lease` writes them.
    /// Checkpoints are not written here: [`Store::set_checkpoint`] keeps each in its own
    /// row.
    pub async fn write_state(&self, lease: &Lease, state: &TaskState) -> Result<()> {
        let _timer = Timer::start("write_state");
        let done = sqlx::query(&self.sql(WRITE_STATE))
            .bind(state_text(state))
            .bind(lease.task_id.as_str())
            .bind(lease.attempt)
            .execute(&mut *self.writer().await?)
            .await?;
        lease_held(done.rows_affected(), lease)
    }
}

/// `tasks.state`: the completed steps (checkpoints have rows of their own).
pub(super) fn state_text(state: &TaskState) -> String {
    json!({ "steps": state.steps }).to_string()
}
