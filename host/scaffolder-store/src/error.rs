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
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
