//! `scaffolder plugin build [DIR]`: builds a plugin (`scaffolder_plugins::directory`), loads
//! the component exactly as the server loads it (exports, WIT version, metadata checked),
//! and prints its digest and requested capabilities.

use anyhow::Context;
use scaffolder_plugins::directory;
use scaffolder_runtime::{PluginConfig, Runtime, RuntimeConfig};

use crate::cli::PluginBuildArgs;
use crate::plugin_inspect;

pub async fn run(args: PluginBuildArgs) -> anyhow::Result<()> {
    let component = directory::build(&args.dir)?;
    let runtime = Runtime::new(&RuntimeConfig::default()).context("starting the wasm runtime")?;
    let plugin = runtime
        .load_file(&component, PluginConfig::default())
        .await
        .with_context(|| {
            format!(
                "{} was built but is not a usable plugin; it must export the scaffolder:action \
                 world (Rust: scaffolder-plugin-sdk's plugin! macro; TypeScript: \
                 @scaffolder/plugin-sdk's definePlugin)",
                component.display()
            )
        })?;
    if args.json {
        let mut json = plugin_inspect::as_json(&plugin);
        json["component"] = component.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("component: {}", component.display());
        print!("{}", plugin_inspect::as_text(&plugin));
    }
    Ok(())
}
