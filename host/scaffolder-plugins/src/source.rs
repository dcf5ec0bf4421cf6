//! Where a plugin comes from ([`PluginSource`], parsed once from the configuration's
//! `source` string) and what loading it takes ([`PluginSpec`], [`PluginSet`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use scaffolder_runtime::PluginConfig;
use serde::{Deserialize, Deserializer};

/// A plugin source naming a built-in plugin (`builtin:builtin-fetch`).
const BUILTIN_PREFIX: &str = "builtin:";
/// A plugin source in an OCI registry (`oci://host/name:tag`).
const OCI_PREFIX: &str = "oci://";

/// A `scaffolder.plugins[].source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// `builtin:<name>`: the entry sets the grants and limits of that built-in instead of
    /// loading a file.
    Builtin(String),
    /// `oci://host[:port]/name[:tag][@sha256:<hex>]`.
    Oci(String),
    /// `https://...` (or `http://` with `insecure: true`, for loopback).
    Url(String),
    /// A `.wasm` component on this machine.
    File(PathBuf),
}

impl PluginSource {
    /// Reads a source as the configuration spells it; anything that is not a built-in,
    /// an OCI reference or a URL is a file path.
    pub fn parse(text: &str) -> Self {
        if let Some(name) = text.strip_prefix(BUILTIN_PREFIX) {
            Self::Builtin(name.to_owned())
        } else if text.starts_with(OCI_PREFIX) {
            Self::Oci(text.to_owned())
        } else if text.starts_with("https://") || text.starts_with("http://") {
            Self::Url(text.to_owned())
        } else {
            Self::File(PathBuf::from(text))
        }
    }

    /// The built-in `name` as a source.
    pub fn builtin(name: &str) -> Self {
        Self::Builtin(name.to_owned())
    }

    /// The file on this machine, for a file source.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Builtin(_) | Self::Oci(_) | Self::Url(_) => None,
        }
    }
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(name) => write!(f, "{BUILTIN_PREFIX}{name}"),
            Self::Oci(text) | Self::Url(text) => f.write_str(text),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for PluginSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

/// One plugin to load, with everything the configuration says about it resolved.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub source: PluginSource,
    /// `sha256:<hex>`: the component must have this digest (checked before anything is
    /// compiled; for an OCI source, before it is downloaded).
    pub digest: Option<String>,
    /// Speak plain HTTP to the source's registry or URL (a server on loopback).
    pub insecure: bool,
    /// Public keys (PEM files or inline PEM) of which one must have signed an OCI plugin;
    /// empty: no signature is required.
    pub signed_by: Vec<String>,
    /// Its grants, limits and `host.get-config` values.
    pub config: PluginConfig,
}

/// Every plugin a server or a local run loads.
#[derive(Debug, Clone, Default)]
pub struct PluginSet {
    /// The configured plugins (`scaffolder.plugins`), built-in entries included.
    pub configured: Vec<PluginSpec>,
    /// `--plugin` arguments: a component, or a plugin's directory (a Rust crate or an npm
    /// package) built first; granted nothing.
    pub extra: Vec<PathBuf>,
    /// What every plugin reads with `host.get-config`: the server's own settings, without
    /// credentials. A configured plugin's own `config` is added over them.
    pub settings: BTreeMap<String, String>,
}
