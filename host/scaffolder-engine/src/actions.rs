//! The actions a server or a dry run can use: every action of every loaded plugin, by id.

use std::collections::BTreeMap;
use std::sync::Arc;

use scaffolder_runtime::{ActionInfo, Plugin};

/// One action and the plugin that provides it.
#[derive(Clone)]
pub struct RegisteredAction {
    pub plugin: Arc<Plugin>,
    pub info: ActionInfo,
}

/// Where a loaded plugin came from, for operators: what the configuration named and what
/// it resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginOrigin {
    /// The configured source: `builtin:<name>`, a file, or `oci://...`.
    pub source: String,
    /// The OCI manifest the source resolved to.
    pub manifest_digest: Option<String>,
    /// The fingerprint of the trusted key whose signature was verified.
    pub signed_by: Option<String>,
}

/// Actions by id. Built once from the loaded plugins; replaced as a whole when plugins
/// change, so a running task keeps the registry it started with.
#[derive(Clone, Default)]
pub struct ActionRegistry {
    actions: BTreeMap<String, RegisteredAction>,
    plugins: Vec<(Arc<Plugin>, PluginOrigin)>,
    /// The plugin id Backstage knows this server by (see [`Self::answering_as`]).
    answers_as: Option<String>,
}

/// Two plugins provide the same action id.
#[derive(Debug, thiserror::Error)]
#[error(
    "Template action with ID '{id}' has already been registered (by plugin {first}; plugin {second} provides it too). Remove one of the plugins."
)]
pub struct DuplicateAction {
    pub id: String,
    pub first: String,
    pub second: String,
}

impl ActionRegistry {
    /// Registers every action of the plugins; an id provided twice is an error.
    pub fn new(plugins: impl IntoIterator<Item = Arc<Plugin>>) -> Result<Self, DuplicateAction> {
        Self::with_origins(plugins.into_iter().map(|plugin| {
            let origin = PluginOrigin {
                source: plugin.name().to_owned(),
                ..PluginOrigin::default()
            };
            (plugin, origin)
        }))
    }

    /// As [`new`](Self::new), keeping where each plugin came from.
    pub fn with_origins(
        plugins: impl IntoIterator<Item = (Arc<Plugin>, PluginOrigin)>,
    ) -> Result<Self, DuplicateAction> {
        let plugins: Vec<(Arc<Plugin>, PluginOrigin)> = plugins.into_iter().collect();
        let mut actions = BTreeMap::new();
        for (plugin, _) in &plugins {
            for info in &plugin.info().actions {
                if let Some(existing) = actions.get(&info.id) {
                    let existing: &RegisteredAction = existing;
                    return Err(DuplicateAction {
                        id: info.id.clone(),
                        first: existing.plugin.name().to_owned(),
                        second: plugin.name().to_owned(),
                    });
                }
                actions.insert(
                    info.id.clone(),
                    RegisteredAction {
                        plugin: plugin.clone(),
                        info: info.clone(),
                    },
                );
            }
        }
        Ok(Self {
            actions,
            plugins,
            answers_as: None,
        })
    }

    /// Also finds each action under `<plugin_id>:<id>`, the id Backstage's scaffolder
    /// gives it through its actions registry when this server answers as `plugin_id`
    /// (`scaffolder.actionsRegistry.pluginId`): a template written for that Backstage
    /// (`wasm-actions:postgres:database:create`) runs here unchanged, with the same action
    /// Backstage would have called here.
    pub fn answering_as(mut self, plugin_id: Option<String>) -> Self {
        self.answers_as = plugin_id;
        self
    }

    /// The plugins, in load order, with their origins.
    pub fn plugins(&self) -> &[(Arc<Plugin>, PluginOrigin)] {
        &self.plugins
    }

    /// The action `id`, or `<id>` for `<plugin id>:<id>` (see [`Self::answering_as`]).
    pub fn get(&self, id: &str) -> Option<&RegisteredAction> {
        self.actions.get(id).or_else(|| {
            let own = id
                .strip_prefix(self.answers_as.as_deref()?)?
                .strip_prefix(':')?;
            self.actions.get(own)
        })
    }

    /// All actions, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &RegisteredAction> {
        self.actions.values()
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}
