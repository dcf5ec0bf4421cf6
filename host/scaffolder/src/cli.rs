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
    /// Serve the Backstage scaffolder API (`/api/scaffolder/v2/...`) and run tasks.
    #[command(
        after_help = "Examples:\n  scaffolder serve --port 7007 --templates ./examples\n  scaffolder serve --config app-config.yaml --config app-config.production.yaml\n\nWith no configuration the server binds to 127.0.0.1, keeps its SQLite database and\nworkspaces in the data directory, and accepts requests without a token (loopback only)."
    )]
    Serve(ServeArgs),
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A Backstage-style `app-config.yaml`; repeat to layer files (later ones win).
    #[arg(long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,
    /// Port to listen on (`backend.listen.port`); 0 picks a free one.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to bind (`backend.listen.host`).
    #[arg(long)]
    pub host: Option<String>,
    /// A directory of templates (every YAML file with `kind: Template` under it); repeatable.
    #[arg(long = "templates", value_name = "DIR")]
    pub templates: Vec<PathBuf>,
    /// A plugin component to load with no grants beyond the workspace; repeatable. Use
    /// `scaffolder.plugins` in the config to grant hosts, secrets or limits.
    #[arg(long = "plugin", value_name = "FILE")]
    pub plugins: Vec<PathBuf>,
    /// Where the SQLite database, workspaces and the compile cache live
    /// (`scaffolder.dataDirectory`; default `$XDG_DATA_HOME/scaffolder`).
    #[arg(long, value_name = "DIR", env = "SCAFFOLDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}
