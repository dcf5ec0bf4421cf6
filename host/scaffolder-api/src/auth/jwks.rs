//! JSON Web Key Sets and JWT verification: one cache per key set URL (refetched when old,
//! or at most every 30 s for an unknown `kid`), the keys that fit a token's header, and the
//! wording of why a token does not verify.

use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Header, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// An unknown `kid` refetches a key set at most this often (key rotation without a fetch storm).
pub(super) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Cached keys older than this are refetched before use, so that removed keys stop verifying.
pub(super) const KEYS_MAX_AGE: Duration = Duration::from_secs(600);

pub(super) const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Clock skew allowed on `exp` and `nbf`.
pub(super) const LEEWAY_SECS: u64 = 60;

/// Every algorithm the `rust_crypto` backend verifies with a public key.
pub(super) const ASYMMETRIC_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// `typ` header values of Backstage tokens (`tokenTypes` in `@backstage/plugin-auth-node`).
pub(super) const TYP_USER: &str = "vnd.backstage.user";

pub(super) const TYP_LIMITED_USER: &str = "vnd.backstage.limited-user";

pub(super) const TYP_PLUGIN: &str = "vnd.backstage.plugin";

pub(super) fn jwks_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(JWKS_FETCH_TIMEOUT)
        .build()
        .expect("the HTTP client for JWKS builds (rustls with bundled roots needs no system state)")
}

/// The claims we read; `jsonwebtoken` validates `exp`, `nbf`, `iss` and `aud` itself.
#[derive(Deserialize)]
pub(super) struct Claims {
    pub(super) sub: Option<String>,
    pub(super) iat: Option<serde_json::Value>,
    /// A plugin token's "on behalf of": the limited token of the user the plugin acts for.
    pub(super) obo: Option<String>,
}

/// Verifies `token` with the keys of `keys` that fit its header, returning the claims or why not.
pub(super) async fn verify(
    keys: &KeySet,
    token: &str,
    header: &Header,
    validation: &Validation,
) -> Result<Claims, String> {
    if !validation.algorithms.contains(&header.alg) {
        return Err(format!(
            "algorithm {:?} is not accepted for keys of {}",
            header.alg, keys.url
        ));
    }
    let candidates = keys.candidates(header).await?;
    if candidates.is_empty() {
        return Err(format!(
            "no key of {} matches the token's key id and algorithm",
            keys.url
        ));
    }
    // `jsonwebtoken` wants every listed algorithm in the key's family: list just the token's, checked above.
    let validation = Validation {
        algorithms: vec![header.alg],
        ..validation.clone()
    };
    for key in &candidates {
        match jsonwebtoken::decode::<Claims>(token, key, &validation) {
            Ok(data) => return Ok(data.claims),
            // Another key with the same id (or no id) may still fit.
            Err(error) if is_signature_error(&error) => continue,
            // The signature verified; the claims are wrong.
            Err(error) => return Err(describe_claim_error(&error, &keys.url)),
        }
    }
    Err(format!(
        "signature does not verify against any key of {}",
        keys.url
    ))
}

pub(super) fn is_signature_error(error: &jsonwebtoken::errors::Error) -> bool {
    use jsonwebtoken::errors::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidAlgorithm
    )
}

pub(super) fn describe_claim_error(error: &jsonwebtoken::errors::Error, url: &str) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "token has expired".to_owned(),
        ErrorKind::ImmatureSignature => {
            "token is not valid yet ('nbf' is in the future)".to_owned()
        }
        ErrorKind::InvalidIssuer => {
            format!("token issuer does not match the one configured for {url}")
        }
        ErrorKind::InvalidAudience => {
            format!("token audience does not match the one configured for {url}")
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("token has no '{claim}' claim"),
        other => format!("malformed token ({other:?})"),
    }
}

/// One JSON Web Key Set URL and its in-memory cache.
pub(super) struct KeySet {
    pub(super) url: String,
    http: reqwest::Client,
    refetch_interval: Duration,
    /// Held across a fetch, so concurrent requests wait for one fetch instead of each starting one.
    cache: Mutex<KeyCache>,
}

#[derive(Default)]
pub(super) struct KeyCache {
    keys: Vec<Jwk>,
    /// When `keys` was last fetched successfully; `None` before the first fetch.
    fetched_at: Option<Instant>,
}

impl KeySet {
    /// A key set fetched from `url` on first use; an unknown `kid` refetches it at most
    /// once per `refetch_interval`.
    pub(super) fn new(url: String, http: reqwest::Client, refetch_interval: Duration) -> Self {
        Self {
            url,
            http,
            refetch_interval,
            cache: Mutex::new(KeyCache::default()),
        }
    }

    /// Decoding keys that may have signed a token with this header: same `kid` (any key when the
    /// token has none), compatible algorithm, curve and use. Fetches the set when it was never
    /// fetched or is older than [`KEYS_MAX_AGE`], and refetches it when nothing fits, at most once
    /// per `refetch_interval` (a rotated key appears in the set before tokens signed with it).
    async fn candidates(&self, header: &Header) -> Result<Vec<DecodingKey>, String> {
        let mut cache = self.cache.lock().await;
        let is_stale = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= KEYS_MAX_AGE);
        if is_stale {
            self.refresh(&mut cache).await?;
        }
        let mut found = matching_keys(&cache.keys, header);
        let may_refetch = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.refetch_interval);
        if found.is_empty() && !is_stale && may_refetch {
            self.refresh(&mut cache).await?;
            found = matching_keys(&cache.keys, header);
        }
        Ok(found)
    }

    async fn refresh(&self, cache: &mut KeyCache) -> Result<(), String> {
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "fetched JWKS");
                *cache = KeyCache {
                    keys,
                    fetched_at: Some(Instant::now()),
                };
                Ok(())
            }
            Err(error) => {
                tracing::warn!(url = %self.url, error = %error, "cannot fetch JWKS");
                Err(format!("cannot fetch keys from {}: {error}", self.url))
            }
        }
    }

    /// GETs the set; keys that do not parse as JWKs (unknown curves, say) are skipped, not fatal.
    async fn fetch(&self) -> Result<Vec<Jwk>, reqwest::Error> {
        #[derive(Deserialize)]
        struct RawKeySet {
            keys: Vec<serde_json::Value>,
        }
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(reqwest::Error::without_url)?;
        let set: RawKeySet = response
            .error_for_status()
            .map_err(reqwest::Error::without_url)?
            .json()
            .await
            .map_err(reqwest::Error::without_url)?;
        Ok(set
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value(key).ok())
            .collect())
    }
}

pub(super) fn matching_keys(keys: &[Jwk], header: &Header) -> Vec<DecodingKey> {
    keys.iter()
        .filter(|jwk| match &header.kid {
            Some(kid) => jwk.common.key_id.as_deref() == Some(kid),
            None => true,
        })
        .filter(|jwk| key_fits(jwk, header.alg))
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .collect()
}

/// Whether `jwk` can verify `alg` signatures: declared `alg` and `use` agree, key type and curve fit.
pub(super) fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if jwk
        .common
        .key_algorithm
        .is_some_and(|declared| Algorithm::try_from(declared).ok() != Some(alg))
    {
        return false;
    }
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|key_use| *key_use != PublicKeyUse::Signature)
    {
        return false;
    }
    match (&jwk.algorithm, alg.family()) {
        (AlgorithmParameters::EllipticCurve(ec), AlgorithmFamily::Ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        (AlgorithmParameters::RSA(_), AlgorithmFamily::Rsa) => true,
        (AlgorithmParameters::OctetKeyPair(okp), AlgorithmFamily::Ed) => {
            okp.curve == EllipticCurve::Ed25519
        }
        // Symmetric (`oct`) keys and unknown key types never verify anything.
        _ => false,
    }
}
