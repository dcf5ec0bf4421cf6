//! The command line, as clap types. Every command has an example in its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A Backstage-compatible scaffolder whose actions run as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "scaffolder", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with plugins (WebAssembly components that provide actions).
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show a plugin's actions, schemas, requested capabilities, WIT version and digest.
    #[command(
        after_help = "Example:\n  scaffolder plugin inspect target/wasm32-wasip2/release/my_plugin.wasm"
    )]
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The plugin component (`.wasm`).
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
