//! What `serve` and the local commands (`dry-run`, `plugin new`) share: the data
//! directory, the plugins a configuration loads, and the engine settings it gives, so a
//! local run gets exactly the actions and grants a server would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use scaffolder_builtins::BACKSTAGE_BASE_URL;
use scaffolder_engine::{EngineConfig, Environment, PluginOrigin};
use scaffolder_runtime::{Plugin, PluginConfig, Runtime, RuntimeConfig};

use crate::signing::TrustedKey;
use crate::{download, oci, plugin_build};
use scaffolder_config::{BUILTIN_PREFIX, Config, OCI_PREFIX, is_url_source};

/// `--data-dir`, else `scaffolder.dataDirectory`, else the XDG data directory; created
/// readable by its owner only (0700), since it holds the task database and workspaces.
pub fn data_dir(flag: Option<&Path>, config: &Config) -> anyhow::Result<PathBuf> {
    let data_dir = flag
        .map(Path::to_path_buf)
        .or_else(|| config.scaffolder.data_directory.clone())
        .unwrap_or_else(default_data_dir);
    create_private_dir(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    Ok(data_dir)
}

/// Where task workspaces are created: `backend.workingDirectory`, else `workspaces/` in
/// the data directory; private to the server's user (0700).
pub fn working_directory(config: &Config, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let (dir, created) = match &config.backend.working_directory {
        Some(dir) => (dir.clone(), create_private_dir(dir)),
        None => {
            let dir = data_dir.join("workspaces");
            let created = private_subdir(&dir);
            (dir, created)
        }
    };
    created.with_context(|| {
        format!(
            "backend.workingDirectory {} must exist and be writable",
            dir.display()
        )
    })?;
    Ok(dir)
}

/// Creates `dir` and its missing parents 0700. An existing directory keeps its mode, since
/// the operator chose it (it may be shared, like /tmp); a warning says when others can
/// read it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mode = create_0700(dir)?;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} is open to other users (mode {mode:o}); `chmod 700` it so that only the \
             server's user can read what the server keeps there",
            dir.display()
        );
    }
    Ok(())
}

/// Creates a directory of the server's own inside the data directory 0700, and narrows an
/// existing one to that (older versions created them 0755).
pub fn private_subdir(dir: &Path) -> std::io::Result<()> {
    let mode = create_0700(dir)?;
    #[cfg(unix)]
    if mode & 0o077 != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

/// Creates `dir` and its missing parents 0700 (where modes exist); its mode afterwards.
fn create_0700(dir: &Path) -> std::io::Result<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(std::fs::metadata(dir)?.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)?;
        Ok(0o700)
    }
}

/// The Wasm runtime, compiling into (and loading from) the data directory's cache.
pub fn runtime(data_dir: &Path) -> anyhow::Result<Runtime> {
    let cache_dir = data_dir.join("cache");
    private_subdir(&cache_dir)
        .with_context(|| format!("cannot create the compile cache {}", cache_dir.display()))?;
    Runtime::new(&RuntimeConfig {
        cache_dir: Some(cache_dir),
        ..RuntimeConfig::default()
    })
    .context("cannot start the WebAssembly runtime")
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("scaffolder");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/scaffolder");
    }
    PathBuf::from(".scaffolder")
}

/// The built-in plugins (with their default grants, or those of a `builtin:<name>`
/// entry), then every configured plugin (a file or an OCI reference, pulled into the
/// data directory's `plugins/` cache), then `--plugin` arguments (a component, or a
/// plugin's directory — a Rust crate or an npm package — built first as `plugin build`
/// does). A configured plugin that provides every action of a built-in replaces it (a
/// team's pinned build of a built-in).
pub async fn load_plugins(
    runtime: &Runtime,
    config: &Config,
    data_dir: &Path,
    extra: &[PathBuf],
) -> anyhow::Result<Vec<(Arc<Plugin>, PluginOrigin)>> {
    let mut extra_components = Vec::new();
    for path in extra {
        let path = path.clone();
        let component = tokio::task::spawn_blocking(move || plugin_build::component(&path))
            .await
            .context("building a plugin crate stopped")??;
        extra_components.push(component);
    }
    let mut builtins = Vec::new();
    let settings = plugin_settings(config);
    let entries = &config.scaffolder.plugins;
    let builtin_entry = |name: &str| {
        entries
            .iter()
            .find(|e| e.source.to_str() == Some(&format!("{BUILTIN_PREFIX}{name}")))
    };
    for entry in entries {
        if let Some(name) = entry
            .source
            .to_str()
            .and_then(|s| s.strip_prefix(BUILTIN_PREFIX))
            && scaffolder_builtins::plugin(name).is_none()
        {
            let known: Vec<&str> = scaffolder_builtins::PLUGINS
                .iter()
                .map(|p| p.name)
                .collect();
            bail!(
                "scaffolder.plugins: there is no built-in plugin '{name}'; the built-ins are {}",
                known.join(", ")
            );
        }
    }
    for builtin in scaffolder_builtins::PLUGINS {
        let (plugin_config, digest) = match builtin_entry(builtin.name) {
            Some(entry) => (entry.plugin_config(&settings), entry.digest.clone()),
            None => (builtin.server_config(&settings), None),
        };
        let plugin = builtin
            .load(runtime, plugin_config)
            .await
            .with_context(|| format!("cannot load the built-in plugin {}", builtin.name))?;
        check_digest(&plugin, builtin.name, digest.as_deref())?;
        let origin = PluginOrigin {
            source: format!("{BUILTIN_PREFIX}{}", builtin.name),
            ..PluginOrigin::default()
        };
        builtins.push((Arc::new(plugin), origin));
    }
    let mut configured = Vec::new();
    let files = entries
        .iter()
        .filter(|e| !e.source.to_string_lossy().starts_with(BUILTIN_PREFIX))
        .map(|e| {
            let keys = if e.signed_by.is_empty() {
                &config.scaffolder.plugin_signatures.keys
            } else {
                &e.signed_by
            };
            (
                e.source.clone(),
                e.digest.clone(),
                e.insecure,
                keys.clone(),
                e.plugin_config(&settings),
            )
        })
        .chain(extra_components.iter().map(|p| {
            let plugin_config = PluginConfig {
                config: settings.clone(),
                ..PluginConfig::default()
            };
            (p.clone(), None, false, Vec::new(), plugin_config)
        }));
    let cache_dir = data_dir.join("plugins");
    for (source, digest, insecure, keys, plugin_config) in files {
        let (file, origin) =
            fetch_source(&source, digest.as_deref(), insecure, &keys, &cache_dir).await?;
        let plugin = load_plugin(runtime, &file, digest.as_deref(), plugin_config)
            .await
            .with_context(|| format!("cannot load the plugin {}", source.display()))?;
        configured.push((Arc::new(plugin), origin));
    }
    let mut plugins = without_replaced_builtins(builtins, &configured)?;
    plugins.extend(configured);
    for (plugin, _) in &plugins {
        tracing::info!(
            plugin = plugin.name(),
            digest = plugin.digest(),
            cached = plugin.cache_hit(),
            "plugin loaded"
        );
    }
    Ok(plugins)
}

/// The local file a configured source names, fetching a URL or OCI source into the cache
/// (pin and signatures checked first), and where it came from. A refusal is logged.
async fn fetch_source(
    source: &Path,
    digest: Option<&str>,
    insecure: bool,
    keys: &[String],
    cache_dir: &Path,
) -> anyhow::Result<(PathBuf, PluginOrigin)> {
    let text = source.to_string_lossy().into_owned();
    let mut origin = PluginOrigin {
        source: text.clone(),
        ..PluginOrigin::default()
    };
    let fetched = if is_url_source(&text) {
        download::fetch_url(&text, insecure, digest, !keys.is_empty(), cache_dir).await
    } else if text.starts_with(OCI_PREFIX) {
        match keys
            .iter()
            .map(|k| TrustedKey::load(k))
            .collect::<anyhow::Result<Vec<_>>>()
        {
            Ok(trusted) => oci::fetch(&text, insecure, digest, &trusted, cache_dir).await,
            Err(err) => Err(err.context(format!("the signing keys of {text}"))),
        }
    } else {
        return Ok((source.to_path_buf(), origin));
    };
    let fetched = fetched
        .inspect_err(|err| tracing::error!(source = %text, "plugin refused: {err:#}"))
        .with_context(|| format!("cannot load the plugin {text}"))?;
    tracing::info!(
        source = %text,
        manifest = fetched.manifest_digest.as_deref().unwrap_or("(none)"),
        digest = %fetched.component_digest,
        signed_by = fetched.signed_by.as_deref().unwrap_or("(no signature required)"),
        "plugin resolved"
    );
    origin.manifest_digest = fetched.manifest_digest;
    origin.signed_by = fetched.signed_by;
    Ok((fetched.file, origin))
}

/// The built-ins that no configured plugin replaces. A configured plugin that provides
/// some but not all of a built-in's actions is an error: half a built-in would be a
/// surprise.
fn without_replaced_builtins(
    builtins: Vec<(Arc<Plugin>, PluginOrigin)>,
    configured: &[(Arc<Plugin>, PluginOrigin)],
) -> anyhow::Result<Vec<(Arc<Plugin>, PluginOrigin)>> {
    let provider = |id: &str| {
        configured
            .iter()
            .map(|(p, _)| p)
            .find(|p| p.info().actions.iter().any(|a| a.id == id))
    };
    let mut kept = Vec::new();
    for (builtin, origin) in builtins {
        let ids: Vec<&str> = builtin
            .info()
            .actions
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        let provided: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| provider(id).is_some())
            .collect();
        if provided.is_empty() {
            kept.push((builtin, origin));
        } else if provided.len() == ids.len() {
            let by: Vec<&str> = ids
                .iter()
                .filter_map(|id| provider(id))
                .map(|p| p.name())
                .collect();
            tracing::info!(
                builtin = builtin.name(),
                "the built-in plugin is replaced by the configured {}",
                by.first().copied().unwrap_or_default()
            );
        } else {
            let missing: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| provider(id).is_none())
                .collect();
            bail!(
                "a configured plugin provides {} of the built-in {}, but not {}; a plugin replaces a                  built-in only when it provides all of its actions",
                provided.join(", "),
                builtin.name(),
                missing.join(", ")
            );
        }
    }
    Ok(kept)
}

/// What every plugin reads with `host.get-config` (the keys the WIT documents): the
/// server's own settings that actions of Backstage read from its root config, without
/// credentials.
fn plugin_settings(config: &Config) -> BTreeMap<String, String> {
    let scaffolder = &config.scaffolder;
    let integrations: Vec<serde_json::Value> = config
        .integrations
        .scm_integrations()
        .into_iter()
        .map(|i| {
            let api_base_url = config
                .integrations
                .find(&i.host)
                .and_then(|(_, configured)| configured.api_base_url.clone());
            serde_json::json!({ "kind": i.kind, "host": i.host, "apiBaseUrl": api_base_url })
        })
        .collect();
    [
        ("backend.baseUrl", config.backend.base_url.clone()),
        (BACKSTAGE_BASE_URL, config.backstage.base_url.clone()),
        (
            "scaffolder.defaultAuthor.name",
            scaffolder.default_author.name.clone(),
        ),
        (
            "scaffolder.defaultAuthor.email",
            scaffolder.default_author.email.clone(),
        ),
        (
            "scaffolder.defaultCommitMessage",
            scaffolder.default_commit_message.clone(),
        ),
        (
            "integrations",
            Some(serde_json::Value::from(integrations).to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), value?)))
    .collect()
}

async fn load_plugin(
    runtime: &Runtime,
    source: &Path,
    digest: Option<&str>,
    plugin_config: PluginConfig,
) -> anyhow::Result<Plugin> {
    let plugin = runtime.load_file(source, plugin_config).await?;
    check_digest(&plugin, &source.display().to_string(), digest)?;
    Ok(plugin)
}

/// Refuses a plugin whose digest differs from its pin.
fn check_digest(plugin: &Plugin, source: &str, pinned: Option<&str>) -> anyhow::Result<()> {
    if let Some(pinned) = pinned
        && pinned != plugin.digest()
    {
        bail!(
            "refusing to load {source}: its digest is {} but the configuration pins {pinned}; \
             update the pin if this build is the one you reviewed",
            plugin.digest()
        );
    }
    Ok(())
}

pub fn engine_config(config: &Config, working_directory: PathBuf) -> EngineConfig {
    let scaffolder = &config.scaffolder;
    EngineConfig {
        concurrent_tasks_limit: scaffolder.concurrent_tasks_limit,
        environment: Environment {
            parameters: scaffolder.default_environment.parameters.clone(),
            secrets: scaffolder.default_environment.secrets.clone(),
        },
        integrations: config.integrations.scm_integrations(),
        recovery_stale_timeout: scaffolder
            .task_recovery
            .enabled
            .then_some(scaffolder.task_recovery.stale_timeout),
        graceful_shutdown_timeout: scaffolder.graceful_shutdown_timeout,
        workspace_retention: scaffolder.workspace_retention,
        dry_run_limits: scaffolder.dry_run.limits(),
        // The id the actions registry answers as, configured or not: a template written
        // for the Backstage that calls this server (`wasm-actions:postgres:...`) runs here.
        actions_registry_plugin_id: Some(
            scaffolder
                .actions_registry
                .clone()
                .unwrap_or_default()
                .plugin_id,
        ),
        ..EngineConfig::new(working_directory)
    }
}
