//! The plugin cache: components kept by digest under the data directory's `plugins/`
//! (with the manifest each came from and its verified signatures), so a restart with a warm
//! cache needs no registry, and the pin check shared by every remote source.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::Digest;

use crate::private_dir::private_subdir;
use crate::signing::StoredSignature;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
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
        private_subdir(dir)
            .and_then(|()| private_subdir(&dir.join("manifests")))
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
    pub(crate) fn manifest_of(&self, component_digest: &str) -> Option<String> {
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

    pub(crate) fn signatures(&self, manifest_digest: &str) -> Option<Vec<StoredSignature>> {
        let file = self
            .dir
            .join("signatures")
            .join(format!("{}.json", Self::name(manifest_digest)?));
        serde_json::from_slice(&std::fs::read(file).ok()?).ok()
    }

    pub(crate) fn store_signatures(
        &self,
        manifest_digest: &str,
        signatures: &[StoredSignature],
    ) -> anyhow::Result<()> {
        let Some(name) = Self::name(manifest_digest) else {
            return Ok(());
        };
        let dir = self.dir.join("signatures");
        private_subdir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        write_atomically(
            &dir.join(format!("{name}.json")),
            &serde_json::to_vec(signatures)?,
        )
    }

    pub(crate) fn manifest_layer(&self, manifest_digest: &str) -> Option<String> {
        let file = self
            .dir
            .join("manifests")
            .join(Self::name(manifest_digest)?);
        let text = std::fs::read_to_string(file).ok()?;
        Some(text.trim().to_owned())
    }

    pub(crate) fn store_manifest_layer(
        &self,
        manifest_digest: &str,
        layer: &str,
    ) -> anyhow::Result<()> {
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
