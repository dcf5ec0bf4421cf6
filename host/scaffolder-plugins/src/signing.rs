//! Plugin signatures in cosign's key-based convention, so standard tooling can check
//! them: the signature of a manifest `sha256:<hex>` lives in the same repository under
//! the tag `sha256-<hex>.sig`, as an image whose layers are simple-signing payloads
//! (`application/vnd.dev.cosign.simplesigning.v1+json`) naming the manifest digest, each
//! with its ECDSA P-256 signature (base64 DER) in the `dev.cosignproject.cosign/signature`
//! annotation. Keys are PEM: PKCS#8 private keys, SPKI public keys (`cosign.pub` works).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_client::client::{Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::{Deserialize, Serialize};

use crate::cache::sha256_digest;
use crate::{credentials, oci};

pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// One signature as stored: the payload and the signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSignature {
    /// The simple-signing payload, base64.
    pub payload: String,
    /// The ECDSA signature (DER), base64.
    pub signature: String,
}

/// A public key the configuration trusts, with a short name for messages.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub key: VerifyingKey,
    /// `sha256:` of the SPKI DER, shortened: what messages call the key.
    pub fingerprint: String,
}

impl TrustedKey {
    /// A PEM public key given inline or as a file path.
    pub fn load(spec: &str) -> anyhow::Result<Self> {
        let pem = if spec.trim_start().starts_with("-----BEGIN") {
            spec.to_owned()
        } else {
            std::fs::read_to_string(spec)
                .with_context(|| format!("cannot read the public key {spec}"))?
        };
        let key = VerifyingKey::from_public_key_pem(&pem).with_context(|| {
            format!("{} is not a PEM ECDSA P-256 public key (as `scaffolder plugin keygen` or `cosign generate-key-pair` writes)", short(spec))
        })?;
        Ok(Self {
            fingerprint: fingerprint(&key),
            key,
        })
    }
}

fn short(spec: &str) -> String {
    if spec.len() > 60 {
        format!("{}…", &spec[..60])
    } else {
        spec.to_owned()
    }
}

/// `sha256:<first 16 hex>` of the key's SPKI DER.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    let digest = sha256_digest(&der);
    digest[..("sha256:".len() + 16)].to_owned()
}

/// Writes a new key pair: `private` (PKCS#8 PEM, mode 0600) and `public` (SPKI PEM).
pub fn generate(private: &Path, public: &Path) -> anyhow::Result<String> {
    for file in [private, public] {
        if file.exists() {
            bail!(
                "{} exists; choose another name, or remove it first",
                file.display()
            );
        }
    }
    let key = SigningKey::random(&mut rand_core::OsRng);
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the private key")?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the public key")?;
    write_private(private, private_pem.as_bytes())?;
    std::fs::write(public, public_pem)
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok(fingerprint(key.verifying_key()))
}

#[cfg(unix)]
fn write_private(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    out.write_all(bytes)
        .with_context(|| format!("cannot write {}", file.display()))
}

#[cfg(not(unix))]
fn write_private(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(file, bytes).with_context(|| format!("cannot write {}", file.display()))
}

pub fn load_signing_key(file: &Path) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the key {}", file.display()))?;
    SigningKey::from_pkcs8_pem(&pem).with_context(|| {
        format!(
            "{} is not an unencrypted PKCS#8 PEM ECDSA P-256 private key (`scaffolder plugin keygen` writes one)",
            file.display()
        )
    })
}

/// cosign's simple-signing payload for `manifest_digest` in `repository`.
fn payload(repository: &str, manifest_digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": manifest_digest },
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap_or_default()
}

/// The reference of the signature image of `manifest_digest` next to `reference`.
fn signature_reference(reference: &Reference, manifest_digest: &str) -> anyhow::Result<Reference> {
    let hex = manifest_digest
        .strip_prefix("sha256:")
        .context("only sha256 manifests can be signed")?;
    Ok(Reference::with_tag(
        reference.registry().to_owned(),
        reference.repository().to_owned(),
        format!("sha256-{hex}.sig"),
    ))
}

/// Signs the manifest `reference` resolves to and pushes the signature beside it,
/// keeping signatures already there. Returns the signed manifest digest.
pub async fn sign(
    reference: &Reference,
    key: &SigningKey,
    insecure: bool,
) -> anyhow::Result<String> {
    let client = oci::client(insecure);
    let auth = credentials::registry_auth(reference.resolve_registry()).await;
    let manifest_digest = client
        .fetch_manifest_digest(reference, &auth)
        .await
        .with_context(|| format!("cannot resolve {reference}{}", oci::insecure_hint(insecure)))?;
    let repository = format!("{}/{}", reference.registry(), reference.repository());
    let payload = payload(&repository, &manifest_digest);
    let signature: Signature = key.sign(&payload);
    let new = StoredSignature {
        payload: BASE64.encode(&payload),
        signature: BASE64.encode(signature.to_der().as_bytes()),
    };
    let target = signature_reference(reference, &manifest_digest)?;
    let mut all = fetch_signatures(&client, &auth, &target)
        .await?
        .unwrap_or_default();
    if !all.contains(&new) {
        all.push(new);
    }
    let layers: Vec<ImageLayer> = all
        .iter()
        .map(|s| {
            let data = BASE64.decode(&s.payload).unwrap_or_default();
            let annotations =
                BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), s.signature.clone())]);
            ImageLayer::new(data, PAYLOAD_MEDIA_TYPE.to_owned(), Some(annotations))
        })
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(&l.data)).collect();
    let config = Config::new(
        serde_json::to_vec(&serde_json::json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": { "type": "layers", "diff_ids": diff_ids }
        }))?,
        "application/vnd.oci.image.config.v1+json".to_owned(),
        None,
    );
    let manifest = OciImageManifest::build(&layers, &config, None);
    client
        .push(&target, &layers, config, &auth, Some(manifest))
        .await
        .with_context(|| format!("cannot push the signature to {target}"))?;
    Ok(manifest_digest)
}

/// The signatures stored at `target` (a `.sig` tag), or `None` when it has none. Uses
/// the caller's client, so a registry's token is fetched once.
async fn fetch_signatures(
    client: &Client,
    auth: &RegistryAuth,
    target: &Reference,
) -> anyhow::Result<Option<Vec<StoredSignature>>> {
    let manifest = match client.pull_image_manifest(target, auth).await {
        Ok((manifest, _)) => manifest,
        Err(err) if is_not_found(&err) => return Ok(None),
        Err(err) => {
            return Err(
                anyhow::Error::new(err).context(format!("cannot read the signatures at {target}"))
            );
        }
    };
    let mut signatures = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
    {
        let Some(signature) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        let mut payload = Vec::new();
        client
            .pull_blob(target, layer, &mut payload)
            .await
            .with_context(|| format!("cannot download a signature payload from {target}"))?;
        signatures.push(StoredSignature {
            payload: BASE64.encode(payload),
            signature: signature.clone(),
        });
    }
    Ok(Some(signatures))
}

/// Whether the registry said the manifest does not exist (no signature yet).
fn is_not_found(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::ManifestUnknown),
        _ => false,
    }
}

/// The signatures of `manifest_digest` in `reference`'s repository (`None`: unsigned).
pub async fn signatures_of(
    client: &Client,
    auth: &RegistryAuth,
    reference: &Reference,
    manifest_digest: &str,
) -> anyhow::Result<Option<Vec<StoredSignature>>> {
    fetch_signatures(
        client,
        auth,
        &signature_reference(reference, manifest_digest)?,
    )
    .await
}

/// The fingerprint of the first trusted key that signed `manifest_digest`, or why none did.
pub fn verify(
    source: &str,
    manifest_digest: &str,
    signatures: Option<&[StoredSignature]>,
    trusted: &[TrustedKey],
) -> anyhow::Result<String> {
    let names = trusted
        .iter()
        .map(|k| k.fingerprint.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let Some(signatures) = signatures.filter(|s| !s.is_empty()) else {
        bail!(
            "refusing to load {source}: it is not signed (its manifest {manifest_digest} has no \
             signature), and the configuration requires one by {names}; sign it with \
             `scaffolder plugin sign {} --key KEY`",
            source.strip_prefix("oci://").unwrap_or(source)
        );
    };
    for stored in signatures {
        let (Ok(payload), Ok(der)) = (
            BASE64.decode(&stored.payload),
            BASE64.decode(&stored.signature),
        ) else {
            continue;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            continue;
        };
        let names_this_manifest = serde_json::from_slice::<serde_json::Value>(&payload)
            .ok()
            .and_then(|p| {
                p.pointer("/critical/image/docker-manifest-digest")
                    .and_then(|d| d.as_str())
                    .map(|d| d == manifest_digest)
            })
            .unwrap_or(false);
        if !names_this_manifest {
            continue;
        }
        if let Some(key) = trusted
            .iter()
            .find(|k| k.key.verify(&payload, &signature).is_ok())
        {
            return Ok(key.fingerprint.clone());
        }
    }
    bail!(
        "refusing to load {source}: none of its {} signature(s) on manifest {manifest_digest} was made \
         by a key the configuration trusts ({names})",
        signatures.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(key: &SigningKey, manifest: &str) -> StoredSignature {
        let payload = payload("r/x", manifest);
        let signature: Signature = key.sign(&payload);
        StoredSignature {
            payload: BASE64.encode(&payload),
            signature: BASE64.encode(signature.to_der().as_bytes()),
        }
    }

    fn trusted(key: &SigningKey) -> TrustedKey {
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        TrustedKey::load(&pem).unwrap()
    }

    #[test]
    fn a_trusted_signature_of_this_manifest_verifies() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let other = SigningKey::random(&mut rand_core::OsRng);
        let good = stored(&key, "sha256:aa");
        let by_key = verify(
            "oci://r/x:1",
            "sha256:aa",
            Some(std::slice::from_ref(&good)),
            &[trusted(&key)],
        );
        assert_eq!(by_key.unwrap(), trusted(&key).fingerprint);

        let err = verify(
            "oci://r/x:1",
            "sha256:aa",
            Some(std::slice::from_ref(&good)),
            &[trusted(&other)],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("none of its 1 signature(s)"),
            "{err}"
        );
        // A valid signature of another manifest does not count.
        let err = verify("oci://r/x:1", "sha256:bb", Some(&[good]), &[trusted(&key)]).unwrap_err();
        assert!(err.to_string().contains("none of its"), "{err}");
        let err = verify("oci://r/x:1", "sha256:aa", None, &[trusted(&key)]).unwrap_err();
        assert!(err.to_string().contains("it is not signed"), "{err}");
        assert!(
            err.to_string()
                .contains("scaffolder plugin sign r/x:1 --key KEY"),
            "{err}"
        );
    }

    #[test]
    fn keys_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        let fingerprint = generate(&private, &public).unwrap();
        let key = load_signing_key(&private).unwrap();
        let trusted = TrustedKey::load(public.to_str().unwrap()).unwrap();
        assert_eq!(trusted.fingerprint, fingerprint);
        assert_eq!(&trusted.key, key.verifying_key());
        assert!(
            generate(&private, &dir.path().join("other.pub")).is_err(),
            "never overwrites"
        );
        let err = TrustedKey::load(private.to_str().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("not a PEM ECDSA P-256 public key"),
            "{err}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
