//! [`Store`]: every query the scaffolder runs, written once with `?` placeholders and
//! numbered for PostgreSQL when that is the backend.
//!
//! This file connects, migrates and hands out connections (`reader`, `writer`, `begin`,
//! `sql`); the queries are in one file per job: `tasks`, `events`, `leases` (fencing and
//! heartbeats), `state` (saved progress), `secrets`, and `rows` (rows read into records).

mod events;
mod leases;
mod rows;
mod secrets;
mod state;
mod tasks;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

use crate::connections::{Acquired, Connections};
use crate::error::{Result, StoreError};
use crate::file_modes;
use crate::scrub::Scrubber;
use crate::sealed::SecretsKey;

pub(crate) use leases::lease_held;

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

/// An event for a task that does not exist violates the foreign key; say so plainly.
pub(crate) fn not_found_on_foreign_key(err: sqlx::Error, task_id: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
            task_id: task_id.into(),
        },
        _ => StoreError::Database(err),
    }
}
