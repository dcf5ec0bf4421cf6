//! The operator's SCM integrations (Backstage's `integrations.*`), from the
//! `integrations` configuration value: a JSON list of `{kind, host, apiBaseUrl}`.
//! Without it, Backstage's defaults: github.com, gitlab.com, bitbucket.org and
//! dev.azure.com.

use serde::Deserialize;

use crate::{ActionError, Context, Result};

/// The configuration key listing the SCM integrations.
pub const CONFIG_KEY: &str = "integrations";

/// One SCM host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    /// `github`, `gitlab`, `gitea`, `bitbucketCloud`, `bitbucketServer`, `azure`, `gerrit`.
    pub kind: String,
    /// The host name, with a port when not the scheme's default.
    pub host: String,
    /// The REST API's base URL when the operator configured one (GitHub Enterprise, say).
    #[serde(default)]
    pub api_base_url: Option<String>,
}

impl Integration {
    pub fn new(kind: &str, host: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            host: host.to_owned(),
            api_base_url: None,
        }
    }
}

/// The configured integrations, or Backstage's defaults.
pub fn integrations(ctx: &Context) -> Result<Vec<Integration>> {
    match ctx.config(CONFIG_KEY) {
        Some(json) => parse(&json),
        None => Ok(defaults()),
    }
}

/// Parses the configuration value.
pub fn parse(json: &str) -> Result<Vec<Integration>> {
    serde_json::from_str(json).map_err(|err| {
        ActionError::failed(format!(
            "the `integrations` configuration is not a list of {{kind, host, apiBaseUrl}}: {err}"
        ))
    })
}

/// Backstage's integrations when none are configured.
pub fn defaults() -> Vec<Integration> {
    [
        ("github", "github.com"),
        ("gitlab", "gitlab.com"),
        ("bitbucketCloud", "bitbucket.org"),
        ("azure", "dev.azure.com"),
    ]
    .into_iter()
    .map(|(kind, host)| Integration::new(kind, host))
    .collect()
}

/// The integration for `host` (case-insensitive), if any.
pub fn find<'a>(integrations: &'a [Integration], host: &str) -> Option<&'a Integration> {
    integrations
        .iter()
        .find(|i| i.host.eq_ignore_ascii_case(host))
}
