//! `backstage.*` (ours): the Backstage instance whose users and catalog we serve.

use serde::Deserialize;

/// `backstage.*` (ours): the Backstage instance whose users and catalog we serve.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct BackstageConfig {
    /// `backstage.baseUrl`: user tokens are checked against its JWKS and templates are
    /// read from its catalog.
    pub base_url: Option<String>,
    /// `backstage.catalog`.
    pub catalog: CatalogConfig,
}

/// `backstage.catalog`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct CatalogConfig {
    /// `backstage.catalog.token`: a service token sent as `Authorization: Bearer` when
    /// reading templates from the catalog.
    pub token: Option<String>,
}
