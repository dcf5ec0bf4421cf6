//! A task's life in the database: created, read and listed, counted, claimed, completed,
//! cancelled, retried, and re-opened when its worker died.

use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use sqlx::Row;

use super::events::EVENT_COLUMNS;
use super::leases::{lease_held, lease_lost};
use super::rows::{event_from_row, parse_json, parse_state, spec_len, task_from_row};
use super::{Backend, Store, now_ms};
use crate::connections;
use crate::error::{Result, StoreError};
use crate::records::{
    ClaimedTask, Direction, EventRecord, EventType, Lease, NewTask, TaskFilter, TaskRecord,
    TaskStatus,
};
use crate::scrub;
use crate::timing::Timer;

const TASK_COLUMNS: &str = "id, spec, status, created_at, last_heartbeat_at, created_by";
/// Statuses from which a task may be retried.
const TERMINAL: &str = "('cancelled', 'completed', 'failed', 'skipped')";

impl Store {
    /// Inserts an `open` task.
    pub async fn create_task(&self, task: NewTask) -> Result<TaskRecord> {
        let _timer = Timer::start("create_task");
        let now = now_ms();
        let sql = self.sql(
            "INSERT INTO tasks (id, spec, status, created_at, created_by, secrets) VALUES (?, ?, 'open', ?, ?, ?)",
        );
        let spec = serde_json::to_string(&task.spec).map_err(|err| StoreError::Corrupt {
            task_id: task.id.to_string(),
            message: err.to_string(),
        })?;
        let spec_len = spec.len();
        let mut conn = self.writer().await?;
        sqlx::query(&sql)
            .bind(task.id.as_str())
            .bind(spec)
            .bind(now)
            .bind(task.created_by.clone())
            .bind(self.seal_secrets(&task.id, task.secrets.clone()))
            .execute(&mut *conn)
            .await?;
        self.let_go_of_large_spec(&mut conn, spec_len).await?;
        if let Some(scrubber) = &self.scrubber {
            scrubber.note_secrets(&task.id, !task.secrets.is_empty());
        }
        Ok(TaskRecord {
            id: task.id,
            spec: task.spec,
            status: TaskStatus::Open,
            created_at: now,
            last_heartbeat_at: None,
            created_by: task.created_by,
        })
    }

    /// A task by id.
    pub async fn get_task(&self, id: &str) -> Result<Option<TaskRecord>> {
        let _timer = Timer::start("get_task");
        let sql = self
            .sql(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"))
            .into_owned();
        let mut conn = self.reader().await?;
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = &row {
            self.let_go_of_large_spec(&mut conn, spec_len(row)).await?;
        }
        row.map(|r| task_from_row(&r)).transpose()
    }

    /// Tasks matching the filter, and how many match without limit and offset.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<(Vec<TaskRecord>, i64)> {
        let _timer = Timer::start("list_tasks");
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for (column, values) in [
            ("created_by", &filter.created_by),
            ("status", &filter.status),
        ] {
            if !values.is_empty() {
                let mut unique: Vec<&String> = values.iter().collect();
                unique.sort();
                unique.dedup();
                let marks = vec!["?"; unique.len()].join(", ");
                conditions.push(format!("{column} IN ({marks})"));
                binds.extend(unique.into_iter().cloned());
            }
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let order = if filter.order.is_empty() {
            "created_at DESC".to_owned()
        } else {
            filter
                .order
                .iter()
                .map(|(field, dir)| {
                    let dir = match dir {
                        Direction::Asc => "ASC",
                        Direction::Desc => "DESC",
                    };
                    format!("{} {dir}", field.column())
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Ties keep a stable order.
        let order = format!("{order}, id ASC");
        let mut page = String::new();
        if let Some(limit) = filter.limit {
            page.push_str(&format!(" LIMIT {}", limit.max(0)));
        }
        if let Some(offset) = filter.offset {
            if filter.limit.is_none() {
                page.push_str(" LIMIT -1");
            }
            page.push_str(&format!(" OFFSET {}", offset.max(0)));
        }
        if self.backend == Backend::Postgres {
            page = page.replace("LIMIT -1", "LIMIT ALL");
        }

        let list_sql = self
            .sql(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks{where_clause} ORDER BY {order}{page}"
            ))
            .into_owned();
        let mut list = sqlx::query(&list_sql);
        for b in &binds {
            list = list.bind(b);
        }
        let tasks = list
            .fetch_all(&mut *self.reader().await?)
            .await?
            .iter()
            .map(task_from_row)
            .collect::<Result<Vec<_>>>()?;

        let count_sql = self
            .sql(&format!("SELECT COUNT(*) AS n FROM tasks{where_clause}"))
            .into_owned();
        let mut count = sqlx::query(&count_sql);
        for b in &binds {
            count = count.bind(b);
        }
        let total: i64 = count
            .fetch_one(&mut *self.reader().await?)
            .await?
            .try_get("n")?;
        Ok((tasks, total))
    }

    /// How many tasks are in each status, for `/metrics`: one `GROUP BY` over the status
    /// index (it reads every task's index entry, a few milliseconds per 100,000 tasks).
    /// Statuses without tasks are absent.
    pub async fn task_counts(&self) -> Result<Vec<(TaskStatus, i64)>> {
        let _timer = Timer::start("task_counts");
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
            .fetch_all(&mut *self.reader().await?)
            .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            let status: String = row.try_get("status")?;
            // A status this build does not know (a newer replica's) is left out.
            if let Some(status) = TaskStatus::parse(&status) {
                counts.push((status, row.try_get("n")?));
            }
        }
        Ok(counts)
    }

    /// Claims the oldest `open` task for a worker: marks it `processing` under a new
    /// attempt number and returns it with its [`Lease`], secrets, saved progress and
    /// whether it was cancelled, in one statement. Safe with several workers and
    /// replicas: a task is claimed once, and an earlier claim's writes are refused from
    /// now on.
    pub async fn claim_task(&self) -> Result<Option<ClaimedTask>> {
        let _timer = Timer::start("claim_task");
        let now = now_ms();
        let pick = match self.backend {
            Backend::Sqlite => {
                "SELECT id FROM tasks WHERE status = 'open' ORDER BY created_at LIMIT 1"
            }
            Backend::Postgres => {
                "SELECT id FROM tasks WHERE status = 'open' ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
            }
        };
        let sql = self
            .sql(&format!(
                "UPDATE tasks SET status = 'processing', last_heartbeat_at = ?, attempt = attempt + 1 \
                 WHERE id = ({pick}) AND status = 'open' \
                 RETURNING {TASK_COLUMNS}, attempt, secrets, state, \
                 (SELECT COUNT(*) FROM task_events e WHERE e.task_id = tasks.id AND e.event_type = 'cancelled') AS cancellations, \
                 (SELECT COUNT(*) FROM task_checkpoints c WHERE c.task_id = tasks.id) AS checkpoints"
            ))
            .into_owned();
        let mut conn = self.writer().await?;
        let Some(row) = sqlx::query(&sql)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        self.let_go_of_large_spec(&mut conn, spec_len(&row)).await?;
        drop(conn);
        let task = task_from_row(&row)?;
        let secrets = self.open_secrets(&task.id, row.try_get::<Option<String>, _>("secrets")?)?;
        let mut state = parse_state(&task.id, row.try_get::<Option<String>, _>("state")?)?;
        // A task that never wrote a checkpoint (most) costs no second query.
        if row.try_get::<i64, _>("checkpoints")? > 0 || !state.checkpoints.is_empty() {
            self.load_checkpoints(&task.id, &mut state).await?;
        }
        let cancelled = row.try_get::<i64, _>("cancellations")? > 0;
        let lease = Lease {
            task_id: task.id.clone(),
            attempt: row.try_get("attempt")?,
        };
        Ok(Some(ClaimedTask {
            task,
            lease,
            secrets,
            state,
            cancelled,
        }))
    }

    /// Ends the task the run holding `lease` ran: sets its status, drops its secrets and
    /// appends the `completion` event, in one transaction. [`StoreError::LeaseLost`] when
    /// the run no longer holds the task.
    pub async fn complete_task(
        &self,
        lease: &Lease,
        status: TaskStatus,
        body: &Json,
    ) -> Result<EventRecord> {
        let _timer = Timer::start("complete_task");
        let task_id = lease.task_id.as_str();
        let end = "UPDATE tasks SET status = ?, secrets = NULL WHERE id = ? AND attempt = ? AND status = 'processing'";
        let event = match self.backend {
            // One command to the connection's thread instead of four (the write lock, two
            // statements, the commit): the event is inserted only when the update
            // changed the task, that is while the lease holds it.
            Backend::Sqlite => {
                let sql = format!(
                    "BEGIN IMMEDIATE; {end}; \
                     INSERT INTO task_events (task_id, event_type, body, created_at) \
                     SELECT ?, ?, ?, ? WHERE changes() = 1 RETURNING {EVENT_COLUMNS}; COMMIT"
                );
                let query = sqlx::query(&sql)
                    .bind(status.as_str())
                    .bind(task_id)
                    .bind(lease.attempt)
                    .bind(task_id)
                    .bind(EventType::Completion.as_str())
                    .bind(body.to_string())
                    .bind(now_ms());
                let rows = connections::in_one_command(&mut self.writer().await?, query).await?;
                let row = rows.first().ok_or_else(|| lease_lost(lease))?;
                event_from_row(row)?
            }
            Backend::Postgres => {
                let mut conn = self.writer().await?;
                let mut tx = self.begin(&mut conn).await?;
                let updated = sqlx::query(&self.sql(end))
                    .bind(status.as_str())
                    .bind(task_id)
                    .bind(lease.attempt)
                    .execute(&mut *tx)
                    .await?;
                lease_held(updated.rows_affected(), lease)?;
                let event = self
                    .insert_event(&mut *tx, task_id, EventType::Completion, body)
                    .await?;
                tx.commit().await?;
                event
            }
        };
        match self.drops_secrets(task_id, true) {
            true => self.scrub_dropped_secrets(scrub::COMPLETION_WAIT).await,
            // Nothing dropped now; a cancel's scrub may still be under way.
            false => self.settle_scrubs(scrub::COMPLETION_WAIT).await,
        }
        Ok(event)
    }

    /// Cancels a task as Backstage does: appends a `cancelled` event and drops the
    /// secrets; the status is left to the worker, which ends the task `failed`.
    pub async fn cancel_task(&self, task_id: &str, body: &Json) -> Result<EventRecord> {
        let mut conn = self.writer().await?;
        let mut tx = self.begin(&mut conn).await?;
        let sql = self.sql("UPDATE tasks SET secrets = NULL WHERE id = ?");
        let updated = sqlx::query(&sql).bind(task_id).execute(&mut *tx).await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::NotFound {
                task_id: task_id.into(),
            });
        }
        let event = self
            .insert_event(&mut *tx, task_id, EventType::Cancelled, body)
            .await?;
        tx.commit().await?;
        drop(conn);
        // The request that cancels does not wait; the completion that follows does.
        if self.drops_secrets(task_id, false) {
            self.scrub_dropped_secrets(Duration::ZERO).await;
        }
        Ok(event)
    }

    /// Re-opens a task that has ended: new secrets, its `cancelled` and `completion`
    /// events removed, a `recovered` event added. `Conflict` when it has not ended.
    pub async fn retry_task(
        &self,
        task_id: &str,
        secrets: Map<String, Json>,
        recover_strategy: &str,
    ) -> Result<EventRecord> {
        let mut conn = self.writer().await?;
        let mut tx = self.begin(&mut conn).await?;
        let sql = self
            .sql(&format!(
                "UPDATE tasks SET status = 'open', last_heartbeat_at = ?, secrets = ? WHERE id = ? AND status IN {TERMINAL}"
            ))
            .into_owned();
        let updated = sqlx::query(&sql)
            .bind(now_ms())
            .bind(self.seal_secrets(task_id, secrets.clone()))
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(match self.get_task(task_id).await? {
                None => StoreError::NotFound {
                    task_id: task_id.into(),
                },
                Some(_) => StoreError::Conflict {
                    message: format!("Task with taskId {task_id} cannot be retried"),
                },
            });
        }
        let sql = self.sql("DELETE FROM task_events WHERE task_id = ? AND event_type IN ('cancelled', 'completion')");
        sqlx::query(&sql).bind(task_id).execute(&mut *tx).await?;
        let event = self
            .insert_event(
                &mut *tx,
                task_id,
                EventType::Recovered,
                &json!({ "recoverStrategy": recover_strategy }),
            )
            .await?;
        tx.commit().await?;
        drop(conn);
        if let Some(scrubber) = &self.scrubber {
            scrubber.note_secrets(task_id, !secrets.is_empty());
        }
        Ok(event)
    }

    /// Re-opens `processing` tasks whose heartbeat is older than `stale_after_ms`
    /// (their worker died), each with a `recovered` event. Returns their ids.
    pub async fn recover_stale_tasks(&self, stale_after_ms: i64) -> Result<Vec<String>> {
        let now = now_ms();
        let mut conn = self.writer().await?;
        let mut tx = self.begin(&mut conn).await?;
        let sql = self.sql(
            "UPDATE tasks SET status = 'open', last_heartbeat_at = ? WHERE status = 'processing' AND last_heartbeat_at < ? RETURNING id, spec",
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(now - stale_after_ms)
            .fetch_all(&mut *tx)
            .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let spec = parse_json(&id, row.try_get("spec")?)?;
            let strategy = spec
                .pointer("/EXPERIMENTAL_recovery/EXPERIMENTAL_strategy")
                .and_then(Json::as_str)
                .unwrap_or("none")
                .to_owned();
            self.insert_event(
                &mut *tx,
                &id,
                EventType::Recovered,
                &json!({ "recoverStrategy": strategy }),
            )
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        drop(conn);
        Ok(ids)
    }
}
