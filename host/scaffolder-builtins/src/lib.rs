//! The built-in plugins: each crate under `plugins/` (except the SDK), compiled to a
//! WebAssembly component by `build.rs` and embedded here. The host has no native action
//! code; the built-ins load and run exactly like a platform team's plugins.

use scaffolder_runtime::{Grants, Plugin, PluginConfig, Runtime};

/// A plugin compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPlugin {
    /// The crate name, e.g. `builtin-fetch`.
    pub name: &'static str,
    /// Where the build left the component (for tests and `plugin inspect`).
    pub path: &'static str,
    /// SHA-256 of `bytes` in hex, computed at build time.
    pub sha256: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

impl EmbeddedPlugin {
    /// What the operator grants a built-in unless the configuration says otherwise: the
    /// template's directory (fetch actions read skeletons from it). Network access is
    /// never granted by default.
    pub fn default_grants(&self) -> Grants {
        Grants {
            template_directory: true,
            ..Grants::default()
        }
    }
}

impl EmbeddedPlugin {
    /// [`Self::default_grants`] with the default limits.
    pub fn default_config(&self) -> PluginConfig {
        PluginConfig {
            grants: self.default_grants(),
            ..PluginConfig::default()
        }
    }

    /// Loads the plugin with the digest computed at build time, so a compile-cache hit
    /// does not read the embedded bytes.
    pub async fn load(
        &self,
        runtime: &Runtime,
        config: PluginConfig,
    ) -> scaffolder_runtime::Result<Plugin> {
        runtime
            .load_with_digest(self.name, self.bytes, self.sha256, config)
            .await
    }
}

/// The built-in plugin named `name`.
pub fn plugin(name: &str) -> Option<&'static EmbeddedPlugin> {
    PLUGINS.iter().find(|p| p.name == name)
}
