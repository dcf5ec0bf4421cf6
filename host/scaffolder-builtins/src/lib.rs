//! The built-in plugins: each crate under `plugins/` (except the SDK), compiled to a
//! WebAssembly component by `build.rs` and embedded here. The host has no native action
//! code; the built-ins load and run exactly like a platform team's plugins.

use std::collections::BTreeMap;

use scaffolder_runtime::{Grants, Plugin, PluginConfig, Runtime};

/// The configuration key naming the Backstage instance (see `host.get-config`).
pub const BACKSTAGE_BASE_URL: &str = "backstage.baseUrl";
/// The task secret holding the caller's Backstage token (added by `scaffolder-api`).
pub const BACKSTAGE_TOKEN_SECRET: &str = "backstageToken";
/// The built-in plugin with `catalog:fetch` and `catalog:register`.
const CATALOG_PLUGIN: &str = "builtin-catalog";

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

    /// The configuration a server gives the built-in unless told otherwise: `settings` as
    /// what `host.get-config` answers, the default grants, and for the catalog actions
    /// the origin of the configured `backstage.baseUrl` and the caller's token, the two
    /// things `catalog:fetch` and `catalog:register` need to act with the user's rights.
    pub fn server_config(&self, settings: &BTreeMap<String, String>) -> PluginConfig {
        let mut config = self.default_config();
        config.config = settings.clone();
        if self.name == CATALOG_PLUGIN
            && let Some(origin) = settings.get(BACKSTAGE_BASE_URL).and_then(|u| origin_of(u))
        {
            config.grants.outbound_http.push(origin);
            config
                .grants
                .secrets
                .push(BACKSTAGE_TOKEN_SECRET.to_owned());
        }
        config
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

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_plugin_reaches_the_configured_backstage_only() {
        let settings = BTreeMap::from([(
            BACKSTAGE_BASE_URL.to_owned(),
            "https://backstage.example.com:8443/base".to_owned(),
        )]);
        let catalog = plugin(CATALOG_PLUGIN).unwrap().server_config(&settings);
        assert_eq!(
            catalog.grants.outbound_http,
            ["https://backstage.example.com:8443"]
        );
        assert_eq!(catalog.grants.secrets, [BACKSTAGE_TOKEN_SECRET]);
        assert_eq!(catalog.config, settings);

        let fetch = plugin("builtin-fetch").unwrap().server_config(&settings);
        assert!(fetch.grants.outbound_http.is_empty() && fetch.grants.secrets.is_empty());
        let unconfigured = plugin(CATALOG_PLUGIN)
            .unwrap()
            .server_config(&BTreeMap::new());
        assert!(unconfigured.grants.outbound_http.is_empty());
    }
}
