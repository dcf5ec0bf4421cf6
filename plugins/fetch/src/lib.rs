//! Backstage's `fetch:plain`, `fetch:plain:file`, `fetch:template` and
//! `fetch:template:file`: content from the template's location (or an `http(s)` URL)
//! copied into the workspace, skeletons rendered with `scaffolder-template`.
//!
//! - [`source`] decides where a `url` points and reads it: the template's directory
//!   (mounted read-only at `/template` for these actions) or `wasi:http` under the
//!   operator's grant. Directories cannot be downloaded yet, only single files.
//! - [`tree`] holds a template tree in memory and writes entries into the workspace.
//! - [`paths`] keeps every path a template chooses inside its parent directory.
//!
//! Input schemas are Backstage 4.2.0's, verbatim, in `schemas/`. All four actions run in
//! dry runs: they only ever write inside the workspace.
//!
//! What WASI 0.2 cannot express, this plugin cannot do: its filesystem has no permission
//! bits, so file modes (executable bits) of skeleton files are not kept.

mod plain;
mod source;
mod template;
mod tree;

use scaffolder_plugin_sdk::{ActionInfo, plugin};

/// What every fetch action declares: its schema, dry-run support, the template's
/// directory, and outbound HTTP to any origin on any port (what is reachable is decided
/// by the operator's grant). They change nothing outside the workspace, but may
/// overwrite files in it.
fn fetch_action(description: &str, input_schema: &str) -> ActionInfo {
    ActionInfo::new(description)
        .input_schema(
            serde_json::from_str(input_schema).expect("the bundled input schemas are JSON"),
        )
        .supports_dry_run()
        .requests_template_directory()
        .requests_http("https://*:*")
        .requests_http("http://*:*")
        .read_only()
        .destructive(true)
}

plugin!(
    plain::FetchPlain,
    plain::FetchPlainFile,
    template::FetchTemplate,
    template::FetchTemplateFile
);
