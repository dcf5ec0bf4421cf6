//! Publishing plugins: `plugin publish FILE.wasm|DIR REF` (a directory is built first; the
//! plugin is loaded as the server would load it, so a broken build is never published,
//! then pushed as a Wasm OCI artifact), `plugin sign REF --key KEY` and `plugin keygen`.

use anyhow::Context;
use scaffolder_runtime::{PluginConfig, Runtime, RuntimeConfig};

use crate::cli::{PluginKeygenArgs, PluginPublishArgs, PluginSignArgs};
use scaffolder_plugins::{directory, oci, signing};

pub async fn run(args: PluginPublishArgs) -> anyhow::Result<()> {
    let reference = oci::parse_reference(&args.reference)?;
    let component = directory::component(&args.file)?;
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    let runtime = Runtime::new(&RuntimeConfig::default()).context("starting the wasm runtime")?;
    let plugin = runtime
        .load_file(&component, PluginConfig::default())
        .await
        .with_context(|| {
            format!(
                "{} is not a usable plugin; nothing was pushed",
                component.display()
            )
        })?;
    // A key that cannot be read fails before anything is pushed.
    let key = args
        .sign
        .as_deref()
        .map(signing::load_signing_key)
        .transpose()?;
    let published = oci::publish(&plugin, bytes, &reference, args.insecure).await?;
    println!("pushed {reference}");
    println!("  manifest:  {}", published.manifest_digest);
    println!("  component: {}", published.component_digest);
    if let Some(key) = &key {
        let pinned = pinned_reference(&reference, &published.manifest_digest)?;
        signing::sign(&pinned, key, args.insecure).await?;
        println!("  signed by: {}", signing::fingerprint(key.verifying_key()));
    }
    println!("\nPin it in the server's configuration:\n");
    println!("scaffolder:\n  plugins:\n    - source: oci://{reference}");
    println!("      digest: {}", published.component_digest);
    if args.insecure {
        println!("      insecure: true");
    }
    Ok(())
}

/// `reference` pinned to `manifest_digest`, so a signature names exactly what was pushed
/// even if the tag moves meanwhile.
fn pinned_reference(
    reference: &oci_client::Reference,
    manifest_digest: &str,
) -> anyhow::Result<oci_client::Reference> {
    Ok(oci_client::Reference::with_digest(
        reference.registry().to_owned(),
        reference.repository().to_owned(),
        manifest_digest.to_owned(),
    ))
}

pub async fn sign(args: PluginSignArgs) -> anyhow::Result<()> {
    let reference = oci::parse_reference(&args.reference)?;
    let key = signing::load_signing_key(&args.key)?;
    let manifest = signing::sign(&reference, &key, args.insecure).await?;
    println!(
        "signed {reference} (manifest {manifest}) with {}",
        signing::fingerprint(key.verifying_key())
    );
    Ok(())
}

pub fn keygen(args: PluginKeygenArgs) -> anyhow::Result<()> {
    let fingerprint = signing::generate(&args.key, &args.public)?;
    println!(
        "wrote {} (private: keep it secret) and {} (public: give it to servers), key {fingerprint}",
        args.key.display(),
        args.public.display()
    );
    println!("\nTrust it in the server's configuration:\n");
    println!(
        "scaffolder:\n  pluginSignatures:\n    keys: [{}]",
        args.public.display()
    );
    Ok(())
}
