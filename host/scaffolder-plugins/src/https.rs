//! Plugins at `https://` URLs (plain `http://` only with `insecure: true`, for loopback),
//! downloaded into the same digest-keyed cache as OCI components. A pin whose component
//! is cached downloads nothing; otherwise the download is checked against the pin before
//! anything is compiled. Signatures live in OCI registries, so a URL source cannot meet a
//! signature requirement and is refused when one applies.

use std::path::Path;

use anyhow::{Context, bail};

use crate::cache::{Cache, Fetched, check_pin, sha256_digest};

/// The component at `url`, from the cache when `pin` names a cached one.
pub async fn fetch_url(
    url: &str,
    insecure: bool,
    pin: Option<&str>,
    signatures_required: bool,
    cache_dir: &Path,
) -> anyhow::Result<Fetched> {
    if signatures_required {
        bail!(
            "refusing to load {url}: the configuration requires signed plugins, and signatures are \
             kept in OCI registries; publish it with `scaffolder plugin publish --sign` and use an \
             oci:// source"
        );
    }
    if url.starts_with("http://") && !insecure {
        bail!(
            "{url} is plain HTTP; use https://, or set `insecure: true` for a server on loopback"
        );
    }
    let cache = Cache::new(cache_dir)?;
    if let Some(pin) = pin
        && let Some(file) = cache.component(pin)
    {
        return Ok(Fetched {
            file,
            component_digest: pin.to_owned(),
            manifest_digest: None,
            signed_by: None,
        });
    }
    let response = reqwest::get(url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("cannot download {url}"))?;
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("cannot download {url}"))?;
    let digest = sha256_digest(&bytes);
    check_pin(url, &digest, None, pin)?;
    let file = cache.store_component(&digest, &bytes)?;
    Ok(Fetched {
        file,
        component_digest: digest,
        manifest_digest: None,
        signed_by: None,
    })
}
