//! What can go wrong in the store.

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no task with id '{task_id}'")]
    NotFound { task_id: String },
    #[error(
        "task '{task_id}' is no longer held by this run (claim {attempt}): it was recovered, claimed again or ended"
    )]
    LeaseLost { task_id: String, attempt: i64 },
    #[error("{message}")]
    Conflict { message: String },
    #[error("stored data of task '{task_id}' is not valid JSON: {message}")]
    Corrupt { task_id: String, message: String },
    #[error("unsupported database URL '{url}': use sqlite://<path> or postgres://<host>/<db>")]
    UnsupportedUrl { url: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot read the secrets of task '{task_id}': {reason}")]
    UnreadableSecrets { task_id: String, reason: String },
    #[error("invalid task secrets key: {reason}; create one with `openssl rand -base64 32`")]
    InvalidSecretsKey { reason: String },
    #[error(
        "task secrets must be encrypted at rest on PostgreSQL, and no task secrets key was given"
    )]
    SecretsKeyRequired,
    #[error("cannot make the database file {path} private: {source}")]
    FileMode {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the same operation may succeed when tried again: the connection to the
    /// database dropped or could not be had, the server is restarting, or the database
    /// was busy. Refusals (a lost lease, a conflict, bad data) are not.
    pub fn is_transient(&self) -> bool {
        let StoreError::Database(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL: connection exceptions (08...), operator intervention
                // (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
                // now), serialization failures and deadlocks (40001, 40P01).
                // SQLite (numbers, shorter than PostgreSQL's five characters):
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
                if code.len() == 5 {
                    code.starts_with("08")
                        || matches!(&*code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
                } else {
                    code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
                }
            }),
            _ => false,
        }
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
