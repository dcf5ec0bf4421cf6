//! Errors of loading plugins and setting up the runtime. Failures of a running step are
//! not errors of this crate: they are [`crate::StepFailure`] values.

use std::path::PathBuf;

/// What went wrong while setting up the runtime or loading a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path} could not be read")]
    ReadPlugin {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{name} is a core WebAssembly module, not a component: build the plugin for the `wasm32-wasip2` target (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule { name: String },
    #[error("{name} is not a WebAssembly file")]
    NotWasm { name: String },
    #[error("{name} could not be compiled: {message}")]
    Compile { name: String, message: String },
    #[error(
        "{name} targets scaffolder:action@{found}, but this host implements scaffolder:action@{supported} (and loads plugins built for 0.1.0 and later 0.1 versions): rebuild the plugin against the host's WIT package"
    )]
    UnsupportedWitVersion {
        name: String,
        found: String,
        supported: &'static str,
    },
    #[error(
        "{name} does not export `scaffolder:action/plugin@{supported}`: a plugin must target the `action` world in wit/ (use the scaffolder-plugin-sdk crate)"
    )]
    MissingExport {
        name: String,
        supported: &'static str,
    },
    #[error("{name} imports `{import}`, which this host does not provide")]
    UnsupportedImport { name: String, import: String },
    #[error("{name} could not be instantiated: {message}")]
    Instantiate { name: String, message: String },
    #[error("{name} failed while describing its actions: {message}")]
    Describe { name: String, message: String },
    #[error("{name} has invalid metadata: {message}")]
    InvalidMetadata { name: String, message: String },
    #[error("invalid grant '{grant}': {message}")]
    InvalidGrant { grant: String, message: String },
    #[error("the WebAssembly engine could not be created: {message}")]
    Engine { message: String },
    #[error("the compile cache at {path} is unusable")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
