//! [`Connections`]: where the store's statements run. On PostgreSQL, sqlx's pool; on
//! SQLite, connections the store holds itself: one that writes and up to eight that read.
//!
//! SQLite has one writer at a time, so writers queue for their one connection instead of
//! sleeping in SQLite's busy handler (a millisecond and more between tries: 260 tasks/s
//! in the server benchmark when eight pooled connections wrote). And SQLite connections
//! are not kept in sqlx's pool because it pings a connection when it is handed out and
//! again when it comes back, each a round trip to the connection's thread: three thread
//! hand-offs per statement where one does the work (76 context switches per task in the
//! server benchmark, 39 without). A connection to a local file does not go stale the way
//! a network connection does, and its statements run in the order they were sent, so a
//! connection whose user was dropped mid-statement (or mid-transaction, whose drop sends
//! the rollback) is fit for the next user as it is. A transaction sent as one command
//! ([`in_one_command`]) has no such guard: its connection is rolled back before it is
//! given back.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use sqlx::any::{Any, AnyArguments, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Result;

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Connections {
    Held(Arc<Held>),
    Pool(AnyPool),
}

/// SQLite connections, opened on demand up to a limit and kept open.
#[derive(Debug)]
pub(crate) struct Held {
    url: String,
    /// One per connection that may exist; closed when the store closes.
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<AnyConnection>>,
    /// Whether connections zero what they delete ([`prepare_sqlite`]).
    secure_delete: bool,
}

/// A connection to run statements on, exclusive until dropped.
pub(crate) enum Acquired {
    Held(HeldConnection),
    Pooled(PoolConnection<Any>),
}

pub(crate) struct HeldConnection {
    connection: Option<AnyConnection>,
    home: Arc<Held>,
    permit: Option<OwnedSemaphorePermit>,
    /// A transaction sent as one command ([`in_one_command`]) is under way: if this is
    /// dropped before it ends, the transaction may be open (sqlx stops running a
    /// command's statements when nobody waits for their results any more).
    in_transaction: bool,
}

impl Connections {
    /// Up to `limit` SQLite connections to `url`, opened when first needed; `first`
    /// (opened by [`Connections::open_sqlite`]) is the first of them.
    pub(crate) fn held(url: &str, limit: usize, secure_delete: bool, first: AnyConnection) -> Self {
        Connections::Held(Arc::new(Held {
            url: url.to_owned(),
            permits: Arc::new(Semaphore::new(limit)),
            idle: Mutex::new(vec![first]),
            secure_delete,
        }))
    }

    /// Opens a SQLite connection prepared as the store needs it.
    pub(crate) async fn open_sqlite(url: &str, secure_delete: bool) -> Result<AnyConnection> {
        let mut connection = AnyConnection::connect(url).await?;
        prepare_sqlite(&mut connection, secure_delete).await?;
        Ok(connection)
    }

    /// Waits for a connection: an idle one, a new one while under the limit, or the
    /// next one given back. `PoolClosed` once closed.
    pub(crate) async fn acquire(&self) -> Result<Acquired> {
        match self {
            Connections::Held(held) => {
                let permit = held
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| sqlx::Error::PoolClosed)?;
                let idle = held.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let connection = match idle {
                    Some(connection) => connection,
                    None => Self::open_sqlite(&held.url, held.secure_delete).await?,
                };
                Ok(Acquired::Held(HeldConnection {
                    connection: Some(connection),
                    home: held.clone(),
                    permit: Some(permit),
                    in_transaction: false,
                }))
            }
            Connections::Pool(pool) => Ok(Acquired::Pooled(pool.acquire().await?)),
        }
    }

    /// Closes the connections, after the statements under way (if any).
    pub(crate) async fn close(&self) {
        match self {
            Connections::Held(held) => {
                held.permits.close();
                // Connections in use close when given back (see `Drop`).
                let idle =
                    std::mem::take(&mut *held.idle.lock().unwrap_or_else(|e| e.into_inner()));
                for connection in idle {
                    let _ = connection.close().await;
                }
            }
            Connections::Pool(pool) => pool.close().await,
        }
    }

    /// The pool behind PostgreSQL's connections.
    pub(crate) fn pool(&self) -> Option<&AnyPool> {
        match self {
            Connections::Held(_) => None,
            Connections::Pool(pool) => Some(pool),
        }
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        if self.home.permits.is_closed() {
            // The store closed while this was in use: the connection's thread ends when
            // it is dropped.
            return;
        }
        if !self.in_transaction {
            self.home.give_back(connection);
            return;
        }
        // Dropped inside a transaction sent as one command: roll it back (after what is
        // left of the command, which the connection's thread finishes first) before the
        // connection serves anyone else; the permit is held until then. Without a
        // runtime the connection closes, and SQLite rolls back.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (home, permit) = (self.home.clone(), self.permit.take());
        runtime.spawn(async move {
            // Fails harmlessly when the command got as far as its COMMIT.
            let _ = connection.execute("ROLLBACK").await;
            home.give_back(connection);
            drop(permit);
        });
    }
}

impl Held {
    fn give_back(&self, connection: AnyConnection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(connection);
    }
}

impl Deref for Acquired {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Acquired::Held(held) => held.connection.as_ref().expect("held until dropped"),
            Acquired::Pooled(connection) => connection,
        }
    }
}

impl DerefMut for Acquired {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Acquired::Held(held) => held.connection.as_mut().expect("held until dropped"),
            Acquired::Pooled(connection) => connection,
        }
    }
}

/// Runs a SQLite transaction written out in full (`BEGIN IMMEDIATE; ...; COMMIT`, the
/// statements' `?` bound in order) as one command to the connection's thread, and
/// returns the rows its statements returned. A statement that fails stops the rest:
/// the transaction is then rolled back, as it is when the caller is dropped before the
/// command ends ([`HeldConnection`]'s drop).
pub(crate) async fn in_one_command<'q>(
    conn: &mut Acquired,
    query: sqlx::query::Query<'q, Any, AnyArguments<'q>>,
) -> Result<Vec<AnyRow>> {
    conn.set_in_transaction(true);
    let rows = match query.fetch_all(&mut **conn).await {
        Ok(rows) => Ok(rows),
        Err(err) => {
            // Fails harmlessly when the failure came before BEGIN or at COMMIT.
            let _ = conn.execute("ROLLBACK").await;
            Err(err.into())
        }
    };
    conn.set_in_transaction(false);
    rows
}

impl Acquired {
    fn set_in_transaction(&mut self, in_transaction: bool) {
        if let Acquired::Held(held) = self {
            held.in_transaction = in_transaction;
        }
    }
}

/// WAL mode and the pragmas every SQLite connection of the store needs.
async fn prepare_sqlite(conn: &mut AnyConnection, secure_delete: bool) -> sqlx::Result<()> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    // In WAL mode NORMAL loses no committed transaction when the process dies (only on
    // power loss), and spares an fsync per event.
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA busy_timeout = 5000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // Deleted content (dropped secrets) is overwritten with zeros, not left in free space
    // or free pages. With a key, secrets are only ever written sealed, and nothing needs
    // scrubbing.
    if secure_delete {
        conn.execute("PRAGMA secure_delete = ON").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Row;

    use super::*;

    async fn sqlite(dir: &tempfile::TempDir, limit: usize) -> Connections {
        sqlx::any::install_default_drivers();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("db.sqlite").display()
        );
        let first = Connections::open_sqlite(&url, false).await.unwrap();
        Connections::held(&url, limit, false, first)
    }

    /// One connection to a database with a table `t (x INTEGER NOT NULL)`, and that
    /// connection, acquired.
    async fn table_t(dir: &tempfile::TempDir) -> (Connections, Acquired) {
        let connections = sqlite(dir, 1).await;
        let mut conn = connections.acquire().await.unwrap();
        conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
            .await
            .unwrap();
        (connections, conn)
    }

    async fn rows_of_t(conn: &mut Acquired) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM t")
            .fetch_one(&mut **conn)
            .await
            .unwrap()
            .get("n")
    }

    /// Whether `acquire` gives a connection without waiting.
    async fn available(connections: &Connections) -> bool {
        tokio::time::timeout(Duration::ZERO, connections.acquire())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn held_connections_are_kept_open_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        let connections = sqlite(&dir, 2).await;
        let mut first = connections.acquire().await.unwrap();
        // A temporary table is seen only by the connection that made it.
        first.execute("CREATE TEMP TABLE mine (x)").await.unwrap();
        let second = connections.acquire().await.unwrap();
        assert!(!available(&connections).await, "a third connection waits");
        drop(first);
        let again = connections.acquire().await.unwrap();
        drop(second);
        let mut again = again;
        again
            .execute("SELECT x FROM mine")
            .await
            .expect("the connection given back is handed out again, still open");
    }

    #[tokio::test]
    async fn closed_connections_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let connections = sqlite(&dir, 1).await;
        connections.close().await;
        let err = connections.acquire().await.err().expect("refused");
        assert!(
            matches!(err, crate::StoreError::Database(sqlx::Error::PoolClosed)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_transaction_in_one_command_dropped_midway_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let (connections, mut conn) = table_t(&dir).await;
        // The insert runs, then the caller gives up during the slow statement: the
        // command's COMMIT never runs.
        let query = sqlx::query(
            "BEGIN IMMEDIATE; INSERT INTO t (x) VALUES (?); \
             WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5000000) \
             SELECT COUNT(*) FROM c; COMMIT",
        )
        .bind(1_i64);
        let gave_up =
            tokio::time::timeout(Duration::from_millis(20), in_one_command(&mut conn, query)).await;
        assert!(gave_up.is_err(), "the command outlasts the timeout");
        drop(conn);

        let mut conn = connections.acquire().await.unwrap();
        assert_eq!(rows_of_t(&mut conn).await, 0, "the insert was rolled back");
        let query =
            sqlx::query("BEGIN IMMEDIATE; INSERT INTO t (x) VALUES (?); COMMIT").bind(2_i64);
        in_one_command(&mut conn, query)
            .await
            .expect("no transaction was left open");
    }

    #[tokio::test]
    async fn a_transaction_in_one_command_that_fails_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut conn) = table_t(&dir).await;
        let query = sqlx::query(
            "BEGIN IMMEDIATE; INSERT INTO t (x) VALUES (?) RETURNING x; \
             INSERT INTO t (x) VALUES (?); COMMIT",
        )
        .bind(1_i64)
        .bind(None::<i64>);
        let err = in_one_command(&mut conn, query).await.err().expect("fails");
        assert!(err.to_string().contains("NOT NULL"), "{err}");
        assert_eq!(
            rows_of_t(&mut conn).await,
            0,
            "the first insert was rolled back"
        );

        let query =
            sqlx::query("BEGIN IMMEDIATE; INSERT INTO t (x) VALUES (?) RETURNING x; COMMIT")
                .bind(2_i64);
        let rows = in_one_command(&mut conn, query)
            .await
            .expect("no transaction was left open");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<i64, _>("x"), 2);
    }
}
