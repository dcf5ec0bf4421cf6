//! Fresh databases for tests of this crate and of the crates above it: a SQLite file in
//! a temporary directory, or a new database on the PostgreSQL server at
//! `SCAFFOLDER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped by [`TestDatabase::finish`]. Each comes with its own task secrets key, which
//! a store or server on PostgreSQL needs.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Connection, Executor};

use crate::{Backend, SecretsKey, Store, TaskSpec};

/// The spec of a task with no steps, for tests that store tasks without running them.
pub fn empty_spec() -> TaskSpec {
    TaskSpec {
        api_version: "scaffolder.backstage.io/v1beta3".to_owned(),
        steps: Vec::new(),
        output: serde_json::Map::new(),
        parameters: serde_json::Value::Null,
        user: None,
        template_info: None,
        recovery: None,
    }
}

/// A database that exists only for one test.
pub struct TestDatabase {
    /// The URL to give [`crate::Store::connect`].
    pub url: String,
    /// A fresh key for task secrets; `secrets_key.to_base64()` is the value of a server's
    /// `scaffolder.taskSecrets.key`.
    pub secrets_key: SecretsKey,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A fresh database on `backend`. Panics with a clear message when PostgreSQL is not
    /// reachable: the suite needs it.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres().await,
        }
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        Self {
            url: format!("sqlite://{}", dir.path().join("scaffolder.db").display()),
            secrets_key: SecretsKey::generate(),
            cleanup: None,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin_url = std::env::var("SCAFFOLDER_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        sqlx::any::install_default_drivers();
        let name = format!(
            "scaffolder_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros()
        );
        let admin = sqlx::AnyPool::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed by the tests: {e}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
        admin.close().await;
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("SCAFFOLDER_TEST_POSTGRES_URL ends with /<database>");
        Self {
            url: format!("{base}/{name}"),
            secrets_key: SecretsKey::generate(),
            cleanup: Some((admin_url, name)),
            _dir: None,
        }
    }

    /// A store on this database with its key, as a server with the key configured has.
    pub async fn connect(&self) -> crate::Result<Store> {
        Store::connect_with(&self.url, Some(self.secrets_key.clone())).await
    }

    /// How many connections listen to this PostgreSQL database's notifications
    /// ([`Store::listen`]); 0 on SQLite. A test that needs a replica to hear a write
    /// waits for its listener first.
    pub async fn listeners(&self) -> usize {
        if self.cleanup.is_none() {
            return 0;
        }
        let pool = sqlx::AnyPool::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", self.url));
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("counting listeners: {e}"));
        pool.close().await;
        sqlx::Row::get::<i64, _>(&row, "n") as usize
    }

    /// Blocks every write of events on this PostgreSQL database (a transaction of its own
    /// holds an exclusive lock on the event log; reads go on) until
    /// [`EventWritesHeld::release`]: a run's next event write waits meanwhile.
    pub async fn hold_event_writes(&self) -> EventWritesHeld {
        assert!(
            self.cleanup.is_some(),
            "holding event writes needs PostgreSQL"
        );
        let mut connection = sqlx::AnyConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", self.url));
        connection
            .execute("BEGIN; LOCK TABLE task_events IN EXCLUSIVE MODE")
            .await
            .unwrap_or_else(|e| panic!("locking the event log: {e}"));
        EventWritesHeld { connection }
    }

    /// Drops a PostgreSQL test database (a SQLite one goes with its directory). Close
    /// the stores that use it first.
    pub async fn finish(self) {
        if let Some((admin_url, name)) = self.cleanup {
            let admin = sqlx::AnyPool::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url}: {e}"));
            admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .unwrap_or_else(|e| panic!("dropping the test database {name}: {e}"));
            admin.close().await;
        }
    }
}

/// The lock of [`TestDatabase::hold_event_writes`].
pub struct EventWritesHeld {
    connection: sqlx::AnyConnection,
}

impl EventWritesHeld {
    /// Lets the waiting writes go on.
    pub async fn release(mut self) {
        self.connection
            .execute("COMMIT")
            .await
            .unwrap_or_else(|e| panic!("releasing the event log: {e}"));
        let _ = self.connection.close().await;
    }
}
