//! What the local commands share: runs on this machine with the server's engine, plugins
//! and grants but no server (`scaffolder dry-run`, `scaffolder test`, `plugin new`,
//! `plugin test`). The binary's command files parse the command line and print; the work
//! is here.
//!
//! - [`setup`]: the data directory, working directory and Wasm runtime (`serve` uses them
//!   too).
//! - [`session`]: a [`LocalSession`](session::LocalSession) (the plugins and engine settings
//!   a server with the same configuration has) and the inputs checked as the server checks
//!   them.
//! - [`values`]: what the command line gives: `--values`, `--set`, `--secret`.
//! - [`files`]: a run's files written to an output directory, and their tree.
//! - [`template_tests`]: template regression test cases and snapshots.
//! - [`plugin_tests`]: a plugin's cases in the production sandbox.
//! - [`progress`], [`plural`]: how a run is shown.

pub mod files;
pub mod plugin_tests;
pub mod plural;
pub mod progress;
pub mod session;
pub mod setup;
pub mod template_tests;
pub mod values;
