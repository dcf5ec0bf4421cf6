//! The event log: events appended by the run holding a lease (alone, in bursts, or with the
//! completed steps in one transaction), read back as Backstage lists them.

use serde_json::Value as Json;
use sqlx::any::AnyRow;

use super::leases::{lease_held, lease_lost};
use super::rows::event_from_row;
use super::state::{WRITE_STATE, state_text};
use super::{Backend, Store, not_found_on_foreign_key, now_ms};
use crate::connections;
use crate::error::Result;
use crate::records::{EventRecord, EventType, Lease, TaskState};
use crate::timing::Timer;

pub(super) const EVENT_COLUMNS: &str = "id, task_id, event_type, body, created_at";

impl Store {
    /// Appends an event of the run holding `lease` and returns it with its id;
    /// [`StoreError::LeaseLost`] (nothing written) when the run no longer holds the task.
    pub async fn append_event(
        &self,
        lease: &Lease,
        event_type: EventType,
        body: &Json,
    ) -> Result<EventRecord> {
        let mut events = self
            .insert_held_events(lease, event_type, std::slice::from_ref(body))
            .await?;
        Ok(events.remove(0))
    }

    /// Appends `log` events of the run holding `lease` with these bodies, in order, in
    /// one statement (a step's log lines come in bursts; one round trip records a
    /// burst), and returns them in id order. All or none: [`StoreError::LeaseLost`] when
    /// the run no longer holds the task.
    pub async fn append_log_events(
        &self,
        lease: &Lease,
        bodies: &[Json],
    ) -> Result<Vec<EventRecord>> {
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        self.insert_held_events(lease, EventType::Log, bodies).await
    }

    /// Saves the task's completed steps (as [`Store::write_state`]) and appends `log`
    /// events with these bodies (as [`Store::append_log_events`]) in one transaction, on
    /// SQLite sent as one command: the run's writer saves a step's output with the
    /// events around it. All or none: [`StoreError::LeaseLost`] when the run no longer
    /// holds the task.
    pub async fn write_state_and_log_events(
        &self,
        lease: &Lease,
        state: &TaskState,
        bodies: &[Json],
    ) -> Result<Vec<EventRecord>> {
        if bodies.is_empty() {
            self.write_state(lease, state).await?;
            return Ok(Vec::new());
        }
        let _timer = Timer::start("write_state_and_log_events");
        let update = self.sql(WRITE_STATE);
        let insert = self.held_events_sql(bodies.len());
        let state = state_text(state);
        let rows = match self.backend {
            Backend::Sqlite => {
                let sql = format!("BEGIN IMMEDIATE; {update}; {insert}; COMMIT");
                let query = sqlx::query(&sql)
                    .bind(state)
                    .bind(lease.task_id.as_str())
                    .bind(lease.attempt);
                let query = bind_held_events(query, lease, EventType::Log, bodies);
                connections::in_one_command(&mut self.writer().await?, query).await?
            }
            Backend::Postgres => {
                let mut conn = self.writer().await?;
                let mut tx = self.begin(&mut conn).await?;
                let done = sqlx::query(&update)
                    .bind(state)
                    .bind(lease.task_id.as_str())
                    .bind(lease.attempt)
                    .execute(&mut *tx)
                    .await?;
                lease_held(done.rows_affected(), lease)?;
                let rows = bind_held_events(sqlx::query(&insert), lease, EventType::Log, bodies)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
        };
        // The insert returns rows, and the update changed the task, only while the
        // lease holds it.
        events_from_rows(rows, lease)
    }

    /// Inserts events of one type in one statement, only while `lease` holds the task.
    async fn insert_held_events(
        &self,
        lease: &Lease,
        event_type: EventType,
        bodies: &[Json],
    ) -> Result<Vec<EventRecord>> {
        let _timer = Timer::start("append_events");
        let sql = self.held_events_sql(bodies.len());
        let query = bind_held_events(sqlx::query(&sql), lease, event_type, bodies);
        let rows = query.fetch_all(&mut *self.writer().await?).await?;
        events_from_rows(rows, lease)
    }

    /// The insert of `count` events of the run holding a lease, in one statement, that
    /// inserts nothing once the lease is lost ([`bind_held_events`] binds it). `held` has
    /// one row while the lease holds, none otherwise; the VALUES carry an ordinal so ids
    /// follow the order of the bodies.
    fn held_events_sql(&self, count: usize) -> String {
        let values = vec!["(?, ?)"; count].join(", ");
        self.sql(&format!(
            "{held} INSERT INTO task_events (task_id, event_type, body, created_at) \
             SELECT held.id, ?, v.column2, ? FROM held, (VALUES {values}) AS v \
             ORDER BY v.column1 RETURNING {EVENT_COLUMNS}",
            held = self.held(),
        ))
        .into_owned()
    }

    /// Whether the task has an event of this type (a `cancelled` one, for workers).
    pub async fn has_event(&self, task_id: &str, event_type: EventType) -> Result<bool> {
        let sql =
            self.sql("SELECT 1 FROM task_events WHERE task_id = ? AND event_type = ? LIMIT 1");
        let row = sqlx::query(&sql)
            .bind(task_id)
            .bind(event_type.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        Ok(row.is_some())
    }

    /// Events of a task in id order, as Backstage lists them: with `after`, those with a
    /// greater id plus the `completion` event; then, when the last `recovered` event says
    /// `startOver`, only the events from it onward.
    pub async fn list_events(&self, task_id: &str, after: Option<i64>) -> Result<Vec<EventRecord>> {
        let _timer = Timer::start("list_events");
        let rows = match after {
            Some(after) => {
                let sql = self
                    .sql(&format!(
                        "SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = ? AND (id > ? OR event_type = 'completion') ORDER BY id"
                    ))
                    .into_owned();
                sqlx::query(&sql)
                    .bind(task_id)
                    .bind(after)
                    .fetch_all(&mut *self.reader().await?)
                    .await?
            }
            None => {
                let sql = self
                    .sql(&format!(
                        "SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = ? ORDER BY id"
                    ))
                    .into_owned();
                sqlx::query(&sql)
                    .bind(task_id)
                    .fetch_all(&mut *self.reader().await?)
                    .await?
            }
        };
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        if let Some(last) = events
            .iter()
            .rposition(|e| e.event_type == EventType::Recovered)
            && events[last]
                .body
                .get("recoverStrategy")
                .and_then(Json::as_str)
                == Some("startOver")
        {
            events = if last + 1 == events.len() {
                Vec::new()
            } else {
                events.split_off(last)
            };
        }
        Ok(events)
    }

    /// Inserts an event through `executor` (the pool or an open transaction).
    pub(super) async fn insert_event<'e>(
        &self,
        executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
        task_id: &str,
        event_type: EventType,
        body: &Json,
    ) -> Result<EventRecord> {
        let sql = self
            .sql(&format!(
                "INSERT INTO task_events (task_id, event_type, body, created_at) VALUES (?, ?, ?, ?) RETURNING {EVENT_COLUMNS}"
            ))
            .into_owned();
        let row = sqlx::query(&sql)
            .bind(task_id)
            .bind(event_type.as_str())
            .bind(body.to_string())
            .bind(now_ms())
            .fetch_one(executor)
            .await
            .map_err(|err| not_found_on_foreign_key(err, task_id))?;
        event_from_row(&row)
    }
}

/// Binds [`Store::held_events_sql`]'s parameters after those `query` has.
fn bind_held_events<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    lease: &Lease,
    event_type: EventType,
    bodies: &[Json],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = query
        .bind(lease.task_id.to_string())
        .bind(lease.attempt)
        .bind(event_type.as_str())
        .bind(now_ms());
    for (n, body) in bodies.iter().enumerate() {
        query = query.bind(n as i64).bind(body.to_string());
    }
    query
}

/// The events a held insert returned, in id order; [`StoreError::LeaseLost`] when it
/// inserted none (the lease no longer holds).
fn events_from_rows(rows: Vec<AnyRow>, lease: &Lease) -> Result<Vec<EventRecord>> {
    if rows.is_empty() {
        return Err(lease_lost(lease));
    }
    // Ids follow the order of the rows inserted; RETURNING promises no order.
    let mut events = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>>>()?;
    events.sort_by_key(|e| e.id);
    Ok(events)
}
