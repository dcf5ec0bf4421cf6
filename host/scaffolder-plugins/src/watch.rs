//! Plugins reloaded while the server runs: when a configuration file, a `--plugin` file
//! or a configured plugin file changes, the plugins are loaded again (OCI tags resolved
//! again, pins and signatures checked again) and tasks that start afterwards use them.
//! Running tasks keep the registry they started with; each step's `processing` event
//! names the build that ran it. A reload that fails keeps the plugins already loaded.
//! Other settings take effect at the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use scaffolder_engine::{ActionRegistry, Engine};
use scaffolder_runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::load::load_plugins;
use crate::source::PluginSet;

/// How often the watched files are looked at.
const INTERVAL: Duration = Duration::from_secs(1);

/// What is watched and how to load again.
pub struct PluginWatch {
    pub engine: Engine,
    pub runtime: Runtime,
    /// The configuration files, watched themselves.
    pub config_files: Vec<PathBuf>,
    /// Reads the configuration files again into the plugins they name.
    pub read_config: Box<dyn Fn() -> anyhow::Result<PluginSet> + Send + Sync>,
    /// The data directory, which holds the plugin cache.
    pub data_dir: PathBuf,
}

impl PluginWatch {
    /// Polls until `shutdown`; `plugins` are the plugins the server started with.
    /// Each tick only looks at file metadata; the configuration is read again only when
    /// a watched file changed.
    pub async fn run(self, plugins: PluginSet, shutdown: CancellationToken) {
        let mut watched = plugins;
        let mut seen = self.fingerprint(&watched);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
            let now = self.fingerprint(&watched);
            if now == seen {
                continue;
            }
            seen = now;
            match (self.read_config)() {
                Ok(plugins) => {
                    // The new configuration may name other plugin files: watch those.
                    seen = self.fingerprint(&plugins);
                    self.reload(&plugins).await;
                    watched = plugins;
                }
                // Keep watching: the file may be half-written, or fixed in a moment.
                Err(err) => tracing::error!(
                    "the configuration changed but cannot be read; keeping the plugins loaded before: {err:#}"
                ),
            }
        }
    }

    async fn reload(&self, plugins: &PluginSet) {
        tracing::info!("a plugin or the configuration changed; loading the plugins again");
        let loaded = load_plugins(&self.runtime, plugins, &self.data_dir).await;
        let registry = loaded.and_then(|plugins| Ok(ActionRegistry::with_origins(plugins)?));
        match registry {
            Ok(registry) => {
                let summary: Vec<String> = registry
                    .plugins()
                    .iter()
                    .map(|(plugin, origin)| format!("{} {}", origin.source, plugin.digest()))
                    .collect();
                self.engine.set_actions(registry);
                tracing::info!(
                    "plugins reloaded; tasks that start from now on use: {}",
                    summary.join(", ")
                );
            }
            Err(err) => tracing::error!(
                "reloading the plugins failed; tasks keep using the plugins loaded before: {err:#}"
            ),
        }
    }

    /// Modification time and length of every watched file (missing files included, so
    /// their appearance counts as a change).
    fn fingerprint(&self, plugins: &PluginSet) -> BTreeMap<PathBuf, Option<(SystemTime, u64)>> {
        let plugin_files = plugins
            .configured
            .iter()
            .filter_map(|spec| spec.source.file().map(Path::to_path_buf));
        self.config_files
            .iter()
            .cloned()
            .chain(plugins.extra.iter().cloned())
            .chain(plugin_files)
            .map(|file| {
                let state = stat(&file);
                (file, state)
            })
            .collect()
    }
}

fn stat(file: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(file).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}
