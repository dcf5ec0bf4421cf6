//! Plugins in OCI registries, in the community layout for WebAssembly artifacts: config
//! media type `application/vnd.wasm.config.v0+json`, one `application/wasm` layer, the
//! actions and requested capabilities as manifest annotations. `publish` pushes one;
//! `fetch` resolves a reference to its component, checks a digest pin against the layer
//! digest before downloading (so before anything is compiled), and keeps components in a
//! cache by digest, so a restart with a warm cache needs no registry.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::{Client, Reference};
use scaffolder_runtime::Plugin;

use crate::cache::{Cache, Fetched, check_pin, sha256_digest};
use crate::credentials::registry_auth;
use crate::signing::{self, TrustedKey};

pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Manifest annotation: the plugin's action ids, comma-separated.
pub const ACTIONS_ANNOTATION: &str = "dev.scaffolder.plugin.actions";
/// Manifest annotation: what the actions request (JSON, by action id).
pub const CAPABILITIES_ANNOTATION: &str = "dev.scaffolder.plugin.capabilities";

/// `oci://host[:port]/name[:tag][@sha256:...]`, the `oci://` optional.
pub fn parse_reference(text: &str) -> anyhow::Result<Reference> {
    let bare = text.strip_prefix("oci://").unwrap_or(text);
    bare.parse::<Reference>().with_context(|| {
        format!(
            "'{text}' is not an OCI reference; write host[:port]/name:tag or host/name@sha256:<hex>"
        )
    })
}

pub fn client(insecure: bool) -> Client {
    Client::new(ClientConfig {
        protocol: if insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..ClientConfig::default()
    })
}

/// What a push left in the registry.
pub struct Published {
    pub manifest_digest: String,
    pub component_digest: String,
}

/// Pushes a loaded plugin's component under `reference`.
pub async fn publish(
    plugin: &Plugin,
    bytes: Vec<u8>,
    reference: &Reference,
    insecure: bool,
) -> anyhow::Result<Published> {
    let component_digest = sha256_digest(&bytes);
    let actions: Vec<&str> = plugin
        .info()
        .actions
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    let capabilities: BTreeMap<&str, &scaffolder_runtime::Capabilities> = plugin
        .info()
        .actions
        .iter()
        .map(|a| (a.id.as_str(), &a.capabilities))
        .collect();
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let config = serde_json::json!({
        "created": created,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [component_digest],
        "component": {
            "exports": [format!("scaffolder:action/plugin@{}", plugin.wit_version())],
        },
    });
    let annotations: BTreeMap<String, String> = [
        ("org.opencontainers.image.created", created),
        ("org.opencontainers.image.title", plugin.name().to_owned()),
        (ACTIONS_ANNOTATION, actions.join(",")),
        (
            CAPABILITIES_ANNOTATION,
            serde_json::to_string(&capabilities)?,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let layers = vec![ImageLayer::new(
        bytes,
        WASM_LAYER_MEDIA_TYPE.to_owned(),
        None,
    )];
    let config = Config::new(
        serde_json::to_vec(&config)?,
        WASM_CONFIG_MEDIA_TYPE.to_owned(),
        None,
    );
    let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
    let client = client(insecure);
    let auth = registry_auth(reference.resolve_registry()).await;
    client
        .push(reference, &layers, config, &auth, Some(manifest))
        .await
        .with_context(|| format!("cannot push to {reference}{}", insecure_hint(insecure)))?;
    let manifest_digest = client
        .fetch_manifest_digest(reference, &auth)
        .await
        .with_context(|| format!("pushed, but cannot read back the digest of {reference}"))?;
    Ok(Published {
        manifest_digest,
        component_digest,
    })
}

pub fn insecure_hint(insecure: bool) -> &'static str {
    if insecure {
        ""
    } else {
        " (a registry that speaks plain HTTP, as on loopback, needs --insecure)"
    }
}

/// Resolves `reference` to its component, in `cache_dir` by digest. A `pin` (the
/// component's `sha256:`) is checked against the manifest's layer before the layer is
/// downloaded; with `trusted` keys, the manifest must carry a signature by one of them.
/// A digest reference already in the cache needs no registry; a tag always asks the
/// registry (so a moved tag is noticed), unless the registry cannot be reached and the
/// pinned component is cached. Signatures are cached too and checked again offline.
pub async fn fetch(
    text: &str,
    insecure: bool,
    pin: Option<&str>,
    trusted: &[TrustedKey],
    cache_dir: &Path,
) -> anyhow::Result<Fetched> {
    let reference = parse_reference(text)?;
    let cache = Cache::new(cache_dir)?;
    if let Some(manifest_digest) = reference.digest()
        && let Some(component_digest) = cache.manifest_layer(manifest_digest)
        && let Some(file) = cache.component(&component_digest)
        && (trusted.is_empty() || cache.signatures(manifest_digest).is_some())
    {
        check_pin(text, &component_digest, Some(manifest_digest), pin)?;
        let signed_by = verify_cached(text, manifest_digest, trusted, &cache)?;
        return Ok(Fetched {
            file,
            component_digest,
            manifest_digest: Some(manifest_digest.to_owned()),
            signed_by,
        });
    }
    let client = client(insecure);
    let auth = registry_auth(reference.resolve_registry()).await;
    let (manifest, manifest_digest) = match client.pull_image_manifest(&reference, &auth).await {
        Ok(found) => found,
        Err(err) => {
            if let Some(pin) = pin
                && let Some(file) = cache.component(pin)
            {
                let manifest_digest = cache.manifest_of(pin);
                let signed_by = match &manifest_digest {
                    Some(manifest) => verify_cached(text, manifest, trusted, &cache)?,
                    None if trusted.is_empty() => None,
                    None => bail!(
                        "cannot load {text}: the registry could not be asked ({err}), and no verified signature of the cached component is kept"
                    ),
                };
                tracing::warn!(
                    source = text,
                    digest = pin,
                    "the registry could not be asked ({err}); using the cached component the pin names"
                );
                return Ok(Fetched {
                    file,
                    component_digest: pin.to_owned(),
                    manifest_digest,
                    signed_by,
                });
            }
            return Err(anyhow::Error::new(err).context(format!(
                "cannot read the manifest of {text}{}",
                insecure_hint(insecure)
            )));
        }
    };
    let layer = wasm_layer(text, &manifest)?;
    check_pin(text, &layer.digest, Some(&manifest_digest), pin)?;
    let signed_by = if trusted.is_empty() {
        None
    } else {
        let signatures =
            signing::signatures_of(&client, &auth, &reference, &manifest_digest).await?;
        let key = signing::verify(text, &manifest_digest, signatures.as_deref(), trusted)?;
        cache.store_signatures(&manifest_digest, signatures.as_deref().unwrap_or_default())?;
        Some(key)
    };
    let file = match cache.component(&layer.digest) {
        Some(file) => file,
        None => {
            let mut bytes = Vec::new();
            client
                .pull_blob(&reference, layer, &mut bytes)
                .await
                .with_context(|| format!("cannot download the component of {text}"))?;
            let actual = sha256_digest(&bytes);
            if actual != layer.digest {
                bail!(
                    "refusing {text}: the registry sent a component with digest {actual}, but its \
                     manifest names {}",
                    layer.digest
                );
            }
            cache.store_component(&layer.digest, &bytes)?
        }
    };
    cache.store_manifest_layer(&manifest_digest, &layer.digest)?;
    Ok(Fetched {
        file,
        component_digest: layer.digest.clone(),
        manifest_digest: Some(manifest_digest),
        signed_by,
    })
}

/// Checks the signatures kept in the cache for `manifest_digest`, when keys are trusted.
fn verify_cached(
    text: &str,
    manifest_digest: &str,
    trusted: &[TrustedKey],
    cache: &Cache,
) -> anyhow::Result<Option<String>> {
    if trusted.is_empty() {
        return Ok(None);
    }
    let signatures = cache.signatures(manifest_digest);
    signing::verify(text, manifest_digest, signatures.as_deref(), trusted).map(Some)
}

/// The one `application/wasm` layer of a Wasm artifact.
fn wasm_layer<'a>(
    text: &str,
    manifest: &'a OciImageManifest,
) -> anyhow::Result<&'a oci_client::manifest::OciDescriptor> {
    let wasm: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
        .collect();
    match wasm.as_slice() {
        [layer] => Ok(layer),
        _ => bail!(
            "{text} is not a WebAssembly plugin artifact: it needs exactly one {WASM_LAYER_MEDIA_TYPE} \
             layer, and has layers of types [{}] (config {}); publish plugins with `scaffolder plugin publish`",
            manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            manifest.config.media_type
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_take_an_optional_scheme() {
        let reference = parse_reference("oci://127.0.0.1:5000/plugins/debug:1.0").unwrap();
        assert_eq!(reference.registry(), "127.0.0.1:5000");
        assert_eq!(reference.repository(), "plugins/debug");
        assert_eq!(reference.tag(), Some("1.0"));
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference = parse_reference(&format!("registry.example.com/debug@{digest}")).unwrap();
        assert_eq!(reference.digest(), Some(digest.as_str()));
        let err = parse_reference("oci://Not A Reference").unwrap_err();
        assert!(err.to_string().contains("host[:port]/name:tag"), "{err}");
    }
}
