//! [`Authenticator`]: a request's `Authorization` header to a [`Principal`], trying the
//! credentials in the order the module comment of `auth` gives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::config::{AuthConfig, JwksAccess, parse_asymmetric_algorithm};
use super::jwks::{
    ASYMMETRIC_ALGORITHMS, Claims, KeySet, LEEWAY_SECS, MIN_REFETCH_INTERVAL, TYP_LIMITED_USER,
    TYP_PLUGIN, TYP_USER, jwks_client, verify,
};
use super::principal::{AuthError, Principal, PrincipalKind};

/// Authenticates requests against an [`AuthConfig`]; cheap to clone, shares its key caches.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl Authenticator {
    /// Builds an authenticator; key sets are fetched on first use, not here.
    ///
    /// Call [`AuthConfig::validate`] first: entries it would reject do not fail here, they simply
    /// never authenticate anyone (an unknown algorithm name accepts nothing).
    pub fn new(config: AuthConfig) -> Self {
        Self::with_refetch_interval(config, MIN_REFETCH_INTERVAL)
    }

    /// Authenticates one request; `authorization` is the raw `Authorization` header value, if any.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let Some(header) = authorization else {
            return if self.inner.allow_anonymous {
                Ok(Principal {
                    kind: PrincipalKind::Anonymous,
                    token: None,
                })
            } else {
                Err(AuthError::new("Missing credentials"))
            };
        };
        let token = bearer_token(header)?;
        if self.inner.serve_unverified_tokens {
            return Ok(self.inner.unverified(token));
        }
        let kind = self.inner.principal_for(token).await?;
        Ok(Principal {
            kind,
            token: Some(token.to_owned()),
        })
    }

    pub(super) fn with_refetch_interval(config: AuthConfig, refetch_interval: Duration) -> Self {
        // Built with the first key set: without one (static tokens, development mode) the
        // server has no use for a TLS client.
        let http = std::cell::OnceCell::new();
        let key_set =
            |url: String| KeySet::new(url, http.get_or_init(jwks_client).clone(), refetch_interval);
        let static_tokens = config
            .static_tokens
            .into_iter()
            .map(|entry| HashedStaticToken {
                digest: Sha256::digest(entry.token.as_bytes()).into(),
                subject: entry.subject,
            })
            .collect();
        let user_keys = config.backstage_base_url.map(|base| {
            key_set(format!(
                "{}/api/auth/.well-known/jwks.json",
                base.trim_end_matches('/')
            ))
        });
        let external = config
            .jwks
            .into_iter()
            .map(|entry| ExternalJwks {
                validation: external_validation(&entry),
                subject_prefix: match &entry.subject_prefix {
                    Some(prefix) => format!("external:{prefix}:"),
                    None => "external:".to_owned(),
                },
                keys: key_set(entry.url),
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                allow_anonymous: config.allow_anonymous,
                serve_unverified_tokens: config.serve_unverified_tokens,
                warned_unverified: AtomicBool::new(false),
                static_tokens,
                user_keys,
                external,
            }),
        }
    }
}

/// The longest `sub` recorded from an unverified token (Backstage's own entity names and
/// namespaces are at most 63 characters each).
pub(super) const MAX_CLAIMED_USER_REF_LEN: usize = 512;

/// The `aud` of Backstage user tokens issued before `typ` was introduced.
pub(super) const LEGACY_USER_AUDIENCE: &str = "backstage";

pub(super) struct Inner {
    allow_anonymous: bool,
    serve_unverified_tokens: bool,
    /// Whether the development-mode warning about unverified tokens was logged.
    warned_unverified: AtomicBool,
    static_tokens: Vec<HashedStaticToken>,
    /// Keys of the Backstage instance whose user tokens we accept.
    user_keys: Option<KeySet>,
    external: Vec<ExternalJwks>,
}

/// A static token kept as its SHA-256, so every comparison is over 32 bytes in constant time
/// and does not reveal the configured token's length.
pub(super) struct HashedStaticToken {
    digest: [u8; 32],
    subject: String,
}

pub(super) struct ExternalJwks {
    keys: KeySet,
    validation: Validation,
    /// `external:` or `external:<subjectPrefix>:`.
    subject_prefix: String,
}

/// Only `aud`, read from an unverified token to recognise a legacy Backstage user token.
#[derive(Deserialize)]
pub(super) struct AudienceClaim {
    aud: Option<serde_json::Value>,
}

impl Inner {
    /// The principal of a token served unverified in development mode; warns at the first.
    fn unverified(&self, token: &str) -> Principal {
        let claimed_user_ref = claimed_user_ref(token);
        if !self.warned_unverified.swap(true, Ordering::Relaxed) {
            let recorded = match &claimed_user_ref {
                Some(user_ref) => format!(
                    "; the user it names, {user_ref}, is recorded as the creator of its tasks, unverified"
                ),
                None => String::new(),
            };
            tracing::warn!(
                "a request carries a bearer token (a Backstage frontend always sends its \
                 user's), but no authentication is configured to verify it, so it is served as \
                 a request without a token{recorded}. To verify Backstage user tokens, set \
                 backstage.baseUrl to the Backstage backend that issues them (its keys are at \
                 <baseUrl>/api/auth/.well-known/jwks.json); for other callers, configure \
                 backend.auth.externalAccess. Logged once"
            );
        }
        Principal {
            kind: PrincipalKind::Unverified { claimed_user_ref },
            token: None,
        }
    }

    async fn principal_for(&self, token: &str) -> Result<PrincipalKind, AuthError> {
        if let Some(subject) = self.static_subject(token) {
            return Ok(PrincipalKind::Service {
                subject: subject.to_owned(),
            });
        }
        // Anything that does not even parse as a JWT is an unknown opaque token.
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Err(AuthError::new("Invalid credentials"));
        };
        let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
        match typ.as_deref() {
            Some(TYP_LIMITED_USER) => {
                return Err(AuthError::new(
                    "Illegal token: limited user tokens only grant cookie access to static assets, not this API",
                ));
            }
            Some(TYP_PLUGIN) => {
                return Err(AuthError::new(
                    "Illegal token: Backstage plugin-to-plugin tokens are not accepted, use a static or JWKS externalAccess token",
                ));
            }
            _ => {}
        }

        let is_user_token = match typ.as_deref() {
            Some(TYP_USER) => true,
            None => has_legacy_user_audience(token),
            Some(_) => false,
        };
        let mut failures = Vec::new();
        if is_user_token {
            match &self.user_keys {
                Some(keys) => match self.verify_user_token(keys, token, &header).await {
                    Ok(user_ref) => return Ok(PrincipalKind::User { user_ref }),
                    Err(failure) => failures.push(failure),
                },
                None => failures.push(
                    "Backstage user tokens are not accepted (no Backstage instance is configured)"
                        .to_owned(),
                ),
            }
        }
        // A token typed as a Backstage user token is never an external one.
        if typ.as_deref() != Some(TYP_USER) {
            for entry in &self.external {
                match verify(&entry.keys, token, &header, &entry.validation).await {
                    Ok(Claims { sub: Some(sub), .. }) if !sub.is_empty() => {
                        return Ok(PrincipalKind::Service {
                            subject: format!("{}{sub}", entry.subject_prefix),
                        });
                    }
                    Ok(_) => failures.push(format!(
                        "token verified by {} has no 'sub' claim",
                        entry.keys.url
                    )),
                    Err(failure) => failures.push(failure),
                }
            }
        }
        if failures.is_empty() {
            return Err(AuthError::new(
                "Illegal token: no configured key set accepts JWTs of this kind",
            ));
        }
        Err(AuthError::new(format!(
            "Illegal token: {}",
            failures.join("; ")
        )))
    }

    /// The subject of the static token equal to `token`; every entry is compared, in constant time.
    fn static_subject(&self, token: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.static_tokens {
            if bool::from(entry.digest.ct_eq(&digest)) && found.is_none() {
                found = Some(entry.subject.as_str());
            }
        }
        found
    }

    /// Verifies a Backstage user token the way `UserTokenHandler` does and returns its `sub`.
    async fn verify_user_token(
        &self,
        keys: &KeySet,
        token: &str,
        header: &Header,
    ) -> Result<String, String> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.algorithms = ASYMMETRIC_ALGORITHMS.to_vec();
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        if header.typ.is_some() {
            // `typ: vnd.backstage.user`: `iat`, `exp` and `sub` are required, `aud` is not checked.
            validation.set_required_spec_claims(&["exp", "sub"]);
            validation.validate_aud = false;
        } else {
            // Legacy token: recognised by, and checked for, `aud: backstage`.
            validation.set_required_spec_claims(&["exp", "sub", "aud"]);
            validation.set_audience(&[LEGACY_USER_AUDIENCE]);
        }
        let claims = verify(keys, token, header, &validation).await?;
        if header.typ.is_some() && claims.iat.is_none() {
            return Err("user token has no 'iat' claim".to_owned());
        }
        match claims.sub {
            Some(sub) if !sub.is_empty() => Ok(sub),
            _ => Err("user token has no 'sub' claim".to_owned()),
        }
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive, one token without spaces).
pub(super) fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let invalid = || AuthError::new("Invalid Authorization header, expected 'Bearer <token>'");
    let (scheme, rest) = header
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(invalid)?;
    let token = rest.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(invalid());
    }
    Ok(token)
}

/// The `sub` of a Backstage user token (typed, or legacy), read without verifying anything,
/// when it is a user entity ref (`user:<namespace>/<name>`).
pub(super) fn claimed_user_ref(token: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let is_user_token = match header
        .typ
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some(TYP_USER) => true,
        None => has_legacy_user_audience(token),
        Some(_) => false,
    };
    if !is_user_token {
        return None;
    }
    let sub = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token)
        .ok()?
        .sub?;
    if sub.len() > MAX_CLAIMED_USER_REF_LEN {
        return None;
    }
    let (kind, rest) = sub.split_once(':')?;
    let (namespace, name) = rest.split_once('/')?;
    let is_part = |part: &str| {
        !part.is_empty()
            && !part.contains(|c: char| c.is_whitespace() || c.is_control() || "/:".contains(c))
    };
    (kind.eq_ignore_ascii_case("user") && is_part(namespace) && is_part(name)).then_some(sub)
}

/// Whether an untyped JWT claims `aud: "backstage"`, as Backstage user tokens did before `typ`.
pub(super) fn has_legacy_user_audience(token: &str) -> bool {
    matches!(
        jsonwebtoken::dangerous::insecure_decode_claims::<AudienceClaim>(token),
        Ok(AudienceClaim { aud: Some(serde_json::Value::String(aud)) }) if aud == LEGACY_USER_AUDIENCE
    )
}

pub(super) fn external_validation(entry: &JwksAccess) -> Validation {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.algorithms = if entry.algorithms.is_empty() {
        ASYMMETRIC_ALGORITHMS.to_vec()
    } else {
        entry
            .algorithms
            .iter()
            .filter_map(|name| parse_asymmetric_algorithm(name))
            .collect()
    };
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    // `jsonwebtoken` only checks `iss`/`aud` when the claim is present: require it when configured.
    // Unlike Backstage (jose), we also require `exp`: a token that never expires is a password.
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = &entry.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if entry.audience.is_empty() {
        // Without a configured audience, any `aud` is fine (jose's behaviour).
        validation.validate_aud = false;
    } else {
        validation.set_audience(&entry.audience);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}
