//! Runs scaffolder actions as sandboxed WebAssembly components.
//!
//! This crate narrows wasmtime to what the scaffolder needs: one [`Runtime`] (engine,
//! linker, on-disk compile cache, epoch ticker) loads [`Plugin`]s, and
//! [`Plugin::execute`] runs one step of one action in a fresh store.
//!
//! A step gets exactly what it was granted and nothing else:
//! - its task workspace at `/workspace` (read-write, also the working directory) and, when
//!   granted, the template's directory at `/template` (read-only); every other path,
//!   `..` escapes and symlinks pointing out are denied ([`capability::filesystem`]);
//! - the secrets, HTTP origins and TCP peers in the intersection of what the operator
//!   granted the plugin and what the action requested ([`capability::EffectiveGrants`]);
//! - no environment variables, arguments or stdin; stdout and stderr become log lines;
//!   the operator's configuration for the plugin comes through `host.get-config`;
//! - a memory cap, a wall-clock deadline, and caps on everything the host stores or holds
//!   for it: log lines, output, added secrets, checkpoints, refused operations, open
//!   handles and workspace files ([`Limits`]).
//!
//! Whatever a guest does (trap, loop, exhaust memory, probe the sandbox), the outcome is a
//! [`StepFailure`] that names the cause; the host keeps running.
//!
//! This crate knows nothing of HTTP APIs, SQL or templates: it takes JSON in, gives JSON
//! out, and calls back into a [`StepHost`] for logging, secrets and checkpoints.

mod bindings;
mod budget;
mod cache;
pub mod capability;
mod error;
mod limits;
mod plugin;
mod runtime;
mod step;

pub use capability::{Capabilities, DENIALS_METRIC, Grants, WorkspaceCap};
pub use error::{Error, Result};
pub use limits::{LOG_LINE_OVERHEAD_BYTES, Limits};
pub use plugin::{ActionInfo, Attributes, Example, Plugin, PluginConfig, PluginInfo};
pub use runtime::{Runtime, RuntimeConfig};
pub use step::{
    Checkpoint, LogLevel, StepContext, StepFailure, StepFailureKind, StepHost, StepRequest,
    StepUsage, TemplateInfo,
};

/// The WIT package version this host implements, `scaffolder:action@0.1.1`.
pub const WIT_VERSION: &str = "0.1.1";

/// Every version a plugin may target: additions within `0.1` are compatible, so a plugin
/// built against an older one loads unchanged (wasmtime links it semver-compatibly).
pub const COMPATIBLE_WIT_VERSIONS: &[&str] = &["0.1.0", "0.1.1"];
