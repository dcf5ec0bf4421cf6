//! What can go wrong in the store.

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no task with id '{task_id}'")]
    NotFound { task_id: String },
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

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
