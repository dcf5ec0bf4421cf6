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

/// Actions by id. Built once from the loaded plugins; replaced as a whole when plugins
/// change, so a running task keeps the registry it started with.
#[derive(Clone, Default)]
pub struct ActionRegistry {
    actions: BTreeMap<String, RegisteredAction>,
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
        let mut actions = BTreeMap::new();
        for plugin in plugins {
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
        Ok(Self { actions })
    }

    pub fn get(&self, id: &str) -> Option<&RegisteredAction> {
        self.actions.get(id)
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
