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

use crate::setup;
use scaffolder_config::{BUILTIN_PREFIX, Config, OCI_PREFIX, is_url_source};

/// How often the watched files are looked at.
const INTERVAL: Duration = Duration::from_secs(1);

/// What is watched and how to load again.
pub struct PluginWatch {
    pub engine: Engine,
    pub runtime: Runtime,
    pub configs: Vec<PathBuf>,
    pub extra_plugins: Vec<PathBuf>,
    pub data_dir: PathBuf,
}

impl PluginWatch {
    /// Polls until `shutdown`; `config` is the configuration the server started with.
    /// Each tick only looks at file metadata; the configuration is read again only when
    /// a watched file changed.
    pub async fn run(self, config: &Config, shutdown: CancellationToken) {
        let mut watched = config.clone();
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
            match scaffolder_config::load(&self.configs) {
                Ok(config) => {
                    // The new configuration may name other plugin files: watch those.
                    seen = self.fingerprint(&config);
                    self.reload(&config).await;
                    watched = config;
                }
                // Keep watching: the file may be half-written, or fixed in a moment.
                Err(err) => tracing::error!(
                    "the configuration changed but cannot be read; keeping the plugins loaded before: {err:#}"
                ),
            }
        }
    }

    async fn reload(&self, config: &Config) {
        tracing::info!("a plugin or the configuration changed; loading the plugins again");
        let loaded =
            setup::load_plugins(&self.runtime, config, &self.data_dir, &self.extra_plugins).await;
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
    fn fingerprint(&self, config: &Config) -> BTreeMap<PathBuf, Option<(SystemTime, u64)>> {
        let plugin_files = config
            .scaffolder
            .plugins
            .iter()
            .map(|entry| entry.source.clone())
            .filter(|source| {
                let text = source.to_string_lossy();
                !text.starts_with(BUILTIN_PREFIX)
                    && !text.starts_with(OCI_PREFIX)
                    && !is_url_source(&text)
            });
        self.configs
            .iter()
            .cloned()
            .chain(self.extra_plugins.iter().cloned())
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
