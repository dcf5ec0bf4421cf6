//! Checkpoints, one row each in `task_checkpoints`: a step's checkpoint write touches
//! only its own row, however many the task has.

use serde_json::Value as Json;
use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::records::{Lease, TaskState, checkpoint_key};
use crate::store::{Store, lease_held};

impl Store {
    /// Stores the checkpoint of `step_id` under `key` for the run holding `lease`,
    /// replacing an earlier value; [`crate::StoreError::LeaseLost`] when the run no longer
    /// holds the task.
    pub async fn set_checkpoint(
        &self,
        lease: &Lease,
        step_id: &str,
        key: &str,
        value: &Json,
    ) -> Result<()> {
        // `WHERE true`: SQLite's parser needs a WHERE before an upsert's ON CONFLICT.
        let sql = self
            .sql(&format!(
                "{held} INSERT INTO task_checkpoints (task_id, key, value) \
                 SELECT held.id, ?, ? FROM held WHERE true \
                 ON CONFLICT (task_id, key) DO UPDATE SET value = excluded.value",
                held = self.held(),
            ))
            .into_owned();
        let done = sqlx::query(&sql)
            .bind(lease.task_id.as_str())
            .bind(lease.attempt)
            .bind(checkpoint_key(step_id, key))
            .bind(value.to_string())
            .execute(&mut *self.writer().await?)
            .await?;
        lease_held(done.rows_affected(), lease)
    }

    /// Adds the task's stored checkpoints to `state` (they win over checkpoints that
    /// tasks written before migration 0002 kept inside the state itself, which are
    /// moved to their own rows here so the next state write cannot lose them).
    pub(crate) async fn load_checkpoints(
        &self,
        task_id: &str,
        state: &mut TaskState,
    ) -> Result<()> {
        for (key, value) in std::mem::take(&mut state.checkpoints) {
            let sql = self.sql(
                "INSERT INTO task_checkpoints (task_id, key, value) VALUES (?, ?, ?) \
                 ON CONFLICT (task_id, key) DO NOTHING",
            );
            sqlx::query(&sql)
                .bind(task_id)
                .bind(key)
                .bind(value.to_string())
                .execute(&mut *self.writer().await?)
                .await?;
        }
        let sql = self.sql("SELECT key, value FROM task_checkpoints WHERE task_id = ?");
        for row in sqlx::query(&sql)
            .bind(task_id)
            .fetch_all(&mut *self.reader().await?)
            .await?
        {
            let key: String = row.try_get("key")?;
            let text: String = row.try_get("value")?;
            let value = serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
                task_id: task_id.into(),
                message: format!("checkpoint {key}: {err}"),
            })?;
            state.checkpoints.insert(key, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use crate::testing::TestDatabase;
    use crate::{Backend, NewTask, TaskState};

    /// A task written before migration 0002 kept its checkpoints inside `tasks.state`; a
    /// claim moves them to rows, so writing the steps afterwards loses none.
    #[tokio::test]
    async fn checkpoints_kept_in_the_state_by_older_versions_survive() {
        let database = TestDatabase::new(Backend::Sqlite).await;
        let store = database.connect().await.unwrap();
        store
            .create_task(NewTask {
                id: "t".into(),
                spec: crate::testing::empty_spec(),
                created_by: None,
                secrets: Map::new(),
            })
            .await
            .unwrap();
        let legacy = json!({
            "steps": {},
            "checkpoints": { "v1.task.checkpoint.publish.repo": { "status": "success", "value": 1 } }
        });
        sqlx::query("UPDATE tasks SET state = ? WHERE id = 't'")
            .bind(legacy.to_string())
            .execute(&mut *store.writer().await.unwrap())
            .await
            .unwrap();

        let claim = store.claim_task().await.unwrap().expect("the open task");
        let expected = Some(json!({ "status": "success", "value": 1 }));
        assert_eq!(claim.state.checkpoint("publish", "repo").cloned(), expected);
        let mut state = TaskState::default();
        state.complete_step("fetch", &json!({}));
        store.write_state(&claim.lease, &state).await.unwrap();
        let stored = store.task_state("t").await.unwrap();
        assert_eq!(stored.checkpoint("publish", "repo").cloned(), expected);
        assert_eq!(
            stored.steps["fetch"],
            crate::StepState::Completed { output: json!({}) }
        );
        database.finish().await;
    }
}
