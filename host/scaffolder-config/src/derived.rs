//! What the other parts take from the configuration: the plugins to load
//! ([`Config::plugin_set`]) and the engine's settings ([`Config::engine_config`]), so a
//! server and a local run with the same files get the same actions, grants and settings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use scaffolder_builtins::BACKSTAGE_BASE_URL;
use scaffolder_engine::{EngineConfig, Environment};
use scaffolder_plugins::PluginSet;

use crate::Config;

impl Config {
    /// The plugins this configuration loads, plus `extra` (`--plugin` arguments).
    pub fn plugin_set(&self, extra: &[PathBuf]) -> PluginSet {
        let settings = self.plugin_settings();
        let keys = &self.scaffolder.plugin_signatures.keys;
        PluginSet {
            configured: self
                .scaffolder
                .plugins
                .iter()
                .map(|entry| entry.spec(&settings, keys))
                .collect(),
            extra: extra.to_vec(),
            settings,
        }
    }

    /// The engine's settings, with task workspaces under `working_directory`.
    pub fn engine_config(&self, working_directory: PathBuf) -> EngineConfig {
        let scaffolder = &self.scaffolder;
        EngineConfig {
            concurrent_tasks_limit: scaffolder.concurrent_tasks_limit,
            environment: Environment {
                parameters: scaffolder.default_environment.parameters.clone(),
                secrets: scaffolder.default_environment.secrets.clone(),
            },
            integrations: self.integrations.scm_integrations(),
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

    /// What every plugin reads with `host.get-config` (the keys the WIT documents): the
    /// server's own settings that actions of Backstage read from its root config, without
    /// credentials.
    fn plugin_settings(&self) -> BTreeMap<String, String> {
        let scaffolder = &self.scaffolder;
        let integrations: Vec<serde_json::Value> = self
            .integrations
            .scm_integrations()
            .into_iter()
            .map(|i| {
                let api_base_url = self
                    .integrations
                    .find(&i.host)
                    .and_then(|(_, configured)| configured.api_base_url.clone());
                serde_json::json!({ "kind": i.kind, "host": i.host, "apiBaseUrl": api_base_url })
            })
            .collect();
        [
            ("backend.baseUrl", self.backend.base_url.clone()),
            (BACKSTAGE_BASE_URL, self.backstage.base_url.clone()),
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
}
