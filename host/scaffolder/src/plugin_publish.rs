//! `scaffolder plugin publish FILE.wasm REF`: the plugin is loaded as the server would
//! load it (so a broken build is never published), then pushed as a Wasm OCI artifact.

use anyhow::Context;
use scaffolder_runtime::{PluginConfig, Runtime, RuntimeConfig};

use crate::cli::PluginPublishArgs;
use crate::oci;

pub async fn run(args: PluginPublishArgs) -> anyhow::Result<()> {
    let reference = oci::parse_reference(&args.reference)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let runtime = Runtime::new(&RuntimeConfig::default()).context("starting the wasm runtime")?;
    let plugin = runtime
        .load_file(&args.file, PluginConfig::default())
        .await
        .with_context(|| {
            format!(
                "{} is not a usable plugin; nothing was pushed",
                args.file.display()
            )
        })?;
    let published = oci::publish(&plugin, bytes, &reference, args.insecure).await?;
    println!("pushed {reference}");
    println!("  manifest:  {}", published.manifest_digest);
    println!("  component: {}", published.component_digest);
    println!("\nPin it in the server's configuration:\n");
    println!("scaffolder:\n  plugins:\n    - source: oci://{reference}");
    println!("      digest: {}", published.component_digest);
    if args.insecure {
        println!("      insecure: true");
    }
    Ok(())
}
