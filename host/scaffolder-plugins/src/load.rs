//! Loading a [`PluginSet`]: the built-ins (replaced by a configured plugin that provides all
//! of a built-in's actions), then the configured plugins (files, URLs and OCI references,
//! fetched into the cache with their pins and signatures checked first), then `--plugin`
//! arguments (plugin directories built first).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use scaffolder_engine::PluginOrigin;
use scaffolder_runtime::{Plugin, PluginConfig, Runtime};

use crate::signing::TrustedKey;
use crate::source::{PluginSet, PluginSource, PluginSpec};
use crate::{directory, https, oci};

/// The built-in plugins (with their default grants, or those of a `builtin:<name>`
/// entry), then every configured plugin (a file, a URL or an OCI reference, pulled into
/// the data directory's `plugins/` cache), then `--plugin` arguments (a component,
/// or a plugin's directory — a Rust crate or an npm package — built first as `plugin
/// build` does). A configured plugin that provides every action of a built-in replaces it
/// (a team's pinned build of a built-in).
pub async fn load_plugins(
    runtime: &Runtime,
    plugins: &PluginSet,
    data_dir: &Path,
) -> anyhow::Result<Vec<(Arc<Plugin>, PluginOrigin)>> {
    let cache_dir = data_dir.join("plugins");
    let mut extra = Vec::new();
    for path in &plugins.extra {
        let path = path.clone();
        let component = tokio::task::spawn_blocking(move || directory::component(&path))
            .await
            .context("building a plugin crate stopped")??;
        extra.push(PluginSpec {
            source: PluginSource::File(component),
            digest: None,
            insecure: false,
            signed_by: Vec::new(),
            config: PluginConfig {
                config: plugins.settings.clone(),
                ..PluginConfig::default()
            },
        });
    }
    let builtin_spec = |name: &str| {
        plugins
            .configured
            .iter()
            .find(|spec| matches!(&spec.source, PluginSource::Builtin(n) if n == name))
    };
    for spec in &plugins.configured {
        if let PluginSource::Builtin(name) = &spec.source
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
    let mut builtins = Vec::new();
    for builtin in scaffolder_builtins::PLUGINS {
        let (plugin_config, digest) = match builtin_spec(builtin.name) {
            Some(spec) => (spec.config.clone(), spec.digest.as_deref()),
            None => (builtin.server_config(&plugins.settings), None),
        };
        let plugin = builtin
            .load(runtime, plugin_config)
            .await
            .with_context(|| format!("cannot load the built-in plugin {}", builtin.name))?;
        check_digest(&plugin, builtin.name, digest)?;
        let origin = PluginOrigin {
            source: PluginSource::builtin(builtin.name).to_string(),
            ..PluginOrigin::default()
        };
        builtins.push((Arc::new(plugin), origin));
    }
    let mut configured = Vec::new();
    let specs = plugins
        .configured
        .iter()
        .filter(|spec| !matches!(spec.source, PluginSource::Builtin(_)))
        .chain(&extra);
    for spec in specs {
        let (file, origin) = fetch_source(spec, &cache_dir).await?;
        let plugin = load_plugin(runtime, &file, spec.digest.as_deref(), spec.config.clone())
            .await
            .with_context(|| format!("cannot load the plugin {}", spec.source))?;
        configured.push((Arc::new(plugin), origin));
    }
    let mut loaded = without_replaced_builtins(builtins, &configured)?;
    loaded.extend(configured);
    for (plugin, _) in &loaded {
        tracing::info!(
            plugin = plugin.name(),
            digest = plugin.digest(),
            cached = plugin.cache_hit(),
            "plugin loaded"
        );
    }
    Ok(loaded)
}

/// The local file a spec's source names, fetching a URL or OCI source into the cache
/// (pin and signatures checked first), and where it came from. A refusal is logged.
async fn fetch_source(
    spec: &PluginSpec,
    cache_dir: &Path,
) -> anyhow::Result<(PathBuf, PluginOrigin)> {
    let text = spec.source.to_string();
    let digest = spec.digest.as_deref();
    let mut origin = PluginOrigin {
        source: text.clone(),
        ..PluginOrigin::default()
    };
    let fetched = match &spec.source {
        PluginSource::File(file) => return Ok((file.clone(), origin)),
        PluginSource::Builtin(_) => bail!("{text} is loaded from the binary, not fetched"),
        PluginSource::Url(url) => {
            let signed = !spec.signed_by.is_empty();
            https::fetch_url(url, spec.insecure, digest, signed, cache_dir).await
        }
        PluginSource::Oci(reference) => match spec
            .signed_by
            .iter()
            .map(|k| TrustedKey::load(k))
            .collect::<anyhow::Result<Vec<_>>>()
        {
            Ok(trusted) => oci::fetch(reference, spec.insecure, digest, &trusted, cache_dir).await,
            Err(err) => Err(err.context(format!("the signing keys of {text}"))),
        },
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
                "a configured plugin provides {} of the built-in {}, but not {}; a plugin replaces a \
                 built-in only when it provides all of its actions",
                provided.join(", "),
                builtin.name(),
                missing.join(", ")
            );
        }
    }
    Ok(kept)
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
