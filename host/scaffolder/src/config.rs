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
//! This module does not connect to anything and does not check that paths exist; `serve`
//! does that with the values it finds here.

// `serve` uses this module next; until then most of it is unused.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use scaffolder_engine::DryRunLimits;
use scaffolder_engine::workspace_store::{S3Config, WorkspaceStoreConfig};
use scaffolder_runtime::{Grants, Limits, PluginConfig};
use scaffolder_store::{Backend, SecretsKey};
use scaffolder_template::yaml::{child_index, child_key, parse_documents};
use scaffolder_template::{ScmIntegration, ScmKind};
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Map, Value};

/// Reads `files` in order, substitutes environment variables, merges them and returns the
/// typed configuration. No files gives every default.
///
/// Errors name the file and the key path, e.g.
/// `app-config.yaml: backend.database.connection: environment variable DATABASE_URL is not set`.
pub fn load(files: &[PathBuf]) -> anyhow::Result<Config> {
    load_with_env(files, &|name| std::env::var(name).ok())
}

/// Turns an already merged configuration value into a [`Config`], without environment
/// substitution or path resolution (relative paths stay relative to the working directory).
pub fn from_value(value: Value) -> anyhow::Result<Config> {
    parse(value).map_err(|err| anyhow!(err.describe(&[])))
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

/// `backend.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct BackendConfig {
    /// `backend.lifecycle`.
    pub lifecycle: LifecycleConfig,
    /// `backend.listen`: where the HTTP server binds.
    pub listen: Listen,
    /// `backend.baseUrl`: the URL at which clients reach this server.
    pub base_url: Option<String>,
    /// `backend.database`.
    pub database: DatabaseConfig,
    /// `backend.workingDirectory`: where task workspaces are created (relative to the
    /// current directory, as in Backstage); the system temporary directory when unset.
    pub working_directory: Option<PathBuf>,
    /// `backend.cors`; absent means no CORS headers at all.
    pub cors: Option<Cors>,
    /// `backend.auth`.
    pub auth: AuthConfig,
    /// `backend.server` (ours; Node's `http.Server` settings that Backstage sets in code).
    pub server: ServerConfig,
}

/// `backend.server`: connection timeouts and limits, named after the Node.js `http.Server`
/// properties Backstage's root HTTP router exposes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct ServerConfig {
    /// `backend.server.headersTimeout`: how long a request's headers may take to arrive
    /// (also the longest wait for the next request on a kept-alive connection), default
    /// 60 s as in Node.js.
    #[serde(deserialize_with = "duration")]
    pub headers_timeout: Duration,
    /// `backend.server.requestTimeout`: how long a request's body may take to arrive after
    /// its headers, default 300 s as in Node.js.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// `backend.server.keepAliveTimeout`: an idle connection (no request in progress, no
    /// bytes received) is closed after this long, default 5 s as in Node.js. Event streams
    /// are requests in progress and stay open.
    #[serde(deserialize_with = "duration")]
    pub keep_alive_timeout: Duration,
    /// `backend.server.maxConnections`: open connections beyond this are answered 503 and
    /// closed; default three quarters of the open-file limit.
    pub max_connections: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            headers_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: None,
        }
    }
}

/// `backend.listen`: either `{ host, port }` or a string `"<port>"`, `":<port>"` or
/// `"<host>:<port>"` (`"[<ipv6>]:<port>"` for IPv6). An empty host means the default host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 7007.
    pub port: u16,
}

/// The default `backend.listen.host`: loopback only, unlike Backstage's all interfaces.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The default `backend.listen.port`, Backstage's.
pub const DEFAULT_PORT: u16 = 7007;

impl Default for Listen {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
        }
    }
}

/// `backend.lifecycle`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct LifecycleConfig {
    /// `backend.lifecycle.serverShutdownDelay`, as in Backstage: how long the server keeps
    /// answering requests after SIGTERM (readiness answers 503 meanwhile, so a load
    /// balancer stops sending requests first); default none.
    #[serde(deserialize_with = "duration")]
    pub server_shutdown_delay: Duration,
}

/// `backend.database`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct DatabaseConfig {
    /// `backend.database.client`, default `better-sqlite3`.
    pub client: DatabaseClient,
    /// `backend.database.connection`; checked against `client` when loading.
    /// Absent means a SQLite file in the data directory (required for `pg`).
    pub connection: Option<DatabaseConnection>,
}

/// The database driver Backstage names in `backend.database.client`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum DatabaseClient {
    #[default]
    #[serde(rename = "better-sqlite3")]
    BetterSqlite3,
    #[serde(rename = "sqlite3")]
    Sqlite3,
    #[serde(rename = "pg")]
    Pg,
}

/// `backend.database.connection`, in the forms Backstage accepts.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConnection {
    /// `":memory:"` (SQLite).
    Memory,
    /// A string: a file path for SQLite, a `postgres://` URL for `pg`.
    String(String),
    /// `{ directory }` (SQLite): the database is `<directory>/scaffolder.sqlite`, as
    /// Backstage names a plugin's file.
    Directory(PathBuf),
    /// `{ filename }` (SQLite).
    Filename(PathBuf),
    /// `{ host, port, user, password, database }` (`pg`); the URL defaults to
    /// `localhost:5432` and the database `backstage_plugin_scaffolder`.
    Postgres {
        host: Option<String>,
        port: Option<u16>,
        user: Option<String>,
        password: Option<String>,
        database: Option<String>,
    },
}

/// The SQLite file name under the data directory or `connection.directory`.
pub const SQLITE_FILE_NAME: &str = "scaffolder.sqlite";
/// The PostgreSQL database name when none is configured: Backstage's
/// `backstage_plugin_<pluginId>`.
pub const DEFAULT_POSTGRES_DATABASE: &str = "backstage_plugin_scaffolder";

impl DatabaseConfig {
    /// The URL `scaffolder_store::Store::connect` takes: `sqlite://<path>` (by default
    /// `<data_dir>/scaffolder.sqlite`), `sqlite::memory:` for `":memory:"`, or
    /// `postgres://user:password@host:port/database` with the user and password
    /// percent-encoded.
    pub fn database_url(&self, data_dir: &Path) -> String {
        match &self.connection {
            None => sqlite_url(&data_dir.join(SQLITE_FILE_NAME)),
            Some(DatabaseConnection::Memory) => "sqlite::memory:".to_owned(),
            Some(DatabaseConnection::String(url)) if self.client == DatabaseClient::Pg => {
                url.clone()
            }
            Some(DatabaseConnection::String(path)) => sqlite_url(Path::new(path)),
            Some(DatabaseConnection::Directory(dir)) => sqlite_url(&dir.join(SQLITE_FILE_NAME)),
            Some(DatabaseConnection::Filename(file)) => sqlite_url(file),
            Some(DatabaseConnection::Postgres {
                host,
                port,
                user,
                password,
                database,
            }) => postgres_url(
                host.as_deref(),
                *port,
                user.as_deref(),
                password.as_deref(),
                database.as_deref(),
            ),
        }
    }
}

/// `backend.cors`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct Cors {
    /// `origin`: one origin or a list; `*` allows any; absent allows none.
    #[serde(rename = "origin", deserialize_with = "strings")]
    pub origins: Vec<String>,
    /// `methods`: a list or a comma-separated string, upper-cased; default
    /// `GET, HEAD, PUT, PATCH, POST, DELETE` (the `cors` package's).
    #[serde(deserialize_with = "methods")]
    pub methods: Vec<String>,
    /// `credentials`: whether to send `Access-Control-Allow-Credentials`.
    #[serde(deserialize_with = "boolean")]
    pub credentials: bool,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            credentials: false,
        }
    }
}

/// `backend.auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct AuthConfig {
    /// `backend.auth.externalAccess`: callers other than Backstage users.
    pub external_access: Vec<ExternalAccess>,
    /// `backend.auth.dangerouslyDisableDefaultAuthPolicy`: accept unauthenticated requests.
    #[serde(deserialize_with = "boolean")]
    pub dangerously_disable_default_auth_policy: bool,
}

/// One `backend.auth.externalAccess` entry, `{ type, options }`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", content = "options", rename_all = "lowercase")]
pub enum ExternalAccess {
    /// A fixed bearer token (at least 8 characters, no whitespace) acting as `subject`.
    Static {
        #[serde(deserialize_with = "static_token")]
        token: String,
        subject: String,
    },
    /// Tokens signed by keys published at `url`, optionally checked for issuer,
    /// algorithm and audience; the subject is prefixed with `subjectPrefix`.
    #[serde(rename_all = "camelCase")]
    Jwks {
        url: String,
        #[serde(default)]
        issuer: Option<String>,
        /// `algorithm`: one or a list; empty accepts the key's own algorithm.
        #[serde(default, rename = "algorithm", deserialize_with = "strings")]
        algorithms: Vec<String>,
        /// `audience`: one or a list; empty skips the check.
        #[serde(default, deserialize_with = "strings")]
        audience: Vec<String>,
        #[serde(default)]
        subject_prefix: Option<String>,
    },
}

/// `backstage.*` (ours): the Backstage instance whose users and catalog we serve.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct BackstageConfig {
    /// `backstage.baseUrl`: user tokens are checked against its JWKS and templates are
    /// read from its catalog.
    pub base_url: Option<String>,
    /// `backstage.catalog`.
    pub catalog: CatalogConfig,
}

impl BackstageConfig {
    /// `{baseUrl}/api/auth/.well-known/jwks.json`, where Backstage publishes the keys of
    /// its user tokens.
    pub fn jwks_url(&self) -> Option<String> {
        self.base_url.as_ref().map(|base| {
            format!(
                "{}/api/auth/.well-known/jwks.json",
                base.trim_end_matches('/')
            )
        })
    }
}

/// `backstage.catalog`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct CatalogConfig {
    /// `backstage.catalog.token`: a service token sent as `Authorization: Bearer` when
    /// reading templates from the catalog.
    pub token: Option<String>,
}

/// `scaffolder.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct ScaffolderConfig {
    /// `scaffolder.concurrentTasksLimit`: tasks run at once, default 10.
    #[serde(deserialize_with = "number")]
    pub concurrent_tasks_limit: usize,
    /// `scaffolder.defaultEnvironment`.
    pub default_environment: DefaultEnvironment,
    /// `scaffolder.defaultAuthor`: the git author of `publish:*` commits.
    pub default_author: DefaultAuthor,
    /// `scaffolder.defaultCommitMessage`.
    pub default_commit_message: Option<String>,
    /// `scaffolder.taskRecovery`.
    pub task_recovery: TaskRecovery,
    /// `scaffolder.taskSecrets` (ours): how task secrets are kept at rest.
    pub task_secrets: TaskSecrets,
    /// `scaffolder.taskTimeout`: a task running longer is failed, default 24 h.
    #[serde(deserialize_with = "duration")]
    pub task_timeout: Duration,
    /// `scaffolder.gracefulShutdownTimeout` (ours): how long shutdown waits for running
    /// steps, default 30 s.
    #[serde(deserialize_with = "duration")]
    pub graceful_shutdown_timeout: Duration,
    /// `scaffolder.plugins` (ours): the Wasm components providing actions.
    pub plugins: Vec<PluginEntry>,
    /// `scaffolder.pluginSignatures` (ours): keys whose signature every OCI plugin needs.
    pub plugin_signatures: PluginSignatures,
    /// `scaffolder.templates` (ours): directories of local templates, resolved against
    /// the directory of the file that lists them.
    pub templates: Vec<PathBuf>,
    /// `scaffolder.dataDirectory` (ours): the SQLite file and the component cache.
    pub data_directory: Option<PathBuf>,
    /// `scaffolder.actionsRegistry` (ours): serve the actions to a Backstage backend
    /// through its actions registry.
    pub actions_registry: Option<ActionsRegistryConfig>,
    /// `scaffolder.workspaceRetention` (ours): the workspace of a task that has ended
    /// (a failed task keeps its own for a retry) is removed once unchanged this long,
    /// default 7 days.
    #[serde(deserialize_with = "duration")]
    pub workspace_retention: Duration,
    /// `scaffolder.dryRun` (ours): what a dry run may return.
    pub dry_run: DryRunConfig,
    /// `scaffolder.workspaceStore` (ours): where workspaces are saved after each step so
    /// that another replica can take a task over.
    pub workspace_store: WorkspaceStoreSettings,
}

/// `scaffolder.dryRun`: caps on the files a dry run returns (`POST /v2/dry-run` and
/// `scaffolder dry-run`); a run over either fails with the key named.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    default,
    deny_unknown_fields,
    expecting = "a mapping"
)]
pub struct DryRunConfig {
    /// Files and links, default 10,000.
    #[serde(deserialize_with = "number")]
    pub max_files: usize,
    /// Bytes of content (a sparse file at its apparent size), default 64 MiB.
    #[serde(deserialize_with = "number")]
    pub max_bytes: u64,
}

impl Default for DryRunConfig {
    fn default() -> Self {
        let limits = DryRunLimits::default();
        Self {
            max_files: limits.max_files,
            max_bytes: limits.max_bytes,
        }
    }
}

impl DryRunConfig {
    pub fn limits(&self) -> DryRunLimits {
        DryRunLimits {
            max_files: self.max_files,
            max_bytes: self.max_bytes,
        }
    }
}

/// `scaffolder.actionsRegistry`: the server answers as the Backstage plugin `pluginId`
/// (`/api/<pluginId>/.backstage/actions/...`), to the plugins of the Backstage backend
/// at `backstage.baseUrl` named in `allowedCallers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    default,
    deny_unknown_fields,
    expecting = "a mapping"
)]
pub struct ActionsRegistryConfig {
    /// The plugin id Backstage knows this server by, default `wasm-actions`.
    pub plugin_id: String,
    /// Plugin ids whose tokens are accepted, default `[scaffolder]`.
    pub allowed_callers: Vec<String>,
    /// Glob patterns of the action ids exposed (`postgres:*`); none exposes every action.
    pub actions: Vec<String>,
}

impl Default for ActionsRegistryConfig {
    fn default() -> Self {
        Self {
            plugin_id: "wasm-actions".into(),
            allowed_callers: vec!["scaffolder".into()],
            actions: Vec::new(),
        }
    }
}

impl Default for ScaffolderConfig {
    fn default() -> Self {
        Self {
            concurrent_tasks_limit: 10,
            default_environment: DefaultEnvironment::default(),
            default_author: DefaultAuthor::default(),
            default_commit_message: None,
            task_recovery: TaskRecovery::default(),
            task_secrets: TaskSecrets::default(),
            task_timeout: Duration::from_secs(24 * 60 * 60),
            graceful_shutdown_timeout: Duration::from_secs(30),
            plugins: Vec::new(),
            plugin_signatures: PluginSignatures::default(),
            templates: Vec::new(),
            data_directory: None,
            actions_registry: None,
            workspace_retention: Duration::from_secs(7 * 24 * 60 * 60),
            dry_run: DryRunConfig::default(),
            workspace_store: WorkspaceStoreSettings::default(),
        }
    }
}

/// `scaffolder.workspaceStore`: `{ type, maxBytes, maxEntries, s3 }`, checked when
/// loading; [`WorkspaceStoreSettings::resolve`] gives the engine's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    default,
    deny_unknown_fields,
    expecting = "a mapping"
)]
pub struct WorkspaceStoreSettings {
    /// `type`; absent means `database` on PostgreSQL and `none` on SQLite.
    #[serde(rename = "type")]
    pub kind: Option<WorkspaceStoreKind>,
    /// The sum of the files' sizes a save accepts; the engine's default for the backend
    /// when absent (256 MiB in the database, 4 GiB in S3).
    #[serde(deserialize_with = "optional_number")]
    pub max_bytes: Option<u64>,
    /// Files, directories and links a save accepts, default 100,000.
    #[serde(deserialize_with = "optional_number")]
    pub max_entries: Option<usize>,
    /// Required with `type: s3`, refused with any other.
    pub s3: Option<S3Settings>,
}

/// `scaffolder.workspaceStore.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WorkspaceStoreKind {
    /// In the task database, which replicas on PostgreSQL share.
    #[serde(rename = "database")]
    Database,
    #[serde(rename = "s3")]
    S3,
    /// Workspaces stay on the replica that runs the task.
    #[serde(rename = "none")]
    Disabled,
}

/// `scaffolder.workspaceStore.s3`: an S3 bucket or an S3-compatible server. The secret key
/// is never printed by `Debug` nor repeated in an error.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    default,
    deny_unknown_fields,
    expecting = "a mapping"
)]
pub struct S3Settings {
    pub bucket: Option<String>,
    /// An S3-compatible server's URL; AWS's endpoint for `region` when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Both keys, or neither (then the instance's or environment's credentials).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Object keys start with `<prefix>/`.
    pub prefix: String,
    /// Allow an `http://` endpoint (a server on loopback or a private network).
    #[serde(deserialize_with = "boolean")]
    pub allow_http: bool,
}

impl WorkspaceStoreSettings {
    /// The engine's workspace store on a task database of `backend`, `None` for none.
    /// Without `type`, replicas on PostgreSQL share the database, so workspaces go there;
    /// SQLite serves one process, whose working directory survives its restart.
    pub fn resolve(&self, backend: Backend) -> Option<WorkspaceStoreConfig> {
        let kind = self.kind.unwrap_or(match backend {
            Backend::Postgres => WorkspaceStoreKind::Database,
            Backend::Sqlite => WorkspaceStoreKind::Disabled,
        });
        let mut config = match kind {
            WorkspaceStoreKind::Disabled => return None,
            WorkspaceStoreKind::Database => WorkspaceStoreConfig::database(),
            WorkspaceStoreKind::S3 => {
                let s3 = self
                    .s3
                    .as_ref()
                    .expect("loading requires scaffolder.workspaceStore.s3 with type s3");
                WorkspaceStoreConfig::s3(S3Config {
                    bucket: s3.bucket.clone().unwrap_or_default(),
                    endpoint: s3.endpoint.clone(),
                    region: s3.region.clone(),
                    access_key_id: s3.access_key_id.clone(),
                    secret_access_key: s3.secret_access_key.clone(),
                    prefix: s3.prefix.clone(),
                    allow_http: s3.allow_http,
                })
            }
        };
        if let Some(max_bytes) = self.max_bytes {
            config.max_bytes = max_bytes;
        }
        if let Some(max_entries) = self.max_entries {
            config.max_entries = max_entries;
        }
        Some(config)
    }
}

/// `scaffolder.pluginSignatures`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    default,
    deny_unknown_fields,
    expecting = "a mapping"
)]
pub struct PluginSignatures {
    /// Public keys (PEM files, resolved like plugin sources, or inline PEM); when any are
    /// given, a plugin from an OCI registry loads only with a signature by one of them.
    pub keys: Vec<String>,
}

/// `scaffolder.defaultEnvironment`: values every template sees as
/// `${{ environment.parameters.* }}` and `${{ environment.secrets.* }}`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct DefaultEnvironment {
    /// Any JSON values.
    pub parameters: Map<String, Value>,
    /// String values only; never printed by `Debug`.
    #[serde(deserialize_with = "string_map")]
    pub secrets: Map<String, Value>,
}

/// `scaffolder.defaultAuthor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct DefaultAuthor {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// `scaffolder.taskRecovery`: what happens to tasks left running by a stopped server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct TaskRecovery {
    /// Whether stale tasks are recovered (default true, unlike Backstage's opt-in
    /// `EXPERIMENTAL_recoverTasks`).
    #[serde(deserialize_with = "boolean")]
    pub enabled: bool,
    /// A task without a heartbeat for this long is stale, default 30 s.
    #[serde(deserialize_with = "duration")]
    pub stale_timeout: Duration,
}

impl Default for TaskRecovery {
    fn default() -> Self {
        Self {
            enabled: true,
            stale_timeout: Duration::from_secs(30),
        }
    }
}

/// `scaffolder.taskSecrets`: the secrets a task holds while it runs (the caller's
/// `secrets`, its `backstageToken`, values steps add) are stored encrypted with `key`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping")]
pub struct TaskSecrets {
    /// 32 random bytes in base64 (`openssl rand -base64 32`), usually
    /// `${SCAFFOLDER_TASK_SECRETS_KEY}`; required with PostgreSQL, optional with SQLite.
    #[serde(deserialize_with = "secrets_key")]
    pub key: Option<SecretsKey>,
}

/// One `scaffolder.plugins` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, expecting = "a mapping")]
pub struct PluginEntry {
    /// The `.wasm` component, resolved against the directory of the file that names it;
    /// `builtin:<name>`; an OCI reference, `oci://host/name:tag` or `...@sha256:<hex>`; or
    /// an `https://` URL.
    pub source: PathBuf,
    /// `sha256:<hex>`: the component must have this digest (checked before anything is
    /// compiled; for an OCI source, before it is downloaded).
    #[serde(default, deserialize_with = "digest")]
    pub digest: Option<String>,
    /// Speak plain HTTP to the source's OCI registry or URL (a server on loopback).
    #[serde(default, deserialize_with = "boolean")]
    pub insecure: bool,
    /// Public keys (as in `scaffolder.pluginSignatures.keys`) of which one must have signed
    /// this OCI plugin; replaces the global list for this plugin.
    #[serde(default)]
    pub signed_by: Vec<String>,
    /// What the plugin may reach; nothing by default.
    #[serde(default)]
    pub grants: Grants,
    /// Per-step limits.
    #[serde(default)]
    pub limits: Limits,
    /// What the plugin reads with `host.get-config`, added to (and overriding) the values
    /// the server sets for every plugin. Never secret.
    #[serde(default, deserialize_with = "config_values")]
    pub config: BTreeMap<String, String>,
}

impl PluginEntry {
    /// The runtime's view of this entry, with `settings` (the server's values for every
    /// plugin) under the entry's own `config`.
    pub fn plugin_config(&self, settings: &BTreeMap<String, String>) -> PluginConfig {
        let mut config = settings.clone();
        config.extend(self.config.clone());
        PluginConfig {
            grants: self.grants.clone(),
            limits: self.limits.clone(),
            config,
        }
    }
}

/// `integrations.*`: Backstage's SCM integrations, one list per kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct IntegrationsConfig {
    pub github: Vec<Integration>,
    pub gitlab: Vec<Integration>,
    pub gitea: Vec<Integration>,
    pub bitbucket_cloud: Vec<Integration>,
    pub bitbucket_server: Vec<Integration>,
    pub azure: Vec<Integration>,
    pub gerrit: Vec<Integration>,
}

/// One SCM host. Credentials are never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct Integration {
    /// The host name; defaults to `github.com`, `gitlab.com`, `bitbucket.org` or
    /// `dev.azure.com` for those kinds, required for the others.
    pub host: String,
    pub api_base_url: Option<String>,
    pub token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl IntegrationsConfig {
    /// Every configured integration with its kind, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = (ScmKind, &Integration)> {
        self.lists()
            .into_iter()
            .flat_map(|(kind, list)| list.iter().map(move |i| (kind, i)))
    }

    /// The configured integration for `host`, if any.
    pub fn find(&self, host: &str) -> Option<(ScmKind, &Integration)> {
        self.iter().find(|(_, i)| i.host.eq_ignore_ascii_case(host))
    }

    /// The hosts templates may name in `parseRepoUrl`: the configured ones, then those of
    /// Backstage's defaults (github.com, gitlab.com, bitbucket.org, dev.azure.com) that
    /// are not configured.
    pub fn scm_integrations(&self) -> Vec<ScmIntegration> {
        let mut out: Vec<ScmIntegration> = self
            .iter()
            .map(|(kind, i)| ScmIntegration {
                host: i.host.clone(),
                kind,
            })
            .collect();
        for default in ScmIntegration::defaults() {
            if !out
                .iter()
                .any(|i| i.host.eq_ignore_ascii_case(&default.host))
            {
                out.push(default);
            }
        }
        out
    }

    /// Each list with its kind.
    fn lists(&self) -> [(ScmKind, &[Integration]); 7] {
        [
            (ScmKind::Github, &self.github),
            (ScmKind::Gitlab, &self.gitlab),
            (ScmKind::Gitea, &self.gitea),
            (ScmKind::BitbucketCloud, &self.bitbucket_cloud),
            (ScmKind::BitbucketServer, &self.bitbucket_server),
            (ScmKind::Azure, &self.azure),
            (ScmKind::Gerrit, &self.gerrit),
        ]
    }
}

// ---------------------------------------------------------------------------
// Loading

/// [`load`] with the environment given as a function, so tests need not touch the
/// process environment.
fn load_with_env(
    files: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Config> {
    let mut merged = Value::Object(Map::new());
    let mut sources = Vec::new();
    for file in files {
        let value = read_file(file, env)?;
        merge(&mut merged, value.clone());
        sources.push((file.display().to_string(), value));
    }
    parse(merged).map_err(|err| anyhow!(err.describe(&sources)))
}

/// One file: parsed, substituted, with our relative paths resolved against its directory.
fn read_file(file: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
    let name = file.display();
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read configuration file {name}"))?;
    let mut documents = parse_documents(&text).map_err(|err| {
        anyhow!(
            "{name}:{}:{}: {}",
            err.position.line,
            err.position.column,
            err.message
        )
    })?;
    let value = match documents.len() {
        0 => Value::Null,
        1 => documents.remove(0).value,
        n => bail!("{name}: holds {n} YAML documents; a configuration file holds one"),
    };
    let mut value = match value {
        Value::Null => Value::Object(Map::new()),
        Value::Object(map) => Value::Object(map),
        other => bail!(
            "{name}: expected a mapping of keys at the top level, found {}",
            kind_of(&other)
        ),
    };
    substitute_env(&mut value, &mut Vec::new(), env)
        .map_err(|err| anyhow!("{name}: {}", err.describe(&[])))?;
    resolve_relative_paths(&mut value, file.parent().unwrap_or(Path::new("")));
    Ok(value)
}

/// Deserializes the merged value and checks what spans several keys.
fn parse(mut value: Value) -> Result<Config, KeyError> {
    drop_nulls(&mut value);
    if value.is_null() {
        value = Value::Object(Map::new());
    }
    let mut config: Config =
        serde_path_to_error::deserialize(value).map_err(KeyError::from_serde)?;
    check_database(&config.backend.database)?;
    check_integrations(&mut config.integrations)?;
    check_task_recovery(&config.scaffolder.task_recovery)?;
    check_workspace_store(&config.scaffolder.workspace_store)?;
    Ok(config)
}

/// Heartbeats a running task may miss before it counts as stale: fewer, and a healthy
/// task whose heartbeat is merely late is recovered and runs twice.
const MIN_MISSED_HEARTBEATS: u32 = 3;

fn check_task_recovery(recovery: &TaskRecovery) -> Result<(), KeyError> {
    let heartbeat = scaffolder_engine::HEARTBEAT_INTERVAL;
    let minimum = heartbeat * MIN_MISSED_HEARTBEATS;
    if recovery.enabled && recovery.stale_timeout < minimum {
        return Err(KeyError {
            path: key_path(&["scaffolder", "taskRecovery", "staleTimeout"]),
            message: format!(
                "{:?} is shorter than {MIN_MISSED_HEARTBEATS} heartbeats (one every {heartbeat:?}): \
                 a healthy task would be taken for a dead one and run twice; use at least {minimum:?}",
                recovery.stale_timeout
            ),
        });
    }
    Ok(())
}

/// What serde cannot see in `scaffolder.workspaceStore`: the `s3` block belongs to
/// `type: s3`, its bucket and both keys, an endpoint's scheme, limits above zero.
fn check_workspace_store(settings: &WorkspaceStoreSettings) -> Result<(), KeyError> {
    let error = |keys: &[&str], message: String| {
        let mut path = key_path(&["scaffolder", "workspaceStore"]);
        path.extend(key_path(keys));
        Err(KeyError { path, message })
    };
    if settings.max_bytes == Some(0) {
        return error(&["maxBytes"], "must be at least 1".to_owned());
    }
    if settings.max_entries == Some(0) {
        return error(&["maxEntries"], "must be at least 1".to_owned());
    }
    let s3 = match (settings.kind, &settings.s3) {
        (Some(WorkspaceStoreKind::S3), Some(s3)) => s3,
        (Some(WorkspaceStoreKind::S3), None) => {
            return error(
                &["s3"],
                "required when scaffolder.workspaceStore.type is s3: { bucket, endpoint, region, accessKeyId, secretAccessKey, prefix, allowHttp }"
                    .to_owned(),
            );
        }
        (kind, Some(_)) => {
            let kind = match kind {
                Some(WorkspaceStoreKind::Database) => "database",
                Some(WorkspaceStoreKind::Disabled) => "none",
                Some(WorkspaceStoreKind::S3) | None => "not set",
            };
            return error(
                &["s3"],
                format!(
                    "set, but scaffolder.workspaceStore.type is {kind}: set the type to s3, or remove s3"
                ),
            );
        }
        (_, None) => return Ok(()),
    };
    if s3.bucket.as_deref().is_none_or(|b| b.trim().is_empty()) {
        return error(
            &["s3", "bucket"],
            "required when scaffolder.workspaceStore.type is s3: the bucket that holds saved workspaces"
                .to_owned(),
        );
    }
    match (&s3.access_key_id, &s3.secret_access_key) {
        (Some(_), None) => {
            return error(
                &["s3", "secretAccessKey"],
                "required with accessKeyId: give both keys, or neither to use the instance's or the environment's credentials"
                    .to_owned(),
            );
        }
        (None, Some(_)) => {
            return error(
                &["s3", "accessKeyId"],
                "required with secretAccessKey: give both keys, or neither to use the instance's or the environment's credentials"
                    .to_owned(),
            );
        }
        _ => {}
    }
    if let Some(endpoint) = &s3.endpoint {
        if endpoint.starts_with("http://") && !s3.allow_http {
            return error(
                &["s3", "endpoint"],
                format!(
                    "`{endpoint}` is plain HTTP, which carries the keys' signatures and the workspaces unencrypted: use https://, or set allowHttp: true for a server on a trusted network"
                ),
            );
        }
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return error(
                &["s3", "endpoint"],
                format!("expected an https:// URL, found `{endpoint}`"),
            );
        }
    }
    Ok(())
}

/// Replaces `${VAR}` in every string value, Backstage's way: `$${...}` is a literal
/// `${...}`, `${VAR:-fallback}` uses the fallback when the variable is unset or empty,
/// and text like `${{ parameters.name }}` (no closing brace before an opening one) is left
/// alone.
fn substitute_env(
    value: &mut Value,
    path: &mut Vec<Segment>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), KeyError> {
    match value {
        Value::String(text) if text.contains("${") => {
            *text = substitute(text, env).map_err(|message| KeyError {
                path: path.clone(),
                message,
            })?;
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push(Segment::Index(index));
                substitute_env(item, path, env)?;
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                path.push(Segment::Key(key.clone()));
                substitute_env(item, path, env)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn substitute(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        let body_start = start + 2;
        let end = rest[body_start..]
            .find(['{', '}'])
            .filter(|&i| rest.as_bytes()[body_start + i] == b'}');
        let Some(end) = end.map(|i| body_start + i) else {
            // Not a reference: keep the `$` and look further.
            out.push_str(&rest[..start + 1]);
            rest = &rest[start + 1..];
            continue;
        };
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str(&rest[start..=end]);
        } else {
            out.push_str(&rest[..start]);
            out.push_str(&lookup_env(&rest[body_start..end], env)?);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup_env(body: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, fallback) = match body.split_once(":-") {
        Some((name, fallback)) => (name.trim(), Some(fallback)),
        None => (body.trim(), None),
    };
    if name.is_empty() {
        return Err(format!(
            "`${{{body}}}` names no environment variable; write `$${{{body}}}` for the literal text"
        ));
    }
    match (env(name), fallback) {
        (Some(value), Some(fallback)) if value.is_empty() => Ok(fallback.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(fallback)) => Ok(fallback.to_owned()),
        (None, None) => Err(format!("environment variable {name} is not set")),
    }
}

/// A plugin source naming a built-in plugin (`builtin:builtin-fetch`): its entry sets the
/// grants and limits of that built-in instead of loading a file.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// A plugin source in an OCI registry (`oci://host/name:tag`).
pub const OCI_PREFIX: &str = "oci://";

/// Whether a plugin source is a URL (`https://`, or `http://` on loopback), not a path.
pub fn is_url_source(source: &str) -> bool {
    source.starts_with("https://") || source.starts_with("http://")
}

/// Makes `scaffolder.plugins[].source` (except built-ins) and `scaffolder.templates[]`
/// relative to `dir`.
fn resolve_relative_paths(value: &mut Value, dir: &Path) {
    let Some(scaffolder) = value.get_mut("scaffolder") else {
        return;
    };
    let resolve = |path: &mut String| *path = dir.join(&*path).to_string_lossy().into_owned();
    if let Some(Value::Array(plugins)) = scaffolder.get_mut("plugins") {
        for plugin in plugins {
            if let Some(Value::String(source)) = plugin.get_mut("source")
                && !source.starts_with(BUILTIN_PREFIX)
                && !source.starts_with(OCI_PREFIX)
                && !is_url_source(source)
            {
                resolve(source);
            }
        }
    }
    let resolve_key = |key: &mut Value| {
        if let Value::String(key) = key
            && !key.trim_start().starts_with("-----BEGIN")
        {
            *key = dir.join(&*key).to_string_lossy().into_owned();
        }
    };
    if let Some(Value::Array(plugins)) = scaffolder.get_mut("plugins") {
        for plugin in plugins {
            if let Some(Value::Array(keys)) = plugin.get_mut("signedBy") {
                keys.iter_mut().for_each(resolve_key);
            }
        }
    }
    if let Some(Value::Array(keys)) = scaffolder
        .get_mut("pluginSignatures")
        .and_then(|s| s.get_mut("keys"))
    {
        keys.iter_mut().for_each(resolve_key);
    }
    if let Some(Value::Array(templates)) = scaffolder.get_mut("templates") {
        for template in templates {
            if let Value::String(path) = template {
                resolve(path);
            }
        }
    }
}

/// Backstage's merge: mappings merge key by key, anything else is replaced.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// A `null` (or empty) value means "not set".
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn check_database(database: &DatabaseConfig) -> Result<(), KeyError> {
    let path = || key_path(&["backend", "database", "connection"]);
    let client = database.client.name();
    let message = match (&database.connection, database.client) {
        (None, DatabaseClient::Pg) => Some(
            "required when backend.database.client is pg: a postgres:// URL or { host, port, user, password, database }"
                .to_owned(),
        ),
        (Some(DatabaseConnection::String(url)), DatabaseClient::Pg) if !is_postgres_url(url) => {
            Some("expected a postgres:// URL for client pg".to_owned())
        }
        (
            Some(
                DatabaseConnection::Memory
                | DatabaseConnection::Directory(_)
                | DatabaseConnection::Filename(_),
            ),
            DatabaseClient::Pg,
        ) => Some(
            "`:memory:`, directory and filename are SQLite settings; client pg needs a postgres:// URL or { host, port, user, password, database }"
                .to_owned(),
        ),
        (
            Some(DatabaseConnection::String(url)),
            DatabaseClient::BetterSqlite3 | DatabaseClient::Sqlite3,
        ) if is_postgres_url(url) => Some(format!(
            "a PostgreSQL URL, but backend.database.client is {client}: set the client to pg"
        )),
        (Some(DatabaseConnection::Postgres { .. }), DatabaseClient::BetterSqlite3 | DatabaseClient::Sqlite3) => {
            Some(format!(
                "host, port, user, password and database are PostgreSQL settings, but backend.database.client is {client}: set the client to pg, or give SQLite `:memory:`, a file path, {{ directory }} or {{ filename }}"
            ))
        }
        _ => None,
    };
    match message {
        Some(message) => Err(KeyError {
            path: path(),
            message,
        }),
        None => Ok(()),
    }
}

/// Fills default hosts and requires one where the kind has none.
fn check_integrations(integrations: &mut IntegrationsConfig) -> Result<(), KeyError> {
    let lists = [
        ("github", Some("github.com"), &mut integrations.github),
        ("gitlab", Some("gitlab.com"), &mut integrations.gitlab),
        ("gitea", None, &mut integrations.gitea),
        (
            "bitbucketCloud",
            Some("bitbucket.org"),
            &mut integrations.bitbucket_cloud,
        ),
        ("bitbucketServer", None, &mut integrations.bitbucket_server),
        ("azure", Some("dev.azure.com"), &mut integrations.azure),
        ("gerrit", None, &mut integrations.gerrit),
    ];
    for (key, default_host, list) in lists {
        for (index, integration) in list.iter_mut().enumerate() {
            let path = || {
                let mut path = key_path(&["integrations", key]);
                path.push(Segment::Index(index));
                path.push(Segment::Key("host".to_owned()));
                path
            };
            if integration.host.is_empty() {
                match default_host {
                    Some(host) => integration.host = host.to_owned(),
                    None => {
                        return Err(KeyError {
                            path: path(),
                            message: format!(
                                "required: the host name of the {key} server, e.g. {key}.example.com"
                            ),
                        });
                    }
                }
            }
            if integration.host.contains('/') {
                return Err(KeyError {
                    path: path(),
                    message: format!(
                        "expected a host name without scheme or path (e.g. {key}.example.com), found `{}`",
                        integration.host
                    ),
                });
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Errors

/// An error at one key; [`KeyError::describe`] adds the file that set it.
#[derive(Debug)]
struct KeyError {
    path: Vec<Segment>,
    message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn key_path(keys: &[&str]) -> Vec<Segment> {
    keys.iter().map(|k| Segment::Key((*k).to_owned())).collect()
}

impl KeyError {
    fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        use serde_path_to_error::Segment as S;
        let path = err
            .path()
            .iter()
            .map_while(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } | S::Enum { variant: key } => Some(Segment::Key(key.clone())),
                S::Unknown => None,
            })
            .collect();
        Self {
            path,
            message: err.into_inner().to_string(),
        }
    }

    /// `file: key.path: message`, naming the last of `sources` that holds the key (or its
    /// closest ancestor), since that is the file to fix.
    fn describe(&self, sources: &[(String, Value)]) -> String {
        let path = self
            .path
            .iter()
            .fold(String::new(), |parent, segment| match segment {
                Segment::Key(key) => child_key(&parent, key),
                Segment::Index(index) => child_index(&parent, *index),
            });
        let file = (0..=self.path.len()).rev().find_map(|len| {
            sources
                .iter()
                .rev()
                .find(|(_, value)| lookup(value, &self.path[..len]).is_some())
                .map(|(name, _)| name)
        });
        let mut out = String::new();
        if let Some(file) = file {
            out.push_str(file);
            out.push_str(": ");
        }
        if !path.is_empty() {
            out.push_str(&path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

fn lookup<'a>(value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, segment| match segment {
        Segment::Key(key) => value.as_object()?.get(key),
        Segment::Index(index) => value.as_array()?.get(*index),
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

// ---------------------------------------------------------------------------
// Value forms

impl DatabaseClient {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::BetterSqlite3 => "better-sqlite3",
            Self::Sqlite3 => "sqlite3",
            Self::Pg => "pg",
        }
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// RFC 3986 unreserved characters stay; everything else in a user name, password or
/// database name is percent-encoded.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn postgres_url(
    host: Option<&str>,
    port: Option<u16>,
    user: Option<&str>,
    password: Option<&str>,
    database: Option<&str>,
) -> String {
    let mut url = String::from("postgres://");
    if user.is_some() || password.is_some() {
        url.extend(utf8_percent_encode(user.unwrap_or(""), URL_COMPONENT));
        if let Some(password) = password {
            url.push(':');
            url.extend(utf8_percent_encode(password, URL_COMPONENT));
        }
        url.push('@');
    }
    let host = host.unwrap_or("localhost");
    if host.contains(':') && !host.starts_with('[') {
        url.push_str(&format!("[{host}]"));
    } else {
        url.push_str(host);
    }
    url.push_str(&format!(":{}/", port.unwrap_or(5432)));
    url.extend(utf8_percent_encode(
        database.unwrap_or(DEFAULT_POSTGRES_DATABASE),
        URL_COMPONENT,
    ));
    url
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Fields {
            host: Option<String>,
            #[serde(deserialize_with = "optional_number")]
            port: Option<u16>,
        }

        struct ListenVisitor;
        impl<'de> Visitor<'de> for ListenVisitor {
            type Value = Listen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`<port>`, `<host>:<port>` or { host, port }")
            }
            fn visit_u64<E: de::Error>(self, port: u64) -> Result<Listen, E> {
                let port = u16::try_from(port)
                    .map_err(|_| E::custom(format!("port {port} is above 65535")))?;
                Ok(Listen {
                    port,
                    ..Listen::default()
                })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Listen, E> {
                parse_listen(text).ok_or_else(|| E::invalid_value(Unexpected::Str(text), &self))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Listen, A::Error> {
                let fields = Fields::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Listen {
                    host: fields
                        .host
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| DEFAULT_HOST.to_owned()),
                    port: fields.port.unwrap_or(DEFAULT_PORT),
                })
            }
        }
        deserializer.deserialize_any(ListenVisitor)
    }
}

/// `7007`, `:7007`, `0.0.0.0:7007`, `[::1]:7007`.
fn parse_listen(text: &str) -> Option<Listen> {
    let (host, port) = match text.trim().rsplit_once(':') {
        Some((host, port)) => (host, port),
        None => ("", text.trim()),
    };
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6,
        None if host.contains(':') => return None,
        None => host,
    };
    Some(Listen {
        host: if host.is_empty() {
            DEFAULT_HOST.to_owned()
        } else {
            host.to_owned()
        },
        port: port.parse().ok()?,
    })
}

impl<'de> Deserialize<'de> for DatabaseConnection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Fields {
            directory: Option<PathBuf>,
            filename: Option<PathBuf>,
            host: Option<String>,
            #[serde(deserialize_with = "optional_number")]
            port: Option<u16>,
            user: Option<String>,
            password: Option<String>,
            database: Option<String>,
        }

        struct ConnectionVisitor;
        impl<'de> Visitor<'de> for ConnectionVisitor {
            type Value = DatabaseConnection;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "`:memory:`, a file path, a postgres:// URL, { directory }, { filename } or { host, port, user, password, database }",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<DatabaseConnection, E> {
                Ok(if text == ":memory:" {
                    DatabaseConnection::Memory
                } else {
                    DatabaseConnection::String(text.to_owned())
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DatabaseConnection, A::Error> {
                let f = Fields::deserialize(MapAccessDeserializer::new(map))?;
                let postgres = f.host.is_some()
                    || f.port.is_some()
                    || f.user.is_some()
                    || f.password.is_some()
                    || f.database.is_some();
                match (f.directory, f.filename) {
                    (Some(_), _) | (_, Some(_)) if postgres => Err(de::Error::custom(
                        "directory and filename (SQLite) cannot be mixed with host, port, user, password and database (PostgreSQL)",
                    )),
                    (Some(_), Some(_)) => Err(de::Error::custom(
                        "set either directory or filename, not both",
                    )),
                    (Some(directory), None) => Ok(DatabaseConnection::Directory(directory)),
                    (None, Some(filename)) => Ok(DatabaseConnection::Filename(filename)),
                    (None, None) => Ok(DatabaseConnection::Postgres {
                        host: f.host,
                        port: f.port,
                        user: f.user,
                        password: f.password,
                        database: f.database,
                    }),
                }
            }
        }
        deserializer.deserialize_any(ConnectionVisitor)
    }
}

/// A whole number, also written as a string (`port: ${PORT}`).
fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    struct NumberVisitor<T>(PhantomData<T>);
    impl<'de, T: TryFrom<u64>> Visitor<'de> for NumberVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            if v.fract() == 0.0 && (0.0..1e19).contains(&v) {
                self.visit_u64(v as u64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            match v.trim().parse::<u64>() {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
    }
    deserializer.deserialize_any(NumberVisitor(PhantomData))
}

fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    number(deserializer).map(Some)
}

/// A boolean, also written as a string or 0/1, as Backstage's `getBoolean` reads it.
fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct BoolVisitor;
    impl<'de> Visitor<'de> for BoolVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" | "1" => Ok(true),
                "false" | "no" | "n" | "off" | "0" => Ok(false),
                _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
    }
    deserializer.deserialize_any(BoolVisitor)
}

/// One string or a list of strings.
fn strings<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct StringsVisitor;
    impl<'de> Visitor<'de> for StringsVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
            Vec::deserialize(SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_any(StringsVisitor)
}

/// HTTP methods: a list or a comma-separated string, upper-cased.
fn methods<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(strings(deserializer)?
        .iter()
        .flat_map(|s| s.split(','))
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect())
}

/// A mapping whose values must all be strings; the error names the key, never the value.
fn string_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
    let map = Map::<String, Value>::deserialize(deserializer)?;
    if let Some((key, value)) = map.iter().find(|(_, v)| !v.is_string()) {
        return Err(de::Error::custom(format!(
            "{key} must be a string, found {}; quote it",
            kind_of(value)
        )));
    }
    Ok(map)
}

/// `scaffolder.plugins[].config`: scalars, kept as text (`port: 5432` is `"5432"`).
fn config_values<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Map::<String, Value>::deserialize(deserializer)?;
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key, text)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(de::Error::custom(format!(
                "{key} must be a string, number or boolean, found {}; write structured values as a JSON string",
                kind_of(&other)
            ))),
        })
        .collect()
}

/// A static access token: Backstage refuses short ones and ones with whitespace.
fn static_token<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let token = String::deserialize(deserializer)?;
    if token.chars().any(char::is_whitespace) {
        return Err(de::Error::custom("the token must not contain whitespace"));
    }
    if token.chars().count() < 8 {
        return Err(de::Error::custom(
            "the token must be at least 8 characters long",
        ));
    }
    Ok(token)
}

/// A task secrets key in base64; the error never repeats the value.
fn secrets_key<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SecretsKey>, D::Error> {
    let text = String::deserialize(deserializer)?;
    SecretsKey::from_base64(&text)
        .map(Some)
        .map_err(de::Error::custom)
}

/// `sha256:` followed by 64 hex digits, kept in lower case.
fn digest<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(text.to_ascii_lowercase()))
        }
        _ => Err(de::Error::custom(format!(
            "expected `sha256:` followed by 64 hex digits, found `{text}`"
        ))),
    }
}

/// A duration in any of Backstage's forms: `{ hours: 1, minutes: 30 }`, `PT1H30M`, or
/// `90m` (units ms, s, m, h, d, w and their long names).
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct HumanDuration {
        weeks: f64,
        days: f64,
        hours: f64,
        minutes: f64,
        seconds: f64,
        milliseconds: f64,
    }

    struct DurationVisitor;
    impl<'de> Visitor<'de> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as `30s`, `PT30S` or { seconds: 30 }")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Duration, A::Error> {
            let d = HumanDuration::deserialize(MapAccessDeserializer::new(map))?;
            let millis = d.weeks * WEEK
                + d.days * DAY
                + d.hours * HOUR
                + d.minutes * MINUTE
                + d.seconds * SECOND
                + d.milliseconds;
            millis_to_duration(millis).map_err(de::Error::custom)
        }
    }
    deserializer.deserialize_any(DurationVisitor)
}

const SECOND: f64 = 1_000.0;
const MINUTE: f64 = 60.0 * SECOND;
const HOUR: f64 = 60.0 * MINUTE;
const DAY: f64 = 24.0 * HOUR;
const WEEK: f64 = 7.0 * DAY;

/// `PT30S`, `P1DT2H`, `P2W`, or `30s`, `1.5h`, `500 ms`, `2 days`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let millis = if trimmed.starts_with(['P', 'p']) {
        parse_iso_duration(trimmed)
    } else {
        parse_plain_duration(trimmed)
    };
    millis
        .ok_or_else(|| {
            format!("invalid duration `{text}`: expected e.g. `30s`, `5m`, `2h`, `PT30S`, `P1D` or {{ seconds: 30 }}")
        })
        .and_then(millis_to_duration)
}

/// ISO 8601 without years and months, which have no fixed length.
fn parse_iso_duration(text: &str) -> Option<f64> {
    let body = &text[1..];
    let (date, time) = match body.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (body, None),
    };
    if time == Some("") || (date.is_empty() && time.is_none()) {
        return None;
    }
    let mut total = 0.0;
    for (part, in_time) in [(date, false), (time.unwrap_or(""), true)] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let value: f64 = number.parse().ok()?;
            number.clear();
            total += value
                * match (in_time, c.to_ascii_uppercase()) {
                    (false, 'W') => WEEK,
                    (false, 'D') => DAY,
                    (true, 'H') => HOUR,
                    (true, 'M') => MINUTE,
                    (true, 'S') => SECOND,
                    _ => return None,
                };
        }
        if !number.is_empty() {
            return None;
        }
    }
    Some(total)
}

/// A number and a unit, as the `ms` package Backstage uses reads them (a unit is required).
fn parse_plain_duration(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let value: f64 = text[..split].parse().ok()?;
    let unit = match text[split..].trim().to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => WEEK,
        _ => return None,
    };
    Some(value * unit)
}

fn millis_to_duration(millis: f64) -> Result<Duration, String> {
    if millis.is_nan() || millis < 0.0 {
        return Err("a duration cannot be negative".to_owned());
    }
    Duration::try_from_secs_f64(millis / 1000.0).map_err(|_| "the duration is too long".to_owned())
}

// ---------------------------------------------------------------------------
// Debug without secrets

/// Shows whether a secret is set, never its value.
fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integration")
            .field("host", &self.host)
            .field("api_base_url", &self.api_base_url)
            .field("token", &redacted(&self.token))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl fmt::Debug for ExternalAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static { subject, .. } => f
                .debug_struct("Static")
                .field("token", &"<redacted>")
                .field("subject", subject)
                .finish(),
            Self::Jwks {
                url,
                issuer,
                algorithms,
                audience,
                subject_prefix,
            } => f
                .debug_struct("Jwks")
                .field("url", url)
                .field("issuer", issuer)
                .field("algorithms", algorithms)
                .field("audience", audience)
                .field("subject_prefix", subject_prefix)
                .finish(),
        }
    }
}

impl fmt::Debug for DatabaseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            // A URL may carry a password between `://` and `@`.
            Self::String(text) => match (text.find("://"), text.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let shown = format!("{}<redacted>{}", &text[..scheme + 3], &text[at..]);
                    f.debug_tuple("String").field(&shown).finish()
                }
                _ => f.debug_tuple("String").field(text).finish(),
            },
            Self::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
            Self::Filename(file) => f.debug_tuple("Filename").field(file).finish(),
            Self::Postgres {
                host,
                port,
                user,
                password,
                database,
            } => f
                .debug_struct("Postgres")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .field("password", &redacted(password))
                .field("database", database)
                .finish(),
        }
    }
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogConfig")
            .field("token", &redacted(&self.token))
            .finish()
    }
}

impl fmt::Debug for DefaultEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets: BTreeMap<&str, &str> = self
            .secrets
            .keys()
            .map(|k| (k.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("DefaultEnvironment")
            .field("parameters", &self.parameters)
            .field("secrets", &secrets)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use scaffolder_engine::workspace_store::{DEFAULT_S3_MAX_BYTES, WorkspaceBackend};
    use serde_json::json;

    use super::*;

    /// Writes `files` (name, YAML) into a temporary directory and loads them in order
    /// with `env` as the environment.
    fn load_files(files: &[(&str, &str)], env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, yaml)| {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, yaml).unwrap();
                path
            })
            .collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load_with_env(&paths, &|name| env.get(name).cloned())
    }

    fn error(value: Value) -> String {
        format!("{:#}", from_value(value).unwrap_err())
    }

    #[test]
    fn defaults_when_no_files() {
        let config = load(&[]).unwrap();
        assert_eq!(config.backend.listen, Listen::default());
        assert_eq!(config.backend.listen.host, "127.0.0.1");
        assert_eq!(config.backend.listen.port, 7007);
        assert_eq!(config.backend.base_url, None);
        assert_eq!(
            config.backend.database.client,
            DatabaseClient::BetterSqlite3
        );
        assert_eq!(
            config.backend.database.database_url(Path::new("/data")),
            "sqlite:///data/scaffolder.sqlite"
        );
        assert!(config.backend.cors.is_none());
        assert!(config.backend.auth.external_access.is_empty());
        assert!(!config.backend.auth.dangerously_disable_default_auth_policy);
        let s = &config.scaffolder;
        assert_eq!(s.concurrent_tasks_limit, 10);
        assert!(s.task_recovery.enabled);
        assert_eq!(s.task_recovery.stale_timeout, Duration::from_secs(30));
        assert_eq!(s.task_timeout, Duration::from_secs(86_400));
        assert_eq!(s.graceful_shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.workspace_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(s.dry_run.max_files, 10_000);
        assert_eq!(s.dry_run.max_bytes, 64 << 20);
        assert!(s.plugins.is_empty() && s.templates.is_empty());
        assert_eq!(
            config.integrations.scm_integrations(),
            ScmIntegration::defaults()
        );
        // An empty object and an empty file mean the same.
        assert_eq!(
            from_value(json!({})).unwrap().backend.listen,
            Listen::default()
        );
        assert!(load_files(&[("empty.yaml", "")], &[]).is_ok());
    }

    #[test]
    fn env_substitution_when_variables_are_set_escaped_or_defaulted() {
        let yaml = r#"
backend:
  baseUrl: http://${HOST}:${ PORT }/api
  listen:
    port: ${PORT}
scaffolder:
  defaultEnvironment:
    parameters:
      escaped: "$${HOST} and $$${HOST}"
      template: "${{ parameters.name }}"
      fallback: ${MISSING:-dev}
      emptyFallback: ${EMPTY:-x}
      empty: "${EMPTY}"
      list: ["${HOST}"]
"#;
        let config = load_files(
            &[("app-config.yaml", yaml)],
            &[("HOST", "example.com"), ("PORT", "8080"), ("EMPTY", "")],
        )
        .unwrap();
        assert_eq!(
            config.backend.base_url.as_deref(),
            Some("http://example.com:8080/api")
        );
        assert_eq!(config.backend.listen.port, 8080);
        assert_eq!(
            Value::Object(config.scaffolder.default_environment.parameters),
            json!({
                "escaped": "${HOST} and $${HOST}",
                "template": "${{ parameters.name }}",
                "fallback": "dev",
                "emptyFallback": "x",
                "empty": "",
                "list": ["example.com"],
            })
        );
    }

    #[test]
    fn env_substitution_error_when_variable_is_missing() {
        let yaml = "backend:\n  database:\n    client: pg\n    connection: ${DATABASE_URL}\n";
        let err = format!(
            "{:#}",
            load_files(&[("app-config.yaml", yaml)], &[]).unwrap_err()
        );
        assert!(
            err.ends_with(
                "app-config.yaml: backend.database.connection: environment variable DATABASE_URL is not set"
            ),
            "{err}"
        );
    }

    #[test]
    fn later_files_win_when_merging() {
        let base = r#"
backend:
  listen: { host: 0.0.0.0, port: 7007 }
  baseUrl: http://base
scaffolder:
  templates: [a, b]
  defaultAuthor: { name: Scaffolder }
"#;
        let local = r#"
backend:
  listen: { port: 8000 }
  baseUrl: ~
scaffolder:
  templates: [c]
  defaultAuthor: { email: s@example.com }
"#;
        let config = load_files(&[("base.yaml", base), ("local.yaml", local)], &[]).unwrap();
        assert_eq!(
            config.backend.listen,
            Listen {
                host: "0.0.0.0".into(),
                port: 8000
            }
        );
        // `null` unsets what an earlier file set.
        assert_eq!(config.backend.base_url, None);
        // Lists are replaced, not concatenated.
        assert_eq!(config.scaffolder.templates.len(), 1);
        assert!(config.scaffolder.templates[0].ends_with("c"));
        assert_eq!(
            config.scaffolder.default_author,
            DefaultAuthor {
                name: Some("Scaffolder".into()),
                email: Some("s@example.com".into())
            }
        );
    }

    #[test]
    fn database_url_for_each_connection_form() {
        let data = Path::new("/var/lib/scaffolder");
        let cases = [
            (json!({}), "sqlite:///var/lib/scaffolder/scaffolder.sqlite"),
            (
                json!({"client": "sqlite3"}),
                "sqlite:///var/lib/scaffolder/scaffolder.sqlite",
            ),
            (json!({"connection": ":memory:"}), "sqlite::memory:"),
            (
                json!({"connection": "/tmp/db.sqlite"}),
                "sqlite:///tmp/db.sqlite",
            ),
            (
                json!({"client": "better-sqlite3", "connection": {"directory": "/srv/db"}}),
                "sqlite:///srv/db/scaffolder.sqlite",
            ),
            (
                json!({"connection": {"filename": "rel/x.db"}}),
                "sqlite://rel/x.db",
            ),
            (
                json!({"client": "pg", "connection": "postgresql://u:p@db:5433/x"}),
                "postgresql://u:p@db:5433/x",
            ),
            (
                json!({"client": "pg", "connection": {"host": "db", "port": "5433", "user": "back stage", "password": "p@ss:w/rd", "database": "scaf"}}),
                "postgres://back%20stage:p%40ss%3Aw%2Frd@db:5433/scaf",
            ),
            (
                json!({"client": "pg", "connection": {"host": "db", "user": "postgres"}}),
                "postgres://postgres@db:5432/backstage_plugin_scaffolder",
            ),
            (
                json!({"client": "pg", "connection": {"host": "::1", "port": 5432}}),
                "postgres://[::1]:5432/backstage_plugin_scaffolder",
            ),
        ];
        for (database, url) in cases {
            let config = from_value(json!({"backend": {"database": database.clone()}}))
                .unwrap_or_else(|e| panic!("{database}: {e:#}"));
            assert_eq!(
                config.backend.database.database_url(data),
                url,
                "{database}"
            );
        }
    }

    #[test]
    fn database_error_when_connection_does_not_fit_the_client() {
        let cases = [
            (
                json!({"client": "pg"}),
                "required when backend.database.client is pg",
            ),
            (
                json!({"client": "pg", "connection": ":memory:"}),
                "SQLite settings",
            ),
            (
                json!({"client": "pg", "connection": "db.sqlite"}),
                "expected a postgres:// URL",
            ),
            (
                json!({"connection": "postgres://db/x"}),
                "set the client to pg",
            ),
            (json!({"connection": {"host": "db"}}), "PostgreSQL settings"),
            (
                json!({"connection": {"directory": "a", "filename": "b"}}),
                "not both",
            ),
            (json!({"client": "mysql"}), "unknown variant `mysql`"),
        ];
        for (database, expected) in cases {
            let err = error(json!({"backend": {"database": database.clone()}}));
            assert!(err.contains("backend.database."), "{database}: {err}");
            assert!(err.contains(expected), "{database}: {err}");
        }
    }

    #[test]
    fn listen_accepts_string_forms() {
        let cases = [
            (json!(":7008"), "127.0.0.1", 7008),
            (json!("0.0.0.0:8080"), "0.0.0.0", 8080),
            (json!("9000"), "127.0.0.1", 9000),
            (json!("[::]:7007"), "::", 7007),
            (json!({"port": "7100"}), "127.0.0.1", 7100),
            (json!({"host": "::1"}), "::1", 7007),
        ];
        for (listen, host, port) in cases {
            let config = from_value(json!({"backend": {"listen": listen}})).unwrap();
            assert_eq!(
                config.backend.listen,
                Listen {
                    host: host.into(),
                    port
                },
                "{listen}"
            );
        }
        let err = error(json!({"backend": {"listen": "a:b:c"}}));
        assert!(err.starts_with("backend.listen: "), "{err}");
        assert!(err.contains("<host>:<port>"), "{err}");
        let err = error(json!({"backend": {"listen": {"port": 70000}}}));
        assert!(err.starts_with("backend.listen.port: "), "{err}");
    }

    #[test]
    fn server_timeouts_default_to_node_and_accept_durations() {
        let server = from_value(json!({})).unwrap().backend.server;
        assert_eq!(server.headers_timeout, Duration::from_secs(60));
        assert_eq!(server.request_timeout, Duration::from_secs(300));
        assert_eq!(server.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(server.max_connections, None);
        let server = from_value(json!({"backend": {"server": {
            "headersTimeout": {"seconds": 2},
            "requestTimeout": "PT3S",
            "keepAliveTimeout": "1500ms",
            "maxConnections": 10,
        }}}))
        .unwrap()
        .backend
        .server;
        assert_eq!(server.headers_timeout, Duration::from_secs(2));
        assert_eq!(server.request_timeout, Duration::from_secs(3));
        assert_eq!(server.keep_alive_timeout, Duration::from_millis(1500));
        assert_eq!(server.max_connections, Some(10));
        let err = error(json!({"backend": {"server": {"keepAliveTimeout": 5}}}));
        assert!(
            err.starts_with("backend.server.keepAliveTimeout: "),
            "{err}"
        );
    }

    #[test]
    fn durations_in_all_three_forms() {
        let cases = [
            (json!({"minutes": 1, "seconds": 30}), 90_000),
            (json!({"hours": 1, "milliseconds": 5}), 3_600_005),
            (json!({"days": 1}), 86_400_000),
            (json!("PT30S"), 30_000),
            (json!("PT1H30M"), 5_400_000),
            (json!("P1D"), 86_400_000),
            (json!("P1DT0.5S"), 86_400_500),
            (json!("30s"), 30_000),
            (json!("500ms"), 500),
            (json!("5m"), 300_000),
            (json!("2h"), 7_200_000),
            (json!("1.5 hours"), 5_400_000),
        ];
        for (value, millis) in cases {
            let config = from_value(json!({"scaffolder": {"taskTimeout": value}})).unwrap();
            assert_eq!(
                config.scaffolder.task_timeout,
                Duration::from_millis(millis),
                "{value}"
            );
        }
        for bad in [
            json!("30"),
            json!("P1M"),
            json!("PT"),
            json!("soon"),
            json!(30),
        ] {
            let err = error(json!({"scaffolder": {"taskRecovery": {"staleTimeout": bad}}}));
            assert!(
                err.starts_with("scaffolder.taskRecovery.staleTimeout: "),
                "{bad}: {err}"
            );
            assert!(err.contains("30s"), "{bad}: {err}");
        }
        let err = error(json!({"scaffolder": {"taskTimeout": {"years": 1}}}));
        assert!(err.contains("unknown field `years`"), "{err}");
    }

    #[test]
    fn a_stale_timeout_must_span_three_heartbeats() {
        let err = error(json!({"scaffolder": {"taskRecovery": {"staleTimeout": "2s"}}}));
        assert_eq!(
            err,
            "scaffolder.taskRecovery.staleTimeout: 2s is shorter than 3 heartbeats (one every 1s): \
             a healthy task would be taken for a dead one and run twice; use at least 3s"
        );
        let config =
            from_value(json!({"scaffolder": {"taskRecovery": {"staleTimeout": "3s"}}})).unwrap();
        assert_eq!(
            config.scaffolder.task_recovery.stale_timeout,
            Duration::from_secs(3)
        );
        // Without recovery the timeout is never used.
        from_value(
            json!({"scaffolder": {"taskRecovery": {"enabled": false, "staleTimeout": "1s"}}}),
        )
        .unwrap();
    }

    #[test]
    fn dry_run_caps_and_workspace_retention_are_read() {
        let config = from_value(json!({"scaffolder": {
            "workspaceRetention": "P2D",
            "dryRun": {"maxFiles": 50, "maxBytes": "1048576"},
        }}))
        .unwrap();
        let s = &config.scaffolder;
        assert_eq!(s.workspace_retention, Duration::from_secs(2 * 86_400));
        assert_eq!(
            s.dry_run.limits(),
            DryRunLimits {
                max_files: 50,
                max_bytes: 1 << 20
            }
        );
        let err = error(json!({"scaffolder": {"dryRun": {"maxBytes": "64MiB"}}}));
        assert!(
            err.starts_with("scaffolder.dryRun.maxBytes: ") && err.contains("a whole number"),
            "{err}"
        );
        let err = error(json!({"scaffolder": {"dryRun": {"maxFile": 1}}}));
        assert!(err.contains("unknown field `maxFile`"), "{err}");
    }

    #[test]
    fn external_access_is_parsed() {
        let config = from_value(json!({"backend": {"auth": {
            "dangerouslyDisableDefaultAuthPolicy": "true",
            "externalAccess": [
                {"type": "static", "options": {"token": "abcdefgh", "subject": "ci"}, "accessRestrictions": []},
                {"type": "jwks", "options": {"url": "https://idp/jwks", "algorithm": "RS256", "audience": ["a", "b"], "subjectPrefix": "idp:"}},
            ]
        }}}))
        .unwrap();
        let auth = &config.backend.auth;
        assert!(auth.dangerously_disable_default_auth_policy);
        assert_eq!(
            auth.external_access,
            [
                ExternalAccess::Static {
                    token: "abcdefgh".into(),
                    subject: "ci".into()
                },
                ExternalAccess::Jwks {
                    url: "https://idp/jwks".into(),
                    issuer: None,
                    algorithms: vec!["RS256".into()],
                    audience: vec!["a".into(), "b".into()],
                    subject_prefix: Some("idp:".into()),
                }
            ]
        );
    }

    #[test]
    fn static_token_error_when_too_short_or_spaced() {
        for (token, expected) in [
            ("short", "at least 8 characters"),
            ("has a space", "whitespace"),
        ] {
            let err = error(json!({"backend": {"auth": {"externalAccess": [
                {"type": "static", "options": {"token": token, "subject": "ci"}}
            ]}}}));
            assert!(
                err.starts_with("backend.auth.externalAccess[0].options.token: "),
                "{err}"
            );
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains(token), "the token leaked: {err}");
        }
        let err = error(json!({"backend": {"auth": {"externalAccess": [
            {"type": "legacy", "options": {"secret": "x"}}
        ]}}}));
        assert!(err.contains("externalAccess[0]"), "{err}");
        assert!(err.contains("expected `static` or `jwks`"), "{err}");
    }

    #[test]
    fn wrong_type_error_names_the_file_and_key_path() {
        let err = error(json!({"backend": {"listen": {"port": "abc"}}}));
        assert!(err.starts_with("backend.listen.port: "), "{err}");
        assert!(err.contains("expected a whole number"), "{err}");

        let err = error(json!({"backend": {"cors": {"credentials": "maybe"}}}));
        assert!(err.starts_with("backend.cors.credentials: "), "{err}");

        // The file named is the one that set the key.
        let base = "scaffolder:\n  concurrentTasksLimit: 4\n";
        let local = "scaffolder:\n  concurrentTasksLimit: [1]\nbackend: {}\n";
        let err = format!(
            "{:#}",
            load_files(&[("base.yaml", base), ("local.yaml", local)], &[]).unwrap_err()
        );
        assert!(
            err.contains("local.yaml: scaffolder.concurrentTasksLimit: invalid type: sequence, expected a whole number"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            load_files(
                &[
                    ("base.yaml", "backend:\n  baseUrl: 3\n"),
                    ("local.yaml", local)
                ],
                &[]
            )
            .unwrap_err()
        );
        assert!(err.contains("base.yaml: backend.baseUrl: "), "{err}");
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let config = from_value(json!({
            "app": {"title": "x"},
            "catalog": {"locations": []},
            "backend": {"reading": {"allow": []}, "listen": {"port": 1234}},
            "scaffolder": {"EXPERIMENTAL_recoverTasks": true},
        }))
        .unwrap();
        assert_eq!(config.backend.listen.port, 1234);
    }

    #[test]
    fn cors_forms() {
        let config = from_value(json!({"backend": {"cors": {
            "origin": "http://localhost:3000", "methods": "get, post", "credentials": true
        }}}))
        .unwrap();
        assert_eq!(
            config.backend.cors,
            Some(Cors {
                origins: vec!["http://localhost:3000".into()],
                methods: vec!["GET".into(), "POST".into()],
                credentials: true,
            })
        );
        let config =
            from_value(json!({"backend": {"cors": {"origin": ["*", "https://b"]}}})).unwrap();
        let cors = config.backend.cors.unwrap();
        assert_eq!(cors.origins, ["*", "https://b"]);
        assert_eq!(cors.methods, Cors::default().methods);
    }

    #[test]
    fn integrations_become_scm_integrations() {
        let config = from_value(json!({"integrations": {
            "github": [{"host": "github.com", "token": "ghp_secret"}, {"host": "ghe.example.com", "apiBaseUrl": "https://ghe.example.com/api/v3"}],
            "gitea": [{"host": "gitea.example.com", "password": "pw"}],
            "bitbucketCloud": [{"username": "u"}],
        }}))
        .unwrap();
        let hosts: Vec<(String, ScmKind)> = config
            .integrations
            .scm_integrations()
            .into_iter()
            .map(|i| (i.host, i.kind))
            .collect();
        assert_eq!(
            hosts,
            [
                ("github.com".into(), ScmKind::Github),
                ("ghe.example.com".into(), ScmKind::Github),
                ("gitea.example.com".into(), ScmKind::Gitea),
                ("bitbucket.org".into(), ScmKind::BitbucketCloud),
                ("gitlab.com".into(), ScmKind::Gitlab),
                ("dev.azure.com".into(), ScmKind::Azure),
            ]
        );
        let (kind, github) = config.integrations.find("GitHub.com").unwrap();
        assert_eq!(kind, ScmKind::Github);
        assert_eq!(github.token.as_deref(), Some("ghp_secret"));
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("ghp_secret") && !debug.contains("\"pw\""),
            "{debug}"
        );

        let err = error(json!({"integrations": {"gitea": [{"token": "t"}]}}));
        assert!(
            err.starts_with("integrations.gitea[0].host: required"),
            "{err}"
        );
        let err = error(json!({"integrations": {"github": [{"host": "https://github.com"}]}}));
        assert!(err.contains("without scheme"), "{err}");
    }

    #[test]
    fn plugin_config_values_are_scalars() {
        let err = error(json!({"scaffolder": {"plugins": [
            {"source": "a.wasm", "config": {"hosts": ["a", "b"]}}
        ]}}));
        assert!(
            err.contains("hosts must be a string, number or boolean, found a list"),
            "{err}"
        );
    }

    #[test]
    fn plugin_source_resolves_against_the_config_file() {
        let yaml = r#"
scaffolder:
  plugins:
    - source: plugins/fetch_template.wasm
      digest: sha256:0123456789abcdef0123456789abcdef0123456789ABCDEF0123456789abcdef
      grants:
        outboundHttp: ["https://api.github.com"]
        secrets: [GITHUB_TOKEN]
      limits: { memoryMib: 64, timeoutSecs: 30 }
      config: { region: eu-west-1, port: 5432, backend.baseUrl: "http://override" }
    - source: /abs/other.wasm
  templates: [templates]
"#;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("conf/app-config.yaml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, yaml).unwrap();
        let config = load_with_env(&[file], &|_| None).unwrap();
        let plugins = &config.scaffolder.plugins;
        assert_eq!(
            plugins[0].source,
            dir.path().join("conf/plugins/fetch_template.wasm")
        );
        assert_eq!(
            plugins[0].digest.as_deref(),
            Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
        assert_eq!(plugins[0].grants.secrets, ["GITHUB_TOKEN"]);
        let settings = BTreeMap::from([
            ("backend.baseUrl".to_owned(), "http://server".to_owned()),
            (
                "backstage.baseUrl".to_owned(),
                "http://backstage".to_owned(),
            ),
        ]);
        let runtime = plugins[0].plugin_config(&settings);
        assert_eq!(
            runtime.config,
            BTreeMap::from([
                ("backend.baseUrl".to_owned(), "http://override".to_owned()),
                (
                    "backstage.baseUrl".to_owned(),
                    "http://backstage".to_owned()
                ),
                ("port".to_owned(), "5432".to_owned()),
                ("region".to_owned(), "eu-west-1".to_owned()),
            ])
        );
        assert_eq!(runtime.limits.memory_mib, 64);
        assert_eq!(runtime.limits.timeout_secs, 30);
        assert_eq!(
            runtime.limits.max_log_bytes,
            Limits::default().max_log_bytes
        );
        assert_eq!(plugins[1].source, Path::new("/abs/other.wasm"));
        assert_eq!(plugins[1].grants, Grants::default());
        assert_eq!(
            config.scaffolder.templates,
            [dir.path().join("conf/templates")]
        );
    }

    #[test]
    fn plugin_entry_errors_name_the_key() {
        let err =
            error(json!({"scaffolder": {"plugins": [{"source": "a.wasm", "digest": "md5:x"}]}}));
        assert!(err.starts_with("scaffolder.plugins[0].digest: "), "{err}");
        let err = error(json!({"scaffolder": {"plugins": [{"source": "a.wasm", "grant": {}}]}}));
        assert!(err.starts_with("scaffolder.plugins[0]"), "{err}");
        assert!(err.contains("unknown field `grant`"), "{err}");
        let err = error(
            json!({"scaffolder": {"plugins": [{"source": "a.wasm", "grants": {"outboundHTTP": []}}]}}),
        );
        assert!(err.starts_with("scaffolder.plugins[0].grants"), "{err}");
        let err = error(json!({"scaffolder": {"plugins": [{"digest": null}]}}));
        assert!(err.contains("missing field `source`"), "{err}");
    }

    #[test]
    fn secrets_error_when_not_strings() {
        let config = from_value(json!({"scaffolder": {"defaultEnvironment": {
            "parameters": {"region": "eu", "replicas": 3},
            "secrets": {"TOKEN": "s3cr3t-value"},
        }}}))
        .unwrap();
        let env = &config.scaffolder.default_environment;
        assert_eq!(env.parameters["replicas"], json!(3));
        assert_eq!(env.secrets["TOKEN"], json!("s3cr3t-value"));
        assert!(!format!("{config:?}").contains("s3cr3t-value"));

        let err = error(json!({"scaffolder": {"defaultEnvironment": {
            "secrets": {"TOKEN": "ok", "PIN": 12345678}
        }}}));
        assert!(
            err.starts_with(
                "scaffolder.defaultEnvironment.secrets: PIN must be a string, found a number"
            ),
            "{err}"
        );
        assert!(!err.contains("12345678"), "{err}");
    }

    #[test]
    fn task_secrets_key_is_32_bytes_of_base64() {
        let key = "0000000000000000000000000000000000000000000=";
        assert_eq!(
            from_value(json!({}))
                .unwrap()
                .scaffolder
                .task_secrets
                .key
                .map(|k| k.to_base64()),
            None
        );
        let config = from_value(json!({"scaffolder": {"taskSecrets": {"key": key}}})).unwrap();
        let parsed = config.scaffolder.task_secrets.key.as_ref().unwrap();
        assert_eq!(parsed.to_base64(), key);
        assert!(!format!("{config:?}").contains(key), "never printed");

        let err = error(json!({"scaffolder": {"taskSecrets": {"key": "c2hvcnQ="}}}));
        assert!(
            err.starts_with(
                "scaffolder.taskSecrets.key: invalid task secrets key: expected 32 bytes"
            ) && err.contains("openssl rand -base64 32"),
            "{err}"
        );
        let err = error(json!({"scaffolder": {"taskSecrets": {"Key": key}}}));
        assert!(err.contains("unknown field `Key`"), "{err}");
    }

    #[test]
    fn workspace_store_defaults_to_the_database_on_postgres_and_none_on_sqlite() {
        let settings = from_value(json!({})).unwrap().scaffolder.workspace_store;
        assert_eq!(
            settings.resolve(Backend::Postgres),
            Some(WorkspaceStoreConfig::database())
        );
        assert_eq!(settings.resolve(Backend::Sqlite), None);

        // An explicit type wins over the database's default, and limits apply to it.
        let settings = from_value(json!({"scaffolder": {"workspaceStore": {
            "type": "database", "maxBytes": "1073741824", "maxEntries": 500,
        }}}))
        .unwrap()
        .scaffolder
        .workspace_store;
        let config = settings.resolve(Backend::Sqlite).unwrap();
        assert_eq!(
            (config.backend, config.max_bytes, config.max_entries),
            (WorkspaceBackend::Database, 1 << 30, 500)
        );
        let settings = from_value(json!({"scaffolder": {"workspaceStore": {"type": "none"}}}))
            .unwrap()
            .scaffolder
            .workspace_store;
        assert_eq!(settings.resolve(Backend::Postgres), None);
    }

    #[test]
    fn workspace_store_in_s3_is_read_and_its_secret_never_printed() {
        let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
        let config = from_value(json!({"scaffolder": {"workspaceStore": {
            "type": "s3",
            "s3": {
                "bucket": "scaffolder-workspaces",
                "endpoint": "http://127.0.0.1:9000",
                "region": "eu-west-1",
                "accessKeyId": "AKIAEXAMPLE",
                "secretAccessKey": secret,
                "prefix": "prod",
                "allowHttp": "true",
            },
        }}}))
        .unwrap();
        let store = config
            .scaffolder
            .workspace_store
            .resolve(Backend::Postgres)
            .unwrap();
        assert_eq!(
            store,
            WorkspaceStoreConfig::s3(S3Config {
                bucket: "scaffolder-workspaces".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
                access_key_id: Some("AKIAEXAMPLE".into()),
                secret_access_key: Some(secret.into()),
                prefix: "prod".into(),
                allow_http: true,
            })
        );
        assert_eq!(store.max_bytes, DEFAULT_S3_MAX_BYTES);
        for debug in [format!("{config:?}"), format!("{store:?}")] {
            assert!(!debug.contains(secret), "{debug}");
            assert!(debug.contains("scaffolder-workspaces"), "{debug}");
        }
    }

    #[test]
    fn workspace_store_errors_name_the_key() {
        let cases = [
            (
                json!({"type": "disk"}),
                "scaffolder.workspaceStore.type: unknown variant `disk`, expected one of `database`, `s3`, `none`",
            ),
            (
                json!({"type": "s3"}),
                "scaffolder.workspaceStore.s3: required when scaffolder.workspaceStore.type is s3",
            ),
            (
                json!({"type": "s3", "s3": {"region": "eu-west-1"}}),
                "scaffolder.workspaceStore.s3.bucket: required when scaffolder.workspaceStore.type is s3",
            ),
            (
                json!({"s3": {"bucket": "b"}}),
                "scaffolder.workspaceStore.s3: set, but scaffolder.workspaceStore.type is not set",
            ),
            (
                json!({"type": "database", "s3": {"bucket": "b"}}),
                "scaffolder.workspaceStore.s3: set, but scaffolder.workspaceStore.type is database",
            ),
            (
                json!({"type": "s3", "s3": {"bucket": "b", "accessKeyId": "AKIAEXAMPLE"}}),
                "scaffolder.workspaceStore.s3.secretAccessKey: required with accessKeyId",
            ),
            (
                json!({"type": "s3", "s3": {"bucket": "b", "secretAccessKey": "hidden-secret"}}),
                "scaffolder.workspaceStore.s3.accessKeyId: required with secretAccessKey",
            ),
            (
                json!({"type": "s3", "s3": {"bucket": "b", "endpoint": "http://minio:9000"}}),
                "scaffolder.workspaceStore.s3.endpoint: `http://minio:9000` is plain HTTP",
            ),
            (
                json!({"type": "s3", "s3": {"bucket": "b", "endpoint": "minio:9000"}}),
                "scaffolder.workspaceStore.s3.endpoint: expected an https:// URL",
            ),
            (
                json!({"type": "s3", "s3": {"bucket": "b", "secretAccesKey": "hidden-secret"}}),
                "scaffolder.workspaceStore.s3.secretAccesKey: unknown field `secretAccesKey`",
            ),
            (
                json!({"maxBytes": "256MiB"}),
                "scaffolder.workspaceStore.maxBytes: invalid value: string \"256MiB\", expected a whole number",
            ),
            (
                json!({"maxBytes": 0}),
                "scaffolder.workspaceStore.maxBytes: must be at least 1",
            ),
            (
                json!({"maxEntries": 0}),
                "scaffolder.workspaceStore.maxEntries: must be at least 1",
            ),
            (
                json!({"maxEntry": 10}),
                "scaffolder.workspaceStore.maxEntry: unknown field `maxEntry`",
            ),
        ];
        for (store, expected) in cases {
            let err = error(json!({"scaffolder": {"workspaceStore": store}}));
            assert!(err.starts_with(expected), "{store}: {err}");
            assert!(!err.contains("hidden-secret"), "{err}");
        }
    }

    #[test]
    fn actions_registry_has_safe_defaults_and_rejects_unknown_keys() {
        let config = from_value(json!({"scaffolder": {"actionsRegistry": {}}})).unwrap();
        assert_eq!(
            config.scaffolder.actions_registry,
            Some(ActionsRegistryConfig {
                plugin_id: "wasm-actions".into(),
                allowed_callers: vec!["scaffolder".into()],
                actions: Vec::new(),
            })
        );
        assert_eq!(load(&[]).unwrap().scaffolder.actions_registry, None);
        let err = error(json!({"scaffolder": {"actionsRegistry": {"callers": ["x"]}}}));
        assert!(
            err.starts_with("scaffolder.actionsRegistry.callers: unknown field `callers`"),
            "{err}"
        );
    }

    #[test]
    fn yaml_errors_name_the_file_and_line() {
        let err = format!(
            "{:#}",
            load_files(&[("bad.yaml", "a: [1, 2\nb: 3\n")], &[]).unwrap_err()
        );
        assert!(err.contains("bad.yaml:"), "{err}");
        let err = format!(
            "{:#}",
            load_files(&[("list.yaml", "- 1\n")], &[]).unwrap_err()
        );
        assert!(err.contains("list.yaml: expected a mapping"), "{err}");
    }
}
