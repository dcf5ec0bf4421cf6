//! `scaffolder plugin inspect`: loads a plugin exactly as the server would (with no
//! grants; a directory is built first) and prints what it declares; `scaffolder plugin list`: what a running server
//! has loaded (`GET /api/scaffolder/v2/plugins`).

use std::fmt::Write;

use anyhow::Context;
use scaffolder_runtime::{ActionInfo, Plugin, PluginConfig, Runtime, RuntimeConfig};

use crate::cli::{InspectArgs, PluginListArgs};
use scaffolder_plugins::directory;

pub async fn run(args: InspectArgs) -> anyhow::Result<()> {
    let component = directory::component(&args.file)?;
    let runtime = Runtime::new(&RuntimeConfig::default()).context("starting the wasm runtime")?;
    let plugin = runtime
        .load_file(&component, PluginConfig::default())
        .await
        .with_context(|| format!("{} is not a usable plugin", component.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&plugin))?);
    } else {
        print!("{}", as_text(&plugin));
    }
    Ok(())
}

pub fn as_json(plugin: &Plugin) -> serde_json::Value {
    serde_json::json!({
        "file": plugin.name(),
        "digest": plugin.digest(),
        "witPackage": format!("scaffolder:action@{}", plugin.wit_version()),
        "actions": plugin.info().actions,
    })
}

pub fn as_text(plugin: &Plugin) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "plugin:  {}", plugin.name());
    let _ = writeln!(out, "digest:  {}", plugin.digest());
    let _ = writeln!(out, "wit:     scaffolder:action@{}", plugin.wit_version());
    let _ = writeln!(out, "actions: {}", plugin.info().actions.len());
    for action in &plugin.info().actions {
        out.push('\n');
        write_action(&mut out, action);
    }
    out
}

fn write_action(out: &mut String, action: &ActionInfo) {
    let a = &action.attributes;
    let _ = writeln!(out, "{}", action.id);
    let _ = writeln!(out, "  {}", action.description);
    let _ = writeln!(
        out,
        "  dry run: {}   read-only: {}   destructive: {}   idempotent: {}",
        yes_no(action.supports_dry_run),
        yes_no(a.read_only),
        yes_no(a.destructive),
        yes_no(a.idempotent)
    );
    let caps = &action.capabilities;
    let _ = writeln!(out, "  requests:");
    let _ = writeln!(out, "    workspace (read-write)");
    if caps.template_directory {
        let _ = writeln!(out, "    template directory (read-only)");
    }
    for origin in &caps.outbound_http {
        let _ = writeln!(out, "    outbound HTTP  {origin}");
    }
    for peer in &caps.tcp {
        let _ = writeln!(out, "    TCP            {peer}");
    }
    for secret in &caps.secrets {
        let _ = writeln!(out, "    secret         {secret}");
    }
    let _ = writeln!(out, "  input schema:");
    write_indented(out, &action.input_schema);
    if let Some(output) = &action.output_schema {
        let _ = writeln!(out, "  output schema:");
        write_indented(out, output);
    }
    for example in &action.examples {
        let _ = writeln!(out, "  example: {}", example.description);
        for line in example.example.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
}

fn write_indented(out: &mut String, value: &serde_json::Value) {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    for line in pretty.lines() {
        let _ = writeln!(out, "    {line}");
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub async fn list(args: PluginListArgs) -> anyhow::Result<()> {
    let url = format!(
        "{}{}/v2/plugins",
        args.server.trim_end_matches('/'),
        scaffolder_api::BASE_PATH
    );
    let mut request = reqwest::Client::new().get(&url);
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.with_context(|| {
        format!("cannot reach the server at {url}; is it running (--server URL)?")
    })?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer with JSON; is --server a scaffolder?"))?;
    if !status.is_success() {
        let message = body
            .pointer("/error/message")
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        anyhow::bail!(
            "{url} answered {status}: {message} (a token goes in --token or SCAFFOLDER_TOKEN)"
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let field = |plugin: &serde_json::Value, name: &str| {
        plugin
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_owned()
    };
    for plugin in body["plugins"].as_array().into_iter().flatten() {
        let actions: Vec<&str> = plugin["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        println!("{}", field(plugin, "source"));
        println!("  digest:    {}", field(plugin, "digest"));
        if plugin["manifestDigest"].is_string() {
            println!("  manifest:  {}", field(plugin, "manifestDigest"));
        }
        if plugin["signedBy"].is_string() {
            println!("  signed by: {}", field(plugin, "signedBy"));
        }
        println!("  actions:   {}", actions.join(", "));
    }
    Ok(())
}
