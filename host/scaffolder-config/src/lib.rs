//! The server configuration of `scaffolder serve`, read from Backstage-style
//! `app-config.yaml` files.
//!
//! [`load`] reads the files in order, replaces `${VAR}` in every string value with the
//! environment variable (`$${VAR}` is a literal `${VAR}`, `${VAR:-fallback}` falls back
//! when the variable is unset or empty), and merges them: later files win, mappings
//! merge key by key, every other value (lists included) is replaced whole, and `null`
//! unsets a key. The merged value becomes a typed [`Config`].
//!
//! Keys are read with Backstage's meaning (`backend.*`, `integrations.*`, `scaffolder.*`)
//! plus a few of our own: `backstage.*`, `scaffolder.plugins`, `scaffolder.templates`,
//! `scaffolder.dataDirectory` and `scaffolder.gracefulShutdownTimeout`. Keys we do not read
//! are ignored, since an `app-config.yaml` also carries other plugins' configuration; a key
//! we read with the wrong type is an error naming the file, the key path and what was
//! expected. Numbers and booleans may be written as strings, as Backstage's config reader
//! allows, because a substituted `${PORT}` is always a string.
//!
//! This crate does not connect to anything and does not check that paths exist; `serve`
//! does that with the values it finds here.

mod backend;
mod backstage;
mod database;
mod derived;
mod env;
mod integrations;
mod lenient;
mod load;
mod parse;
mod redacted;
mod scaffolder;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::Deserialize;

pub use backend::{
    AuthConfig, BackendConfig, Cors, DEFAULT_HOST, DEFAULT_PORT, LifecycleConfig, Listen,
    ServerConfig,
};
pub use backstage::{BackstageConfig, CatalogConfig};
pub use database::{
    DEFAULT_POSTGRES_DATABASE, DatabaseClient, DatabaseConfig, DatabaseConnection, SQLITE_FILE_NAME,
};
pub use integrations::{Integration, IntegrationsConfig};
pub use scaffolder::{
    ActionsRegistryConfig, DefaultAuthor, DefaultEnvironment, DryRunConfig, PluginEntry,
    PluginSignatures, S3Settings, ScaffolderConfig, TaskRecovery, TaskSecrets, WorkspaceStoreKind,
    WorkspaceStoreSettings,
};

use load::load_with_env;
/// Reads `files` in order, substitutes environment variables, merges them and returns the
/// typed configuration. No files gives every default.
///
/// Errors name the file and the key path, e.g.
/// `app-config.yaml: backend.database.connection: environment variable DATABASE_URL is not set`.
pub fn load(files: &[PathBuf]) -> anyhow::Result<Config> {
    load_with_env(files, &|name| std::env::var(name).ok())
}

/// The whole configuration the server reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct Config {
    /// `backend.*`: Backstage's backend settings.
    pub backend: BackendConfig,
    /// `backstage.*` (ours): the Backstage instance this scaffolder serves.
    pub backstage: BackstageConfig,
    /// `scaffolder.*`: Backstage's scaffolder settings plus ours.
    pub scaffolder: ScaffolderConfig,
    /// `integrations.*`: Backstage's SCM integrations.
    pub integrations: IntegrationsConfig,
}
