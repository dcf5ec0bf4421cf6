//! [`Store`]: every query the scaffolder runs, written once with `?` placeholders and
//! numbered for PostgreSQL when that is the backend.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as Json, json};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

use crate::connections::{self, Acquired, Connections};
use crate::error::{Result, StoreError};
use crate::file_modes;
use crate::records::{
    ClaimedTask, Direction, EventRecord, EventType, Lease, NewTask, TaskFilter, TaskRecord,
    TaskState, TaskStatus,
};
use crate::scrub::{self, Scrubber};
use crate::sealed::{self, SecretsKey};
use crate::timing::Timer;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Durable task storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads: on SQLite up to eight connections, on PostgreSQL the pool
    /// ([`Connections`]).
    readers: Connections,
    /// Writes: on SQLite one connection (SQLite has one writer at a time), on PostgreSQL
    /// the same pool as reads.
    writer: Connections,
    backend: Backend,
    /// Seals `tasks.secrets` when configured (always on PostgreSQL).
    secrets_key: Option<SecretsKey>,
    /// Truncates the write-ahead log once secrets are dropped (SQLite files only).
    scrubber: Option<Arc<Scrubber>>,
}

/// A spec at least this long is let go of as soon as it was stored or read
/// ([`Store::let_go_of_large_spec`]).
const LARGE_SPEC: usize = 1024 * 1024;

const TASK_COLUMNS: &str = "id, spec, status, created_at, last_heartbeat_at, created_by";
const EVENT_COLUMNS: &str = "id, task_id, event_type, body, created_at";
/// Replaces the completed steps of the run holding a lease. Binds: the state
/// ([`state_text`]), task id, attempt.
const WRITE_STATE: &str =
    "UPDATE tasks SET state = ? WHERE id = ? AND attempt = ? AND status = 'processing'";
/// Statuses from which a task may be retried.
const TERMINAL: &str = "('cancelled', 'completed', 'failed', 'skipped')";

impl Store {
    /// Connects and migrates, with task secrets stored as plaintext JSON: SQLite only (see
    /// [`Store::connect_with`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, None).await
    }

    /// Connects and migrates. `sqlite://<path>` creates the file (WAL mode, readable by
    /// its owner only); `postgres://...` needs an existing database and `secrets_key`.
    /// With a key, task secrets are stored encrypted ([`SecretsKey`]); on SQLite, every
    /// connection zeroes what it deletes (`secure_delete`), and the write-ahead log is
    /// truncated after secrets are dropped, so their values leave the files.
    pub async fn connect_with(url: &str, secrets_key: Option<SecretsKey>) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
            });
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Cow::Owned(format!("{url}{sep}mode=rwc"))
            }
            _ => Cow::Borrowed(url),
        };
        if backend == Backend::Postgres && secrets_key.is_none() {
            return Err(StoreError::SecretsKeyRequired);
        }
        let file = match backend {
            Backend::Sqlite => file_modes::sqlite_file(&url),
            Backend::Postgres => None,
        };
        if let Some(file) = &file {
            file_modes::make_private(file)?;
        }
        // Plaintext secrets leave traces in SQLite's files that must be scrubbed once
        // dropped; sealed ones are unreadable without the key, which lives in the
        // configuration, not in the data directory.
        let scrub_files = file.is_some() && secrets_key.is_none();
        let (readers, writer) = match backend {
            // An in-memory database lives and dies with its connection (the Any driver
            // names a new one for each): one connection does everything.
            Backend::Sqlite if file.is_none() => {
                let mut connection = Connections::open_sqlite(&url, false).await?;
                migrate(&mut connection, backend).await?;
                let only = Connections::held(&url, 1, false, connection);
                (only.clone(), only)
            }
            // SQLite: one writing connection of its own (transactions still begin
            // IMMEDIATE: none has to upgrade a read lock); readers run beside it in
            // WAL mode, on connections opened on demand, so an idle server holds few.
            Backend::Sqlite => {
                let mut writer = Connections::open_sqlite(&url, scrub_files).await?;
                migrate(&mut writer, backend).await?;
                let reader = Connections::open_sqlite(&url, scrub_files).await?;
                (
                    Connections::held(&url, 8, scrub_files, reader),
                    Connections::held(&url, 1, scrub_files, writer),
                )
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await?;
                migrate(&mut *pool.acquire().await?, backend).await?;
                (Connections::Pool(pool.clone()), Connections::Pool(pool))
            }
        };
        let scrubber = match scrub_files {
            true => Some(Arc::new(Scrubber::start(&url)?)),
            false => None,
        };
        Ok(Self {
            readers,
            writer,
            backend,
            secrets_key,
            scrubber,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection to read on ([`Connections`]).
    pub(crate) async fn reader(&self) -> Result<Acquired> {
        self.readers.acquire().await
    }

    /// A connection to write on ([`Connections`]).
    pub(crate) async fn writer(&self) -> Result<Acquired> {
        self.writer.acquire().await
    }

    /// PostgreSQL's pool (for the notifications' own connection).
    pub(crate) fn postgres_pool(&self) -> Option<&AnyPool> {
        self.readers.pool()
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
        if let Some(scrubber) = &self.scrubber {
            scrubber.close().await;
        }
    }

    /// Starts a transaction on `conn` (from [`Store::writer`]); on SQLite it takes the
    /// write lock at once (`BEGIN IMMEDIATE`).
    async fn begin<'c>(&self, conn: &'c mut Acquired) -> Result<sqlx::Transaction<'c, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        })
    }

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

    /// The query with `?` numbered as `$1, $2, ...` for PostgreSQL.
    pub(crate) fn sql<'a>(&self, query: &'a str) -> Cow<'a, str> {
        if self.backend == Backend::Sqlite {
            return Cow::Borrowed(query);
        }
        let mut out = String::with_capacity(query.len() + 8);
        let mut n = 0;
        for c in query.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// Inserts an `open` task.
    pub async fn create_task(&self, task: NewTask) -> Result<TaskRecord> {
        let _timer = Timer::start("create_task");
        let now = now_ms();
        let sql = self.sql(
            "INSERT INTO tasks (id, spec, status, created_at, created_by, secrets) VALUES (?, ?, 'open', ?, ?, ?)",
        );
        let spec = task.spec.to_string();
        let spec_len = spec.len();
        let mut conn = self.writer().await?;
        sqlx::query(&sql)
            .bind(&task.id)
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

    /// After a statement that bound or returned a spec of `spec_len` bytes on `conn`: a
    /// large spec must not stay with the connection. SQLite keeps a statement's bound
    /// values and current row until it runs again, sqlx keeps statements prepared, and the
    /// page cache keeps the spec's overflow pages: after a burst of 16 tasks of 9 MB, the
    /// pooled connections held tens of MiB (measured by `tests/http_bodies.rs`). Small
    /// specs (nearly all) keep their statements prepared.
    async fn let_go_of_large_spec(&self, conn: &mut AnyConnection, spec_len: usize) -> Result<()> {
        if spec_len < LARGE_SPEC {
            return Ok(());
        }
        conn.clear_cached_statements().await?;
        if self.backend == Backend::Sqlite {
            conn.execute("PRAGMA shrink_memory").await?;
        }
        Ok(())
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

    /// Records that the run holding `lease` is alive; [`StoreError::LeaseLost`] when it
    /// no longer holds the task (recovered, claimed again, or ended).
    pub async fn heartbeat(&self, lease: &Lease) -> Result<()> {
        let _timer = Timer::start("heartbeat");
        let sql = self.sql(
            "UPDATE tasks SET last_heartbeat_at = ? WHERE id = ? AND attempt = ? AND status = 'processing'",
        );
        let done = sqlx::query(&sql)
            .bind(now_ms())
            .bind(&lease.task_id)
            .bind(lease.attempt)
            .execute(&mut *self.writer().await?)
            .await?;
        lease_held(done.rows_affected(), lease)
    }

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
                    .bind(&lease.task_id)
                    .bind(lease.attempt);
                let query = bind_held_events(query, lease, EventType::Log, bodies);
                connections::in_one_command(&mut self.writer().await?, query).await?
            }
            Backend::Postgres => {
                let mut conn = self.writer().await?;
                let mut tx = self.begin(&mut conn).await?;
                let done = sqlx::query(&update)
                    .bind(state)
                    .bind(&lease.task_id)
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
            .bind(&lease.task_id)
            .bind(lease.attempt)
            .execute(&mut *self.writer().await?)
            .await?;
        lease_held(done.rows_affected(), lease)
    }

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
    fn seal_secrets(&self, task_id: &str, secrets: Map<String, Json>) -> String {
        sealed::seal(
            self.secrets_key.as_ref(),
            task_id,
            Json::Object(secrets).to_string(),
        )
    }

    /// A task's secrets from their stored form (sealed, or plaintext JSON from before
    /// encryption or without a key).
    fn open_secrets(&self, task_id: &str, stored: Option<String>) -> Result<Map<String, Json>> {
        parse_object(
            task_id,
            sealed::open(self.secrets_key.as_ref(), task_id, stored)?,
        )
    }

    /// After a commit that dropped secrets: a truncating checkpoint, waited for up to
    /// `wait` (SQLite files only).
    async fn scrub_dropped_secrets(&self, wait: Duration) {
        if let Some(scrubber) = &self.scrubber {
            scrubber.scrub(wait).await;
        }
    }

    /// Waits up to `wait` for the scrubs already asked for.
    async fn settle_scrubs(&self, wait: Duration) {
        if let Some(scrubber) = &self.scrubber {
            scrubber.settle(wait).await;
        }
    }

    /// Whether ending the task drops secrets that a scrub must remove from the files
    /// (`forget`: the task ends for good).
    fn drops_secrets(&self, task_id: &str, forget: bool) -> bool {
        self.scrubber
            .as_ref()
            .is_some_and(|scrubber| scrubber.drops_secrets(task_id, forget))
    }

    /// Inserts an event through `executor` (the pool or an open transaction).
    async fn insert_event<'e>(
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

    /// One nullable text column of a task (`secrets` or `state`).
    async fn task_column<'e>(
        &self,
        executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
        task_id: &str,
        column: &'static str,
    ) -> Result<Option<String>> {
        let sql = self
            .sql(&format!("SELECT {column} AS value FROM tasks WHERE id = ?"))
            .into_owned();
        let row = sqlx::query(&sql)
            .bind(task_id)
            .fetch_optional(executor)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                task_id: task_id.into(),
            })?;
        Ok(row.try_get("value")?)
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
        task_id: lease.task_id.clone(),
        attempt: lease.attempt,
    }
}

/// `tasks.state`: the completed steps (checkpoints have rows of their own).
fn state_text(state: &TaskState) -> String {
    json!({ "steps": state.steps }).to_string()
}

/// Binds [`Store::held_events_sql`]'s parameters after those `query` has.
fn bind_held_events<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    lease: &Lease,
    event_type: EventType,
    bodies: &[Json],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = query
        .bind(lease.task_id.clone())
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

/// Brings the schema up to date.
async fn migrate(conn: &mut AnyConnection, backend: Backend) -> Result<()> {
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(conn).await?,
        Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(conn).await?,
    }
    Ok(())
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn task_from_row(row: &AnyRow) -> Result<TaskRecord> {
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    Ok(TaskRecord {
        spec: parse_json(&id, row.try_get("spec")?)?,
        status: TaskStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            task_id: id.clone(),
            message: format!("unknown status '{status}'"),
        })?,
        created_at: row.try_get("created_at")?,
        last_heartbeat_at: row.try_get("last_heartbeat_at")?,
        created_by: row.try_get("created_by")?,
        id,
    })
}

fn event_from_row(row: &AnyRow) -> Result<EventRecord> {
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
        task_id,
    })
}

fn parse_json(task_id: &str, text: String) -> Result<Json> {
    serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
        task_id: task_id.into(),
        message: err.to_string(),
    })
}

fn parse_state(task_id: &str, text: Option<String>) -> Result<TaskState> {
    match text {
        None => Ok(TaskState::default()),
        Some(text) => serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
            task_id: task_id.into(),
            message: err.to_string(),
        }),
    }
}

fn parse_object(task_id: &str, text: Option<String>) -> Result<Map<String, Json>> {
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

/// An event for a task that does not exist violates the foreign key; say so plainly.
pub(crate) fn not_found_on_foreign_key(err: sqlx::Error, task_id: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
            task_id: task_id.into(),
        },
        _ => StoreError::Database(err),
    }
}

/// The length of the `spec` column of a task row (0 if it has none).
fn spec_len(row: &AnyRow) -> usize {
    row.try_get::<&str, _>("spec").map_or(0, str::len)
}
