//! The `scaffolder` binary: parses the command line, sets up logging, and runs a command.
//! It owns exit codes and error printing; the work happens in the library crates.

mod cli;
mod dry_run;
mod http_server;
mod memory;
mod plugin_build;
mod plugin_inspect;
mod plugin_new;
mod plugin_publish;
mod plugin_test;
mod serve;
mod template_test;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let memory = memory::configure();
    let cli = cli::Cli::parse();
    let serve = matches!(cli.command, cli::Command::Serve(_));
    let traces = init_tracing(if serve { "info" } else { "warn" }, cli.log_format, serve);
    if let Err(message) = memory {
        tracing::warn!("{message}");
    }
    let code = match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    };
    if let Some(traces) = traces
        && let Err(err) = traces.shutdown()
    {
        eprintln!("warning: the last spans were not exported to OpenTelemetry: {err}");
    }
    code
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(memory::thread_idle)
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

/// Logs to stderr, filtered by `RUST_LOG` (default: `default_level`); with `export` and
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans also
/// go to that OpenTelemetry collector over OTLP http/protobuf; the provider returned
/// flushes them at exit.
fn init_tracing(
    default_level: &str,
    format: cli::LogFormat,
    export: bool,
) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a person at a terminal, never in a log file (https://no-color.org).
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let text = (format == cli::LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(colours)
    });
    let json = (format == cli::LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
    });
    let traces = export.then(otlp_traces).flatten();
    let otel = traces.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("scaffolder"))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .init();
    traces
}

/// The OTLP span exporter when the standard environment names an endpoint.
fn otlp_traces() -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !configured {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!(
                "warning: spans are not exported: the OTLP exporter cannot start ({err}); check OTEL_EXPORTER_OTLP_ENDPOINT"
            );
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("scaffolder")
        .build();
    Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}
