//! Fencing: the condition under which a run's write lands (`held`), the heartbeat that
//! keeps a claim alive, and `LeaseLost` when a write no longer holds the task.

use super::{Backend, Store, now_ms};
use crate::error::{Result, StoreError};
use crate::records::Lease;
use crate::timing::Timer;

impl Store {
    /// `WITH held AS (...)`: the task's id when `?` (id) and `?` (attempt) still hold it,
    /// that is the task is `processing` under that claim. On PostgreSQL the row is
    /// share-locked until the statement's transaction ends, so a recovery or a claim
    /// that changes it waits for the write and sees it; SQLite has one writer anyway.
    /// Binds: task id, attempt.
    pub(crate) fn held(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => {
                "WITH held AS (SELECT id FROM tasks WHERE id = ? AND attempt = ? AND status = 'processing')"
            }
            Backend::Postgres => {
                "WITH held AS (SELECT id FROM tasks WHERE id = ? AND attempt = ? AND status = 'processing' FOR SHARE)"
            }
        }
    }

    /// Records that the run holding `lease` is alive; [`StoreError::LeaseLost`] when it
    /// no longer holds the task (recovered, claimed again, or ended).
    pub async fn heartbeat(&self, lease: &Lease) -> Result<()> {
        let _timer = Timer::start("heartbeat");
        let sql = self.sql(
            "UPDATE tasks SET last_heartbeat_at = ? WHERE id = ? AND attempt = ? AND status = 'processing'",
        );
        let done = sqlx::query(&sql)
            .bind(now_ms())
            .bind(lease.task_id.as_str())
            .bind(lease.attempt)
            .execute(&mut *self.writer().await?)
            .await?;
        lease_held(done.rows_affected(), lease)
    }
}

/// `Ok` when a write conditional on `lease` touched its task's row.
pub(crate) fn lease_held(rows_affected: u64, lease: &Lease) -> Result<()> {
    match rows_affected {
        0 => Err(lease_lost(lease)),
        _ => Ok(()),
    }
}

pub(crate) fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        task_id: lease.task_id.to_string(),
        attempt: lease.attempt,
    }
}
