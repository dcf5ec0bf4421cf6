//! The `scaffolder` binary: parses the command line, sets up logging, and runs a command.
//! It owns exit codes and error printing; the work happens in the library crates.

mod cli;
mod config;
mod download;
mod http_server;
mod dry_run;
mod oci;
mod plugin_build;
mod plugin_inspect;
mod plugin_new;
mod plugin_publish;
mod plugin_test;
mod plural;
mod progress;
mod reload;
mod serve;
mod setup;
mod signing;
mod template_test;
mod values;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(match cli.command {
        cli::Command::Serve(_) => "info",
        _ => "warn",
    });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            cli::Command::Serve(args) => serve::run(args).await,
            cli::Command::DryRun(args) => dry_run::run(args).await,
            cli::Command::Test(args) => template_test::run(args).await,
            cli::Command::Plugin(command) => match command {
                cli::PluginCommand::New(args) => plugin_new::run(args).await,
                cli::PluginCommand::Build(args) => plugin_build::run(args).await,
                cli::PluginCommand::Publish(args) => plugin_publish::run(args).await,
                cli::PluginCommand::Sign(args) => plugin_publish::sign(args).await,
                cli::PluginCommand::Keygen(args) => plugin_publish::keygen(args),
                cli::PluginCommand::Test(args) => plugin_test::run(args).await,
                cli::PluginCommand::Inspect(args) => plugin_inspect::run(args).await,
                cli::PluginCommand::List(args) => plugin_inspect::list(args).await,
            },
        }
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default: `default_level`).
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a person at a terminal, never in a log file (https://no-color.org).
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .init();
}
