//! The command line, as clap types. Every command has an example in its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A Backstage-compatible scaffolder whose actions run as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(
    name = "scaffolder",
    version,
    propagate_version = true,
    after_help = "Examples:\n  scaffolder serve --port 7007 --templates ./examples\n  scaffolder dry-run examples/docs-site/template.yaml --set name=handbook\n  scaffolder test examples\n  scaffolder plugin new hello && scaffolder plugin build hello\n\nEach command's --help has more."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How log lines are written to stderr: `text` for people, `json` (one object a line,
    /// with the span fields) for log collectors.
    #[arg(long, global = true, value_enum, env = "SCAFFOLDER_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// See [`Cli::log_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Backstage scaffolder API (`/api/scaffolder/v2/...`) and run tasks.
    #[command(
        after_help = "Examples:\n  scaffolder serve --port 7007 --templates ./examples\n  scaffolder serve --config app-config.yaml --config app-config.production.yaml\n\nWith no configuration the server binds to 127.0.0.1, keeps its SQLite database and\nworkspaces in the data directory, and accepts requests without a token (loopback only)."
    )]
    Serve(ServeArgs),
    /// Run a template locally, without a server or a database, and show what it would create.
    #[command(after_help = DRY_RUN_HELP)]
    DryRun(DryRunArgs),
    /// Run templates' regression tests: each `tests/*.yaml` case beside a `template.yaml`, as a dry run.
    #[command(after_help = TEST_HELP)]
    Test(TestArgs),
    /// Write, build, test and inspect plugins (WebAssembly components that provide actions).
    #[command(
        subcommand,
        after_help = "Examples:\n  scaffolder plugin new hello\n  scaffolder plugin build hello\n  scaffolder plugin test hello\n  scaffolder plugin inspect hello/target/wasm32-wasip2/release/hello.wasm"
    )]
    Plugin(PluginCommand),
}

const DRY_RUN_HELP: &str = "\
Examples:
  scaffolder dry-run examples/rust-service/template.yaml --set name=billing --set owner=group:default/payments
  scaffolder dry-run template.yaml --values values.yaml --output ./preview
  scaffolder dry-run template.yaml --values values.yaml --secret GIT_TOKEN --execute --config app-config.yaml
  scaffolder dry-run template.yaml --values values.json --json > result.json

Like Backstage's dry run, actions that cannot dry-run (publishing, registering) are skipped
and their outputs are examples; --execute runs them for real, with the grants and secrets
that --config would give them in a server. Values are checked against the template's
parameters before anything runs.";

const TEST_HELP: &str = "\
Examples:
  scaffolder test examples                 (every template under examples/ with a tests/ folder)
  scaffolder test examples/rust-service    (one template)
  scaffolder test --update                 (write the snapshots of the cases that changed)

A case file (tests/<case>.yaml beside template.yaml) gives values and what to expect:
  values: { name: billing, owner: group:default/payments }
  expect:
    files: { Dockerfile: { contains: EXPOSE 8080 }, .env: absent }
    output: { text: [{ title: Files }] }     # a subset of the rendered spec.output
    # or, for a case that must fail:  failure: { message: is required, step: fetch }
The files are also compared with tests/<case>.snapshot/ (unless `snapshot: false`).
Parameter defaults are filled in as the portal's form does. Each case is a dry run.";

/// `scaffolder test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// A template's directory, or a directory of them (each `template.yaml` with a
    /// `tests/` folder beside it).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Rewrite the snapshots that differ (and create missing ones) instead of failing.
    #[arg(long)]
    pub update: bool,
    #[command(flatten)]
    pub local: LocalPluginArgs,
}

/// The plugins a local run (`dry-run`, `test`) loads besides the built-ins.
#[derive(Debug, Args)]
pub struct LocalPluginArgs {
    /// A server configuration whose plugins, grants and default environment to use;
    /// repeat to layer files.
    #[arg(long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,
    /// An extra plugin: a component (`.wasm`), or a plugin's directory (a Rust crate or an
    /// npm package), built first as `plugin build` does; repeatable.
    #[arg(long = "plugin", value_name = "FILE|DIR")]
    pub plugins: Vec<PathBuf>,
    /// Where compiled plugins are cached (as for `serve`).
    #[arg(long, value_name = "DIR", env = "SCAFFOLDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin (a Rust crate or a TypeScript package): one action, tests and a README.
    #[command(
        after_help = "Examples:\n  scaffolder plugin new hello\n  scaffolder plugin new acme-tickets --description \"Opens tickets in Acme's tracker\"\n  scaffolder plugin new hello-ts --lang typescript\n\nThe plugin builds and passes its tests as created: `scaffolder plugin test hello`\n(a TypeScript package needs Node.js 20 or later and npm)."
    )]
    New(PluginNewArgs),
    /// Build a plugin (crate or TypeScript package) into a component, check it, show its digest.
    #[command(
        after_help = "Examples:\n  scaffolder plugin build hello\n  scaffolder plugin build            (the crate in the current directory)\n\nInstalls the wasm32-wasip2 target with rustup when it is missing."
    )]
    Build(PluginBuildArgs),
    /// Push a built plugin to an OCI registry; print the digests to pin.
    #[command(
        after_help = "Examples:\n  scaffolder plugin publish hello.wasm registry.example.com/platform/hello:1.0.0\n  scaffolder plugin publish hello.wasm 127.0.0.1:5000/plugins/hello:dev --insecure\n\nCredentials come from SCAFFOLDER_REGISTRY_USERNAME and SCAFFOLDER_REGISTRY_PASSWORD, or\nthe docker configuration, ~/.docker/config.json (or $DOCKER_CONFIG/config.json): its `auths`\nentry for the registry, or the credential helper its `credHelpers` or `credsStore` names."
    )]
    Publish(PluginPublishArgs),
    /// Sign a published plugin (cosign's key-based convention: a `sha256-<digest>.sig` tag).
    #[command(
        after_help = "Examples:\n  scaffolder plugin sign registry.example.com/platform/hello:1.0.0 --key scaffolder.key\n  cosign verify --key scaffolder.pub --insecure-ignore-tlog registry.example.com/platform/hello:1.0.0\n\nA server trusts the public key with scaffolder.pluginSignatures.keys (or signedBy per plugin)."
    )]
    Sign(PluginSignArgs),
    /// Create a key pair for signing plugins: a PKCS#8 private key and its public key.
    #[command(
        after_help = "Example:\n  scaffolder plugin keygen                      (scaffolder.key and scaffolder.pub)\n  scaffolder plugin keygen --key team.key --pub team.pub"
    )]
    Keygen(PluginKeygenArgs),
    /// Run a plugin's action in the real sandbox against a temporary workspace.
    #[command(after_help = PLUGIN_TEST_HELP)]
    Test(PluginTestArgs),
    /// List the plugins a running server uses: source, resolved digests, signer, actions.
    #[command(
        after_help = "Examples:\n  scaffolder plugin list\n  scaffolder plugin list --server https://scaffolder.example.com --token $SCAFFOLDER_TOKEN --json"
    )]
    List(PluginListArgs),
    /// Show a plugin's actions, schemas, requested capabilities, WIT version and digest.
    #[command(
        after_help = "Example:\n  scaffolder plugin inspect target/wasm32-wasip2/release/my_plugin.wasm"
    )]
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The plugin: its component (`.wasm`), or its directory (a Rust crate or an npm
    /// package), built first as `plugin build` builds it.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

const PLUGIN_TEST_HELP: &str = "\
Examples:
  scaffolder plugin test hello                      (every case in hello/tests/cases/*.yaml)
  scaffolder plugin test hello --action hello:greet --input '{\"name\": \"World\"}'
  scaffolder plugin test hello.wasm --action hello:greet --input @input.json --secret TOKEN

A case file names an action, its input, and what to expect:
  action: hello:greet
  input: { name: World }
  expect:
    output: { greeting: Hello, World! }
    files: { greeting.txt: \"Hello, World!\\n\" }
    # or, for a case that must fail:  failure: { kind: invalidInput, message: name }

Failure kinds: invalidInput, failed, denied, trap, timeout, outOfMemory, limitExceeded,
cancelled, host. The input is checked against the action's input schema first, as a
template step's is.

The sandbox is the production one: the workspace, the secrets given with --secret, the hosts
given with --allow-host, and the server's default limits; nothing else.";

#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// The template file (`template.yaml`); its directory holds its skeletons.
    pub template: PathBuf,
    /// Parameter values, YAML or JSON.
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// A parameter value; `a.b=x` sets a nested one. Typed as the template's schema says,
    /// otherwise read as YAML (`true`, `3`, `[a, b]`). Repeatable; wins over `--values`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// A task secret; `NAME` alone reads the environment variable NAME. Repeatable.
    #[arg(long = "secret", value_name = "NAME[=VALUE]")]
    pub secrets: Vec<String>,
    /// Write the files the template creates into this new or empty directory.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Run every action for real (publishing included) instead of a dry run.
    #[arg(long)]
    pub execute: bool,
    /// Print Backstage's dry-run response (`{ log, directoryContents, output, steps }`)
    /// instead of progress and a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub local: LocalPluginArgs,
}

#[derive(Debug, Args)]
pub struct PluginNewArgs {
    /// The plugin's name (lowercase, digits and dashes); also its directory and the
    /// prefix of its action ids.
    pub name: String,
    /// What the plugin is for, for its README and metadata.
    #[arg(long)]
    pub description: Option<String>,
    /// The language to write the plugin in: a Rust crate or a TypeScript package.
    #[arg(long, value_enum, default_value_t = PluginLanguage::Rust)]
    pub lang: PluginLanguage,
    /// Create the plugin here instead of `./NAME`.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The SDK to depend on: the `scaffolder-plugin-sdk` crate, or for TypeScript the
    /// `@scaffolder/plugin-sdk` package (default: the SDK of the source tree this binary was
    /// built from, `plugins/sdk` or `plugins/sdk-ts`).
    #[arg(long, value_name = "DIR", env = "SCAFFOLDER_PLUGIN_SDK")]
    pub sdk: Option<PathBuf>,
    /// Where compiled plugins are cached (as for `serve`).
    #[arg(long, value_name = "DIR", env = "SCAFFOLDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// See [`PluginNewArgs::lang`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PluginLanguage {
    Rust,
    #[value(alias = "ts")]
    Typescript,
}

#[derive(Debug, Args)]
pub struct PluginBuildArgs {
    /// The plugin: a Rust crate (a directory with `Cargo.toml`) or a TypeScript package (with
    /// `package.json`).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PluginPublishArgs {
    /// The plugin: its component (`.wasm`), or its directory (a Rust crate or an npm
    /// package), built first as `plugin build` builds it.
    pub file: PathBuf,
    /// Where to push it: `host[:port]/name:tag` (`oci://` optional).
    pub reference: String,
    /// Speak plain HTTP to the registry (a registry on loopback).
    #[arg(long)]
    pub insecure: bool,
    /// Also sign what was pushed with this private key (as `plugin sign` does).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PluginSignArgs {
    /// The published plugin: `host[:port]/name:tag` or `...@sha256:<manifest>`.
    pub reference: String,
    /// The private key (PKCS#8 PEM, as `plugin keygen` writes).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Speak plain HTTP to the registry (a registry on loopback).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct PluginListArgs {
    /// The server's base URL (its `backend.baseUrl`).
    #[arg(long, default_value = "http://127.0.0.1:7007", env = "SCAFFOLDER_URL")]
    pub server: String,
    /// A bearer token the server accepts.
    #[arg(long, env = "SCAFFOLDER_TOKEN")]
    pub token: Option<String>,
    /// Print the server's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PluginKeygenArgs {
    /// Where to write the private key (never overwritten).
    #[arg(long, value_name = "FILE", default_value = "scaffolder.key")]
    pub key: PathBuf,
    /// Where to write the public key (never overwritten).
    #[arg(long = "pub", value_name = "FILE", default_value = "scaffolder.pub")]
    pub public: PathBuf,
}

#[derive(Debug, Args)]
pub struct PluginTestArgs {
    /// A plugin crate (built first, as `plugin build` does) or a component (`.wasm`).
    #[arg(default_value = ".")]
    pub plugin: PathBuf,
    /// Run this action once instead of the crate's `tests/cases/*.yaml`.
    #[arg(long, requires = "input")]
    pub action: Option<String>,
    /// The action's input: JSON or YAML, or `@FILE`.
    #[arg(long, requires = "action")]
    pub input: Option<String>,
    /// Case files to run instead of `tests/cases/*.yaml`.
    #[arg(long = "case", value_name = "FILE", conflicts_with = "action")]
    pub cases: Vec<PathBuf>,
    /// A secret granted to the plugin; `NAME` alone reads the environment variable NAME.
    #[arg(long = "secret", value_name = "NAME[=VALUE]")]
    pub secrets: Vec<String>,
    /// An outbound HTTP origin the plugin may call (`https://api.example.com`).
    #[arg(long = "allow-host", value_name = "ORIGIN")]
    pub allow_hosts: Vec<String>,
    /// A TCP peer the plugin may connect to (`10.0.0.5:5432`).
    #[arg(long = "allow-tcp", value_name = "PEER")]
    pub allow_tcp: Vec<String>,
    /// Copy this directory into the workspace before the action runs.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Run the action as in a dry run (`ctx.is_dry_run()`).
    #[arg(long)]
    pub dry_run: bool,
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
    /// A plugin to load with no grants beyond the workspace: a component (`.wasm`), or a
    /// plugin's directory (a Rust crate or an npm package), built first as `plugin build`
    /// does; repeatable. Use `scaffolder.plugins` in the config to grant hosts, secrets or
    /// limits.
    #[arg(long = "plugin", value_name = "FILE|DIR")]
    pub plugins: Vec<PathBuf>,
    /// Where the SQLite database, workspaces and the compile cache live
    /// (`scaffolder.dataDirectory`; default `$XDG_DATA_HOME/scaffolder`).
    #[arg(long, value_name = "DIR", env = "SCAFFOLDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn check(command: &clap::Command, path: &str) {
            let help = command
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(help.contains("Example"), "`{path} --help` shows no example");
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        Cli::command().debug_assert();
        check(&Cli::command(), "scaffolder");
    }

    /// `plugin test --help` lists the failure kinds as case files spell them, all of them:
    /// the match has no catch-all, so a new kind does not compile until it is listed.
    #[test]
    fn the_plugin_test_help_lists_every_failure_kind() {
        use scaffolder_runtime::StepFailureKind as K;
        let kinds = [
            K::InvalidInput,
            K::Failed,
            K::Denied,
            K::Trap,
            K::Timeout,
            K::OutOfMemory,
            K::LimitExceeded,
            K::Cancelled,
            K::Host,
        ];
        for kind in kinds {
            match kind {
                K::InvalidInput
                | K::Failed
                | K::Denied
                | K::Trap
                | K::Timeout
                | K::OutOfMemory
                | K::LimitExceeded
                | K::Cancelled
                | K::Host => {}
            }
            let name = serde_json::to_value(kind).unwrap();
            let name = name.as_str().unwrap();
            let listed = super::PLUGIN_TEST_HELP
                .split_once("Failure kinds:")
                .map(|(_, rest)| rest.split('.').next().unwrap_or_default())
                .unwrap_or_default();
            assert!(
                listed.split([',', '\n', ' ']).any(|word| word == name),
                "{name} is not in the help's list of failure kinds: {listed}"
            );
        }
    }
}
