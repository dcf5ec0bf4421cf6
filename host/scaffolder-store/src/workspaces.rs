//! Saved task workspaces (`scaffolder.workspaceStore`), so that a replica taking over a
//! task finds the files of its completed steps: `task_workspaces` points at the last
//! manifest of each task, written only under the lease of the run holding it;
//! `workspace_blobs` holds file contents for the database backend, content-addressed and
//! immutable, so writing them needs no lease.
//!
//! The manifest is opaque text here: the engine's workspace store owns its format.
//! Deliberately absent: any reading of blob contents beyond bytes in, bytes out
//! (compression and digests are the engine's).

use sqlx::Row;

use crate::error::Result;
use crate::records::Lease;
use crate::store::{Store, lease_held, not_found_on_foreign_key, now_ms};

/// The most digests deleted by one statement (bind parameters are limited).
const DELETE_BATCH: usize = 500;

/// Statuses of tasks that have ended (the sweep removes their saved workspaces).
const ENDED: &str = "('cancelled', 'completed', 'failed', 'skipped')";

impl Store {
    /// Records, under `lease`, that the task's workspace is being saved: creates its
    /// `task_workspaces` row without a manifest when it has none (so a sweep finds the
    /// blobs of a save that never finished), and refreshes its time. Blobs go out only
    /// after this, so a run that lost its task stops before uploading anything.
    pub async fn begin_workspace_save(&self, lease: &Lease) -> Result<()> {
        let sql = self
            .sql(&format!(
                "{} INSERT INTO task_workspaces (task_id, manifest, bytes, updated_at) \
             SELECT id, NULL, 0, ? FROM held WHERE true \
             ON CONFLICT (task_id) DO UPDATE SET updated_at = excluded.updated_at",
                self.held()
            ))
            .into_owned();
        let done = sqlx::query(&sql)
            .bind(lease.task_id.as_str())
            .bind(lease.attempt)
            .bind(now_ms())
            .execute(&mut *self.writer().await?)
            .await?;
        lease_held(done.rows_affected(), lease)
    }

    /// Replaces the task's workspace manifest, when `lease` still holds the task
    /// ([`crate::StoreError::LeaseLost`] otherwise). `bytes` is the sum of its files' sizes.
    pub async fn write_workspace_manifest(
        &self,
        lease: &Lease,
        manifest: &str,
        bytes: u64,
    ) -> Result<()> {
        let sql = self
            .sql(&format!(
                "{} INSERT INTO task_workspaces (task_id, manifest, bytes, updated_at) \
             SELECT id, ?, ?, ? FROM held WHERE true \
             ON CONFLICT (task_id) DO UPDATE SET manifest = excluded.manifest, \
             bytes = excluded.bytes, updated_at = excluded.updated_at",
                self.held()
            ))
            .into_owned();
        let done = sqlx::query(&sql)
            .bind(lease.task_id.as_str())
            .bind(lease.attempt)
            .bind(manifest)
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .bind(now_ms())
            .execute(&mut *self.writer().await?)
            .await?;
        lease_held(done.rows_affected(), lease)
    }

    /// The task's last saved manifest; `None` when nothing was saved (or the first save
    /// has not finished).
    pub async fn workspace_manifest(&self, task_id: &str) -> Result<Option<String>> {
        let sql = self.sql("SELECT manifest FROM task_workspaces WHERE task_id = ?");
        let row = sqlx::query(&sql)
            .bind(task_id)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<String>, _>("manifest")?,
            None => None,
        })
    }

    /// Removes the task's saved workspace: its manifest and its blobs in the database.
    pub async fn delete_workspace(&self, task_id: &str) -> Result<()> {
        // The row first: a restore that starts meanwhile finds nothing rather than a
        // manifest whose blobs are going.
        for sql in [
            "DELETE FROM task_workspaces WHERE task_id = ?",
            "DELETE FROM workspace_blobs WHERE task_id = ?",
        ] {
            sqlx::query(&self.sql(sql))
                .bind(task_id)
                .execute(&mut *self.writer().await?)
                .await?;
        }
        Ok(())
    }

    /// Tasks that have ended and whose saved workspace was last written before
    /// `before_ms`: what a sweep removes.
    pub async fn workspaces_of_ended_tasks(&self, before_ms: i64) -> Result<Vec<String>> {
        let sql = self
            .sql(&format!(
                "SELECT w.task_id FROM task_workspaces w JOIN tasks t ON t.id = w.task_id \
             WHERE t.status IN {ENDED} AND w.updated_at < ? ORDER BY w.updated_at"
            ))
            .into_owned();
        let rows = sqlx::query(&sql)
            .bind(before_ms)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(|row| Ok(row.try_get("task_id")?)).collect()
    }

    /// Stores chunk `chunk` of the blob `digest` of a task's workspace; a chunk already
    /// stored is left as it is (blobs are content-addressed, so it holds the same bytes).
    pub async fn put_workspace_chunk(
        &self,
        task_id: &str,
        digest: &str,
        chunk: u32,
        data: &[u8],
    ) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO workspace_blobs (task_id, digest, chunk, data) VALUES (?, ?, ?, ?) \
             ON CONFLICT (task_id, digest, chunk) DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(task_id)
            .bind(digest)
            .bind(i64::from(chunk))
            .bind(data)
            .execute(&mut *self.writer().await?)
            .await
            .map_err(|err| not_found_on_foreign_key(err, task_id))?;
        Ok(())
    }

    /// Chunk `chunk` of a blob, as stored; `None` past its last chunk.
    pub async fn workspace_chunk(
        &self,
        task_id: &str,
        digest: &str,
        chunk: u32,
    ) -> Result<Option<Vec<u8>>> {
        let sql = self
            .sql("SELECT data FROM workspace_blobs WHERE task_id = ? AND digest = ? AND chunk = ?");
        let row = sqlx::query(&sql)
            .bind(task_id)
            .bind(digest)
            .bind(i64::from(chunk))
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("data")?),
            None => None,
        })
    }

    /// The digests of every blob stored for the task (also those no manifest names,
    /// left by a save that did not finish).
    pub async fn workspace_blob_digests(&self, task_id: &str) -> Result<Vec<String>> {
        let sql = self.sql("SELECT DISTINCT digest FROM workspace_blobs WHERE task_id = ?");
        let rows = sqlx::query(&sql)
            .bind(task_id)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(|row| Ok(row.try_get("digest")?)).collect()
    }

    /// Deletes the task's blobs with these digests, only while `lease` holds the task
    /// (a run that lost it must not delete what the new holder's manifest names; then
    /// nothing is deleted and the sweep removes them with the task's other blobs).
    pub async fn delete_workspace_blobs(&self, lease: &Lease, digests: &[String]) -> Result<()> {
        for batch in digests.chunks(DELETE_BATCH) {
            let marks = vec!["?"; batch.len()].join(", ");
            let sql = self
                .sql(&format!(
                    "{} DELETE FROM workspace_blobs \
                 WHERE task_id IN (SELECT id FROM held) AND digest IN ({marks})",
                    self.held()
                ))
                .into_owned();
            let mut query = sqlx::query(&sql)
                .bind(lease.task_id.as_str())
                .bind(lease.attempt);
            for digest in batch {
                query = query.bind(digest);
            }
            query.execute(&mut *self.writer().await?).await?;
        }
        Ok(())
    }
}
