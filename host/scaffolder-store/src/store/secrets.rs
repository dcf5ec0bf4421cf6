//! Task-scoped secrets: added by a run, read decrypted, sealed with the key when there is
//! one, and scrubbed from SQLite's files once dropped.

use std::time::Duration;

use serde_json::{Map, Value as Json};

use super::Store;
use super::leases::lease_held;
use super::rows::parse_object;
use crate::error::Result;
use crate::records::Lease;
use crate::sealed;

impl Store {
    /// Adds a task-scoped secret (a value a step of the run holding `lease` produced for
    /// later steps).
    pub async fn add_secret(&self, lease: &Lease, name: &str, value: &str) -> Result<()> {
        let task_id = lease.task_id.as_str();
        let mut conn = self.writer().await?;
        let mut tx = self.begin(&mut conn).await?;
        let mut secrets = self.open_secrets(
            task_id,
            self.task_column(&mut *tx, task_id, "secrets").await?,
        )?;
        secrets.insert(name.to_owned(), Json::String(value.to_owned()));
        let sql = self.sql(
            "UPDATE tasks SET secrets = ? WHERE id = ? AND attempt = ? AND status = 'processing'",
        );
        let done = sqlx::query(&sql)
            .bind(self.seal_secrets(task_id, secrets))
            .bind(task_id)
            .bind(lease.attempt)
            .execute(&mut *tx)
            .await?;
        lease_held(done.rows_affected(), lease)?;
        tx.commit().await?;
        drop(conn);
        if let Some(scrubber) = &self.scrubber {
            scrubber.note_secrets(task_id, true);
        }
        Ok(())
    }

    /// The task's stored secrets (empty once it ended), decrypted.
    pub async fn secrets(&self, task_id: &str) -> Result<Map<String, Json>> {
        self.open_secrets(
            task_id,
            self.task_column(&mut *self.reader().await?, task_id, "secrets")
                .await?,
        )
    }

    /// The stored form of a task's secrets: sealed with the key when there is one.
    pub(super) fn seal_secrets(&self, task_id: &str, secrets: Map<String, Json>) -> String {
        sealed::seal(
            self.secrets_key.as_ref(),
            task_id,
            Json::Object(secrets).to_string(),
        )
    }

    /// A task's secrets from their stored form (sealed, or plaintext JSON from before
    /// encryption or without a key).
    pub(super) fn open_secrets(
        &self,
        task_id: &str,
        stored: Option<String>,
    ) -> Result<Map<String, Json>> {
        parse_object(
            task_id,
            sealed::open(self.secrets_key.as_ref(), task_id, stored)?,
        )
    }

    /// After a commit that dropped secrets: a truncating checkpoint, waited for up to
    /// `wait` (SQLite files only).
    pub(super) async fn scrub_dropped_secrets(&self, wait: Duration) {
        if let Some(scrubber) = &self.scrubber {
            scrubber.scrub(wait).await;
        }
    }

    /// Waits up to `wait` for the scrubs already asked for.
    pub(super) async fn settle_scrubs(&self, wait: Duration) {
        if let Some(scrubber) = &self.scrubber {
            scrubber.settle(wait).await;
        }
    }

    /// Whether ending the task drops secrets that a scrub must remove from the files
    /// (`forget`: the task ends for good).
    pub(super) fn drops_secrets(&self, task_id: &str, forget: bool) -> bool {
        self.scrubber
            .as_ref()
            .is_some_and(|scrubber| scrubber.drops_secrets(task_id, forget))
    }
}
