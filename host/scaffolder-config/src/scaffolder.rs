//! `scaffolder.*`: Backstage's scaffolder settings plus ours (plugins, templates, workspace
//! store, dry-run caps, task recovery and secrets), with the checks that span several keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use scaffolder_engine::DryRunLimits;
use scaffolder_engine::workspace_store::{S3Config, WorkspaceStoreConfig};
use scaffolder_plugins::{PluginSource, PluginSpec};
use scaffolder_runtime::{Grants, Limits, PluginConfig};
use scaffolder_store::{Backend, SecretsKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::lenient::{
    boolean, config_values, digest, duration, number, optional_number, secrets_key, string_map,
};
use crate::parse::{KeyError, key_path};

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
    pub source: PluginSource,
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
    /// What loading this entry takes: `settings` (the server's values for every plugin)
    /// under the entry's own `config`, and the entry's signature keys, else `global_keys`
    /// (`scaffolder.pluginSignatures.keys`).
    pub fn spec(&self, settings: &BTreeMap<String, String>, global_keys: &[String]) -> PluginSpec {
        let mut config = settings.clone();
        config.extend(self.config.clone());
        let signed_by = if self.signed_by.is_empty() {
            global_keys
        } else {
            &self.signed_by
        };
        PluginSpec {
            source: self.source.clone(),
            digest: self.digest.clone(),
            insecure: self.insecure,
            signed_by: signed_by.to_vec(),
            config: PluginConfig {
                grants: self.grants.clone(),
                limits: self.limits.clone(),
                config,
            },
        }
    }
}

/// Heartbeats a running task may miss before it counts as stale: fewer, and a healthy
/// task whose heartbeat is merely late is recovered and runs twice.
const MIN_MISSED_HEARTBEATS: u32 = 3;

pub(crate) fn check_task_recovery(recovery: &TaskRecovery) -> Result<(), KeyError> {
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
pub(crate) fn check_workspace_store(settings: &WorkspaceStoreSettings) -> Result<(), KeyError> {
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
