//! Plugins in OCI registries, in the community layout for WebAssembly artifacts: config
//! media type `application/vnd.wasm.config.v0+json`, one `application/wasm` layer, the
//! actions and requested capabilities as manifest annotations. `publish` pushes one;
//! `fetch` resolves a reference to its component, checks a digest pin against the layer
//! digest before downloading (so before anything is compiled), and keeps components in a
//! cache by digest, so a restart with a warm cache needs no registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use scaffolder_runtime::Plugin;
use sha2::Digest;

use crate::signing::{self, StoredSignature, TrustedKey};

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

/// Credentials for a registry: `SCAFFOLDER_REGISTRY_USERNAME`/`_PASSWORD`, else the
/// `auths` entry of the docker configuration (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`), else anonymous.
pub fn registry_auth(registry: &str) -> RegistryAuth {
    if let (Ok(user), Ok(password)) = (
        std::env::var("SCAFFOLDER_REGISTRY_USERNAME"),
        std::env::var("SCAFFOLDER_REGISTRY_PASSWORD"),
    ) {
        return RegistryAuth::Basic(user, password);
    }
    let config = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|dir| dir.join("config.json"));
    let auth = config
        .and_then(|file| std::fs::read(file).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|config| {
            let encoded = config
                .get("auths")?
                .get(registry)?
                .get("auth")?
                .as_str()?
                .to_owned();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, password) = text.split_once(':')?;
            Some(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
        });
    auth.unwrap_or(RegistryAuth::Anonymous)
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
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
    let auth = registry_auth(reference.resolve_registry());
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

/// A component found for a reference.
#[derive(Debug)]
pub struct Fetched {
    pub file: PathBuf,
    pub component_digest: String,
    /// The manifest the reference resolved to; `None` when the registry was not asked.
    pub manifest_digest: Option<String>,
    /// The fingerprint of the trusted key whose signature was verified.
    pub signed_by: Option<String>,
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
    let auth = registry_auth(reference.resolve_registry());
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

pub(crate) fn check_pin(
    source: &str,
    component_digest: &str,
    manifest_digest: Option<&str>,
    pin: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(pin) = pin
        && pin != component_digest
    {
        let manifest = manifest_digest
            .map(|m| format!(" (manifest {m})"))
            .unwrap_or_default();
        bail!(
            "refusing to load {source}: its component digest is {component_digest}{manifest} but the \
             configuration pins {pin}; nothing was compiled. If this build is the one you reviewed, \
             update the pin"
        );
    }
    Ok(())
}

/// `<dir>/sha256-<hex>.wasm` for components, `<dir>/manifests/sha256-<hex>` holding the
/// component digest of a manifest. Files are written whole, then renamed into place.
pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub(crate) fn new(dir: &Path) -> anyhow::Result<Self> {
        crate::setup::private_subdir(dir)
            .and_then(|()| crate::setup::private_subdir(&dir.join("manifests")))
            .with_context(|| format!("cannot create the plugin cache {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn name(digest: &str) -> Option<String> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("sha256-{hex}"))
    }

    /// The cached component with this digest, checked again on the way out.
    pub(crate) fn component(&self, digest: &str) -> Option<PathBuf> {
        let file = self.dir.join(format!("{}.wasm", Self::name(digest)?));
        let bytes = std::fs::read(&file).ok()?;
        (sha256_digest(&bytes) == digest).then_some(file)
    }

    pub(crate) fn store_component(&self, digest: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        let name = Self::name(digest).context("not a sha256 digest")?;
        let file = self.dir.join(format!("{name}.wasm"));
        write_atomically(&file, bytes)?;
        Ok(file)
    }

    /// The cached manifest whose layer is `component_digest`.
    fn manifest_of(&self, component_digest: &str) -> Option<String> {
        std::fs::read_dir(self.dir.join("manifests"))
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.trim() == component_digest))
            .and_then(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("sha256-")
                    .map(|hex| format!("sha256:{hex}"))
            })
    }

    fn signatures(&self, manifest_digest: &str) -> Option<Vec<StoredSignature>> {
        let file = self
            .dir
            .join("signatures")
            .join(format!("{}.json", Self::name(manifest_digest)?));
        serde_json::from_slice(&std::fs::read(file).ok()?).ok()
    }

    fn store_signatures(
        &self,
        manifest_digest: &str,
        signatures: &[StoredSignature],
    ) -> anyhow::Result<()> {
        let Some(name) = Self::name(manifest_digest) else {
            return Ok(());
        };
        let dir = self.dir.join("signatures");
        crate::setup::private_subdir(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        write_atomically(
            &dir.join(format!("{name}.json")),
            &serde_json::to_vec(signatures)?,
        )
    }

    fn manifest_layer(&self, manifest_digest: &str) -> Option<String> {
        let file = self
            .dir
            .join("manifests")
            .join(Self::name(manifest_digest)?);
        let text = std::fs::read_to_string(file).ok()?;
        Some(text.trim().to_owned())
    }

    fn store_manifest_layer(&self, manifest_digest: &str, layer: &str) -> anyhow::Result<()> {
        let Some(name) = Self::name(manifest_digest) else {
            return Ok(());
        };
        write_atomically(&self.dir.join("manifests").join(name), layer.as_bytes())
    }
}

/// Writes a file under the data directory whole, readable by its owner only.
fn write_atomically(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let partial = file.with_extension(format!("partial-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&partial)
        .and_then(|mut out| out.write_all(bytes))
        .and_then(|()| std::fs::rename(&partial, file))
        .with_context(|| format!("cannot write {}", file.display()))
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

    #[test]
    fn pins_name_both_digests() {
        let err = check_pin(
            "oci://r/x:1",
            "sha256:new",
            Some("sha256:m"),
            Some("sha256:old"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("sha256:new") && err.contains("sha256:old") && err.contains("sha256:m"),
            "{err}"
        );
        check_pin("oci://r/x:1", "sha256:same", None, Some("sha256:same")).unwrap();
        check_pin("oci://r/x:1", "sha256:any", None, None).unwrap();
    }

    #[test]
    fn the_cache_returns_only_intact_components() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path()).unwrap();
        let digest = sha256_digest(b"component");
        assert!(cache.component(&digest).is_none());
        let file = cache.store_component(&digest, b"component").unwrap();
        assert_eq!(cache.component(&digest), Some(file.clone()));
        std::fs::write(&file, b"tampered").unwrap();
        assert!(cache.component(&digest).is_none());
        assert!(cache.component("sha256:../../etc/passwd").is_none());
    }
}
