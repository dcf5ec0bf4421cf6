//! Request authentication: turns the `Authorization` header of a request into a [`Principal`].
//!
//! Accepted credentials, in the order they are tried (Backstage's `DefaultAuthService`):
//!
//! 1. no header at all: an anonymous principal, only if [`AuthConfig::allow_anonymous`];
//!    in development mode ([`AuthConfig::serve_unverified_tokens`]: nothing is configured that
//!    could verify a token) any bearer token too, as [`PrincipalKind::Unverified`];
//! 2. a static `externalAccess` token: a service principal with the configured subject;
//! 3. a Backstage user token (`typ: vnd.backstage.user`, or an older token without `typ` and with
//!    `aud: backstage`), verified against the JWKS of [`AuthConfig::backstage_base_url`]: a user principal;
//! 4. a JWT verified by one of the `type: jwks` `externalAccess` entries: a service principal.
//!
//! Limited user tokens (`vnd.backstage.limited-user`, meant for cookie access to static assets) and
//! plugin-to-plugin tokens (`vnd.backstage.plugin`) are refused with a message saying so.
//!
//! Development mode exists because a Backstage frontend always sends a token, its signed-in
//! user's or the guest's: refusing it would make the frontend unusable against a server that
//! accepts the same request without a token. The token is not verified, so it grants nothing
//! a tokenless request does not have and is not passed on to actions; the user a Backstage user
//! token names is only recorded ([`Principal::created_by`]: the task's `createdBy` and
//! `spec.user.ref`), so the frontend's "Owned" task list works. That is no less trustworthy
//! than the rest of the mode: any local process may already create any task, and nothing in
//! this API decides what a caller may do by its user.
//!
//! This module knows nothing about axum: the API middleware hands it the raw header value and
//! turns an [`AuthError`] into a 401 `AuthenticationError` body.
//!
//! Crates. JWTs are checked with `jsonwebtoken` (the most used JWT crate, maintained, with JWK/JWKS
//! types and `exp`/`nbf`/`iss`/`aud` validation built in) on its `rust_crypto` backend, which is pure
//! Rust and so avoids building aws-lc; it supports ES256, ES384, RS256/384/512, PS256/384/512 and
//! EdDSA. Its RSA code (the `rsa` crate) has a known timing side channel in *decryption* and
//! signing (RUSTSEC-2023-0071); we only verify signatures with public keys, which is not affected.
//! Key sets are fetched with `reqwest` over rustls (ring, webpki roots) like the rest of the workspace.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Header, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How the API authenticates requests (`backend.auth` in Backstage's `app-config.yaml`).
///
/// Everything is off by default: a default config rejects every request.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Accept requests without a token. Only allowed when the server binds to loopback; the caller checks that.
    pub allow_anonymous: bool,
    /// `backend.auth.externalAccess` entries of `type: static`.
    pub static_tokens: Vec<StaticToken>,
    /// `backend.auth.externalAccess` entries of `type: jwks`.
    pub jwks: Vec<JwksAccess>,
    /// Base URL of a Backstage instance whose *user* tokens we accept, e.g. `https://backstage.example.com`:
    /// its keys are at `{base}/api/auth/.well-known/jwks.json`.
    pub backstage_base_url: Option<String>,
    /// Development mode: serve a request with a bearer token as one without (a Backstage
    /// frontend always sends one) instead of refusing it as unverifiable. Only valid with
    /// `allow_anonymous` and nothing that could verify a token (see [`AuthConfig::validate`]).
    pub serve_unverified_tokens: bool,
}

/// A `type: static` external access token (`options.token`, `options.subject`).
#[derive(Clone)]
pub struct StaticToken {
    /// The secret token; Backstage requires at least 8 non-space characters (see [`AuthConfig::validate`]).
    pub token: String,
    /// The subject of the service principal the token authenticates as, e.g. `ci-bot`.
    pub subject: String,
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken")
            .field("token", &"[redacted]")
            .field("subject", &self.subject)
            .finish()
    }
}

/// A `type: jwks` external access entry: JWTs signed by a key of `url` are accepted.
#[derive(Debug, Clone, Default)]
pub struct JwksAccess {
    /// URL of the JSON Web Key Set (`options.url`).
    pub url: String,
    /// Required `iss` claim (`options.issuer`); not checked when `None`.
    pub issuer: Option<String>,
    /// Accepted `alg` values (`options.algorithm`), e.g. `["RS256"]`; empty means every asymmetric
    /// algorithm. HMAC algorithms are never accepted: a published key set holds no shared secrets.
    pub algorithms: Vec<String>,
    /// Accepted `aud` values (`options.audience`): the token's must include one of them;
    /// not checked when empty.
    pub audience: Vec<String>,
    /// `options.subjectPrefix`. As in Backstage the principal's subject is `external:<prefix>:<sub>`,
    /// or `external:<sub>` without a prefix.
    pub subject_prefix: Option<String>,
}

/// The authenticated caller of a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who the caller is.
    pub kind: PrincipalKind,
    /// The raw bearer token (stored as the task's `backstageToken` secret), `None` for anonymous.
    pub token: Option<String>,
}

/// The kinds of principal Backstage distinguishes (`BackstagePrincipalTypes`, minus `none` = anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A user signed in to Backstage; `user_ref` is the `sub` of the token, e.g. `user:default/jane`.
    User {
        /// The user's entity ref.
        user_ref: String,
    },
    /// A service calling with an external access token, e.g. `ci-bot` or `external:github:repo:acme/x`.
    Service {
        /// The service's subject.
        subject: String,
    },
    /// No credentials, accepted because anonymous access is allowed.
    Anonymous,
    /// A bearer token served without verification in development mode
    /// ([`AuthConfig::serve_unverified_tokens`]): it has an anonymous caller's rights.
    Unverified {
        /// The `sub` of a Backstage user token, read without checking the signature; never an
        /// identity to decide anything by, only a name to record ([`Principal::created_by`]).
        claimed_user_ref: Option<String>,
    },
}

impl Principal {
    /// The verified user's entity ref; `None` for services, anonymous and unverified callers.
    pub fn user_ref(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::User { user_ref } => Some(user_ref),
            PrincipalKind::Service { .. }
            | PrincipalKind::Anonymous
            | PrincipalKind::Unverified { .. } => None,
        }
    }

    /// The user a task records as `createdBy` and `spec.user.ref`: the verified user, or in
    /// development mode the user an unverified Backstage token names. Backstage records no
    /// creator for service principals, nor do we. Not for deciding what the caller may do.
    pub fn created_by(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Unverified { claimed_user_ref } => claimed_user_ref.as_deref(),
            _ => self.user_ref(),
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("kind", &self.kind)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A request could not be authenticated; the API answers 401 `AuthenticationError` with `message`.
///
/// The message never contains the presented token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// What was wrong, in Backstage's wording where it has one (`Missing credentials`).
    pub message: String,
}

impl AuthError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// An [`AuthConfig`] that Backstage would refuse to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid auth config: {message}")]
pub struct AuthConfigError {
    /// Which entry is wrong and why.
    pub message: String,
}

impl AuthConfig {
    /// Checks the entries the way Backstage does at startup: static tokens of at least 8 non-space
    /// characters, declared once, with a non-space subject; JWKS and Backstage URLs that are http(s)
    /// URLs; known asymmetric algorithm names.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        let invalid = |message: String| Err(AuthConfigError { message });
        for (index, entry) in self.static_tokens.iter().enumerate() {
            if entry.token.len() < MIN_STATIC_TOKEN_LEN || entry.token.contains(char::is_whitespace)
            {
                return invalid(format!(
                    "static token #{index} must be at least {MIN_STATIC_TOKEN_LEN} non-space characters"
                ));
            }
            if entry.subject.is_empty() || entry.subject.contains(char::is_whitespace) {
                return invalid(format!(
                    "static token #{index} needs a subject without spaces"
                ));
            }
            if self.static_tokens[..index]
                .iter()
                .any(|other| other.token == entry.token)
            {
                return invalid(format!("static token #{index} is declared more than once"));
            }
        }
        for entry in &self.jwks {
            check_http_url(&entry.url)?;
            for name in &entry.algorithms {
                if parse_asymmetric_algorithm(name).is_none() {
                    return invalid(format!(
                        "algorithm '{name}' of {} is not a supported asymmetric JWS algorithm",
                        entry.url
                    ));
                }
            }
        }
        if let Some(base) = &self.backstage_base_url {
            check_http_url(base)?;
        }
        let verifies_tokens = !self.static_tokens.is_empty()
            || !self.jwks.is_empty()
            || self.backstage_base_url.is_some();
        if self.serve_unverified_tokens && (verifies_tokens || !self.allow_anonymous) {
            return invalid(
                "unverified tokens may only be served when anonymous access is allowed and \
                 nothing is configured to verify tokens"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

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

    fn with_refetch_interval(config: AuthConfig, refetch_interval: Duration) -> Self {
        // Built with the first key set: without one (static tokens, development mode) the
        // server has no use for a TLS client.
        let http = std::cell::OnceCell::new();
        let key_set = |url: String| KeySet {
            url,
            http: http.get_or_init(jwks_client).clone(),
            refetch_interval,
            cache: Mutex::new(KeyCache::default()),
        };
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

/// How the actions registry routes authenticate: Backstage plugin-to-plugin tokens only,
/// as a Backstage plugin's own routes receive them from `ActionsService`.
#[derive(Debug, Clone)]
pub struct PluginTokenConfig {
    /// Our plugin id: the `aud` every token must carry.
    pub plugin_id: String,
    /// The Backstage backend whose plugins call us (`backstage.baseUrl`): the keys of a
    /// calling plugin are at `{base}/api/{plugin}/.backstage/auth/v1/jwks.json`, the users'
    /// at `{base}/api/auth/.well-known/jwks.json`.
    pub backstage_base_url: String,
    /// The plugin ids (`sub`) allowed to call, e.g. `scaffolder`.
    pub allowed_callers: Vec<String>,
}

/// Who called the actions registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCaller {
    /// The calling plugin's id.
    pub plugin: String,
    /// The user it acts for (the `sub` of its `obo` token), if any.
    pub user_ref: Option<String>,
}

/// Why a registry request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginAuthError {
    /// 401: no token, or one that does not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: a plugin that is not allowed to call.
    #[error("{0}")]
    NotAllowed(String),
}

/// Verifies plugin tokens for the actions registry routes; cheap to clone, shares its key caches.
#[derive(Clone)]
pub struct PluginTokenVerifier {
    inner: Arc<PluginTokenInner>,
}

struct PluginTokenInner {
    plugin_id: String,
    /// One key set per allowed caller, so an unknown `sub` never makes us fetch anything.
    callers: std::collections::HashMap<String, KeySet>,
    user_keys: KeySet,
}

impl PluginTokenVerifier {
    pub fn new(config: PluginTokenConfig) -> Self {
        Self::with_refetch_interval(config, MIN_REFETCH_INTERVAL)
    }

    fn with_refetch_interval(config: PluginTokenConfig, refetch_interval: Duration) -> Self {
        let http = jwks_client();
        let base = config.backstage_base_url.trim_end_matches('/').to_owned();
        let key_set = |url: String| KeySet {
            url,
            http: http.clone(),
            refetch_interval,
            cache: Mutex::new(KeyCache::default()),
        };
        let callers = config
            .allowed_callers
            .iter()
            .map(|plugin| {
                let url = format!("{base}/api/{plugin}/.backstage/auth/v1/jwks.json");
                (plugin.clone(), key_set(url))
            })
            .collect();
        Self {
            inner: Arc::new(PluginTokenInner {
                plugin_id: config.plugin_id,
                callers,
                user_keys: key_set(format!("{base}/api/auth/.well-known/jwks.json")),
            }),
        }
    }

    /// Authenticates one registry request from its raw `Authorization` header value.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<PluginCaller, PluginAuthError> {
        let unauthenticated = |message: String| PluginAuthError::Unauthenticated(message);
        let header = authorization.ok_or_else(|| unauthenticated("Missing credentials".into()))?;
        let token = bearer_token(header).map_err(|err| unauthenticated(err.message))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("Invalid credentials".into()))?;
        if header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
            != Some(TYP_PLUGIN)
        {
            return Err(unauthenticated(format!(
                "Illegal token: the actions of {} accept only Backstage plugin tokens (typ {TYP_PLUGIN})",
                self.inner.plugin_id
            )));
        }
        // Which plugin claims to call picks the keys to verify with; an unknown one is
        // refused before anything is fetched.
        let caller = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token)
            .ok()
            .and_then(|claims| claims.sub)
            .filter(|sub| is_plugin_id(sub))
            .ok_or_else(|| unauthenticated("Illegal token: no valid 'sub' plugin id".into()))?;
        let Some(keys) = self.inner.callers.get(&caller) else {
            return Err(PluginAuthError::NotAllowed(format!(
                "Plugin '{caller}' is not allowed to call the actions of {}",
                self.inner.plugin_id
            )));
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.algorithms = ASYMMETRIC_ALGORITHMS.to_vec();
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.inner.plugin_id]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let claims = verify(keys, token, &header, &validation)
            .await
            .map_err(|failure| unauthenticated(format!("Illegal token: {failure}")))?;
        if claims.iat.is_none() {
            return Err(unauthenticated(
                "Illegal token: plugin token has no 'iat' claim".into(),
            ));
        }
        let user_ref = match &claims.obo {
            None => None,
            Some(obo) => Some(self.verify_on_behalf_of(obo).await.map_err(|failure| {
                unauthenticated(format!("Illegal token: its 'obo' user token {failure}"))
            })?),
        };
        Ok(PluginCaller {
            plugin: caller,
            user_ref,
        })
    }

    /// Verifies a limited user token (`typ: vnd.backstage.limited-user`) against the
    /// users' keys and returns its `sub`.
    async fn verify_on_behalf_of(&self, token: &str) -> Result<String, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "is not a JWT".to_owned())?;
        if header.typ.as_deref() != Some(TYP_LIMITED_USER) {
            return Err(format!(
                "is not a limited user token (typ {TYP_LIMITED_USER})"
            ));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.algorithms = ASYMMETRIC_ALGORITHMS.to_vec();
        validation.leeway = LEEWAY_SECS;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = verify(&self.inner.user_keys, token, &header, &validation).await?;
        match claims.sub {
            Some(sub) if !sub.is_empty() => Ok(sub),
            _ => Err("has no 'sub' claim".to_owned()),
        }
    }
}

fn jwks_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(JWKS_FETCH_TIMEOUT)
        .build()
        .expect("the HTTP client for JWKS builds (rustls with bundled roots needs no system state)")
}

/// Backstage's plugin id pattern (`^[a-z0-9_-]+$`, case-insensitive).
pub fn is_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The longest `sub` recorded from an unverified token (Backstage's own entity names and
/// namespaces are at most 63 characters each).
const MAX_CLAIMED_USER_REF_LEN: usize = 512;
/// Static tokens shorter than this are refused by Backstage (`MIN_TOKEN_LENGTH` in `static.ts`).
const MIN_STATIC_TOKEN_LEN: usize = 8;
/// An unknown `kid` refetches a key set at most this often (key rotation without a fetch storm).
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Cached keys older than this are refetched before use, so that removed keys stop verifying.
const KEYS_MAX_AGE: Duration = Duration::from_secs(600);
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;
/// Every algorithm the `rust_crypto` backend verifies with a public key.
const ASYMMETRIC_ALGORITHMS: [Algorithm; 9] = [
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
const TYP_USER: &str = "vnd.backstage.user";
const TYP_LIMITED_USER: &str = "vnd.backstage.limited-user";
const TYP_PLUGIN: &str = "vnd.backstage.plugin";
/// The `aud` of Backstage user tokens issued before `typ` was introduced.
const LEGACY_USER_AUDIENCE: &str = "backstage";

struct Inner {
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
struct HashedStaticToken {
    digest: [u8; 32],
    subject: String,
}

struct ExternalJwks {
    keys: KeySet,
    validation: Validation,
    /// `external:` or `external:<subjectPrefix>:`.
    subject_prefix: String,
}

/// The claims we read; `jsonwebtoken` validates `exp`, `nbf`, `iss` and `aud` itself.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    iat: Option<serde_json::Value>,
    /// A plugin token's "on behalf of": the limited token of the user the plugin acts for.
    obo: Option<String>,
}

/// Only `aud`, read from an unverified token to recognise a legacy Backstage user token.
#[derive(Deserialize)]
struct AudienceClaim {
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
fn bearer_token(header: &str) -> Result<&str, AuthError> {
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
fn claimed_user_ref(token: &str) -> Option<String> {
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
fn has_legacy_user_audience(token: &str) -> bool {
    matches!(
        jsonwebtoken::dangerous::insecure_decode_claims::<AudienceClaim>(token),
        Ok(AudienceClaim { aud: Some(serde_json::Value::String(aud)) }) if aud == LEGACY_USER_AUDIENCE
    )
}

fn external_validation(entry: &JwksAccess) -> Validation {
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

fn parse_asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    let algorithm = name.parse::<Algorithm>().ok()?;
    ASYMMETRIC_ALGORITHMS
        .contains(&algorithm)
        .then_some(algorithm)
}

fn check_http_url(url: &str) -> Result<(), AuthConfigError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        _ => Err(AuthConfigError {
            message: format!("'{url}' is not an http(s) URL"),
        }),
    }
}

/// Verifies `token` with the keys of `keys` that fit its header, returning the claims or why not.
async fn verify(
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

fn is_signature_error(error: &jsonwebtoken::errors::Error) -> bool {
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

fn describe_claim_error(error: &jsonwebtoken::errors::Error, url: &str) -> String {
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
struct KeySet {
    url: String,
    http: reqwest::Client,
    refetch_interval: Duration,
    /// Held across a fetch, so concurrent requests wait for one fetch instead of each starting one.
    cache: Mutex<KeyCache>,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    /// When `keys` was last fetched successfully; `None` before the first fetch.
    fetched_at: Option<Instant>,
}

impl KeySet {
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

fn matching_keys(keys: &[Jwk], header: &Header) -> Vec<DecodingKey> {
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
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::State;
    use axum::routing::get;
    use jsonwebtoken::{EncodingKey, jwk::JwkSet};
    use p256::pkcs8::EncodePrivateKey;
    use serde_json::{Value, json};

    use super::*;

    const USER_JWKS_PATH: &str = "/api/auth/.well-known/jwks.json";
    const EXTERNAL_JWKS_PATH: &str = "/external/jwks.json";

    /// An ES256 key pair with its public JWK; `seed` makes distinct, reproducible keys.
    struct TestKey {
        encoding: EncodingKey,
        jwk: Jwk,
    }

    fn test_key(seed: u8, kid: &str) -> TestKey {
        let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        TestKey { encoding, jwk }
    }

    fn sign(key: &TestKey, typ: Option<&str>, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = key.jwk.common.key_id.clone();
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn user_claims(sub: &str) -> Value {
        json!({ "sub": sub, "ent": [sub], "iat": now(), "exp": now() + 3600 })
    }

    /// Serves one key set at both JWKS paths on 127.0.0.1 and counts the requests.
    struct JwksServer {
        base_url: String,
        keys: Arc<std::sync::Mutex<Vec<Jwk>>>,
        hits: Arc<AtomicUsize>,
    }

    #[derive(Clone)]
    struct ServerState {
        keys: Arc<std::sync::Mutex<Vec<Jwk>>>,
        hits: Arc<AtomicUsize>,
    }

    impl JwksServer {
        async fn start(keys: Vec<Jwk>) -> Self {
            async fn jwks(State(state): State<ServerState>) -> axum::Json<JwkSet> {
                state.hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(JwkSet {
                    keys: state.keys.lock().unwrap().clone(),
                })
            }
            let state = ServerState {
                keys: Arc::new(std::sync::Mutex::new(keys)),
                hits: Arc::default(),
            };
            let app = Router::new()
                .route(USER_JWKS_PATH, get(jwks))
                .route(EXTERNAL_JWKS_PATH, get(jwks))
                .with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Self {
                base_url,
                keys: state.keys,
                hits: state.hits,
            }
        }

        fn set_keys(&self, keys: Vec<Jwk>) {
            *self.keys.lock().unwrap() = keys;
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        fn user_config(&self) -> AuthConfig {
            AuthConfig {
                backstage_base_url: Some(format!("{}/", self.base_url)),
                ..AuthConfig::default()
            }
        }

        fn external_access(&self) -> JwksAccess {
            JwksAccess {
                url: format!("{}{EXTERNAL_JWKS_PATH}", self.base_url),
                issuer: Some("https://issuer.example.com".to_owned()),
                algorithms: vec!["ES256".to_owned()],
                audience: vec!["scaffolder".to_owned(), "portal".to_owned()],
                subject_prefix: Some("ci".to_owned()),
            }
        }
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    async fn reject(auth: &Authenticator, header: Option<&str>) -> String {
        match auth.authenticate(header).await {
            Ok(principal) => panic!("expected an error, got {principal:?}"),
            Err(error) => error.message,
        }
    }

    #[tokio::test]
    async fn anonymous_principal_when_no_header_and_anonymous_allowed() {
        let auth = Authenticator::new(AuthConfig {
            allow_anonymous: true,
            ..AuthConfig::default()
        });
        let principal = auth.authenticate(None).await.unwrap();
        assert_eq!(
            principal,
            Principal {
                kind: PrincipalKind::Anonymous,
                token: None
            }
        );
        assert_eq!(principal.user_ref(), None);
    }

    fn development_config() -> AuthConfig {
        AuthConfig {
            allow_anonymous: true,
            serve_unverified_tokens: true,
            ..AuthConfig::default()
        }
    }

    #[tokio::test]
    async fn any_token_is_served_unverified_in_development_mode() {
        let auth = Authenticator::new(development_config());
        let key = test_key(1, "key-1");
        let user_token = sign(&key, Some(TYP_USER), user_claims("user:development/guest"));

        let principal = auth.authenticate(Some(&bearer(&user_token))).await.unwrap();

        assert_eq!(
            principal.kind,
            PrincipalKind::Unverified {
                claimed_user_ref: Some("user:development/guest".to_owned())
            }
        );
        // Recorded, never trusted, never passed on.
        assert_eq!(principal.created_by(), Some("user:development/guest"));
        assert_eq!(principal.user_ref(), None);
        assert_eq!(principal.token, None);

        let mut legacy = user_claims("user:default/old");
        legacy["aud"] = json!("backstage");
        for (token, claimed) in [
            (sign(&key, None, legacy), Some("user:default/old")),
            ("an-opaque-token".to_owned(), None),
            (
                sign(&key, Some(TYP_PLUGIN), user_claims("user:default/j")),
                None,
            ),
            (sign(&key, Some("JWT"), user_claims("user:default/j")), None),
            (sign(&key, Some(TYP_USER), user_claims("jane")), None),
            (
                sign(&key, Some(TYP_USER), user_claims("group:default/team")),
                None,
            ),
            (
                sign(&key, Some(TYP_USER), user_claims("user:default/ja ne")),
                None,
            ),
            (
                sign(&key, Some(TYP_USER), user_claims("user:default/")),
                None,
            ),
        ] {
            let principal = auth.authenticate(Some(&bearer(&token))).await.unwrap();
            assert_eq!(principal.created_by(), claimed, "{token}");
        }
        // A header that is not a bearer token is still refused.
        let message = reject(&auth, Some("Basic dXNlcjpwYXNz")).await;
        assert!(
            message.starts_with("Invalid Authorization header"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn missing_credentials_when_no_header_and_anonymous_denied() {
        let auth = Authenticator::new(AuthConfig::default());
        assert_eq!(reject(&auth, None).await, "Missing credentials");
    }

    fn static_config() -> AuthConfig {
        AuthConfig {
            static_tokens: vec![
                StaticToken {
                    token: "first-secret-token".to_owned(),
                    subject: "first-bot".to_owned(),
                },
                StaticToken {
                    token: "second-secret-token".to_owned(),
                    subject: "ci-bot".to_owned(),
                },
            ],
            ..AuthConfig::default()
        }
    }

    #[tokio::test]
    async fn service_principal_when_static_token_matches() {
        let auth = Authenticator::new(static_config());
        let principal = auth
            .authenticate(Some("Bearer second-secret-token"))
            .await
            .unwrap();
        assert_eq!(
            principal.kind,
            PrincipalKind::Service {
                subject: "ci-bot".to_owned()
            }
        );
        assert_eq!(principal.token.as_deref(), Some("second-secret-token"));
        assert_eq!(principal.user_ref(), None);
    }

    #[tokio::test]
    async fn invalid_credentials_without_the_token_when_static_token_is_wrong() {
        let auth = Authenticator::new(static_config());
        let message = reject(&auth, Some("Bearer second-secret-tokeX")).await;
        assert_eq!(message, "Invalid credentials");
        // Even with anonymous access, a wrong token is an error, not anonymous.
        let auth = Authenticator::new(AuthConfig {
            allow_anonymous: true,
            ..static_config()
        });
        assert_eq!(
            reject(&auth, Some("Bearer not-a-token")).await,
            "Invalid credentials"
        );
    }

    #[tokio::test]
    async fn error_when_scheme_is_not_bearer() {
        let auth = Authenticator::new(AuthConfig {
            allow_anonymous: true,
            ..static_config()
        });
        for header in [
            "Basic second-secret-token",
            "second-secret-token",
            "Bearer",
            "Bearer a b",
            "",
        ] {
            let message = reject(&auth, Some(header)).await;
            assert_eq!(
                message, "Invalid Authorization header, expected 'Bearer <token>'",
                "{header:?}"
            );
        }
        // The scheme is case-insensitive.
        let principal = auth
            .authenticate(Some("bEaReR  second-secret-token"))
            .await
            .unwrap();
        assert_eq!(
            principal.kind,
            PrincipalKind::Service {
                subject: "ci-bot".to_owned()
            }
        );
    }

    #[tokio::test]
    async fn user_principal_when_user_token_is_valid() {
        let key = test_key(1, "key-1");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let auth = Authenticator::new(server.user_config());
        let token = sign(&key, Some(TYP_USER), user_claims("user:default/jane"));

        let principal = auth.authenticate(Some(&bearer(&token))).await.unwrap();

        assert_eq!(
            principal.kind,
            PrincipalKind::User {
                user_ref: "user:default/jane".to_owned()
            }
        );
        assert_eq!(principal.user_ref(), Some("user:default/jane"));
        assert_eq!(principal.token.as_deref(), Some(token.as_str()));
        // The key set is cached.
        auth.authenticate(Some(&bearer(&token))).await.unwrap();
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn user_principal_when_legacy_token_has_backstage_audience() {
        let key = test_key(1, "key-1");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let auth = Authenticator::new(server.user_config());

        let mut claims = user_claims("user:default/old");
        claims["aud"] = json!("backstage");
        let principal = auth
            .authenticate(Some(&bearer(&sign(&key, None, claims))))
            .await
            .unwrap();
        assert_eq!(principal.user_ref(), Some("user:default/old"));

        // Without `typ` and without `aud: backstage` it is not a user token.
        let message = reject(
            &auth,
            Some(&bearer(&sign(&key, None, user_claims("user:default/old")))),
        )
        .await;
        assert!(message.starts_with("Illegal token: "), "{message}");
    }

    #[tokio::test]
    async fn error_when_user_token_is_expired() {
        let key = test_key(1, "key-1");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let auth = Authenticator::new(server.user_config());
        let mut claims = user_claims("user:default/jane");
        claims["exp"] = json!(now() - 2 * LEEWAY_SECS);

        let message = reject(&auth, Some(&bearer(&sign(&key, Some(TYP_USER), claims)))).await;

        assert_eq!(message, "Illegal token: token has expired");
    }

    #[tokio::test]
    async fn error_when_user_token_is_signed_by_another_key() {
        let key = test_key(1, "key-1");
        let impostor = test_key(2, "key-1");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let auth = Authenticator::new(server.user_config());

        let token = sign(&impostor, Some(TYP_USER), user_claims("user:default/jane"));
        let message = reject(&auth, Some(&bearer(&token))).await;

        let url = format!("{}{USER_JWKS_PATH}", server.base_url);
        assert_eq!(
            message,
            format!("Illegal token: signature does not verify against any key of {url}")
        );
        assert!(!message.contains(&token));
    }

    #[tokio::test]
    async fn error_when_token_is_signed_with_hmac() {
        // Algorithm confusion: an HS256 token "signed" with public key material must not verify.
        let key = test_key(1, "key-1");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let auth = Authenticator::new(server.user_config());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-1".to_owned());
        header.typ = Some(TYP_USER.to_owned());
        let secret = EncodingKey::from_secret(serde_json::to_string(&key.jwk).unwrap().as_bytes());
        let token =
            jsonwebtoken::encode(&header, &user_claims("user:default/jane"), &secret).unwrap();

        let message = reject(&auth, Some(&bearer(&token))).await;

        assert!(
            message.contains("algorithm HS256 is not accepted"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn new_key_accepted_after_refetch_when_jwks_rotates() {
        let old = test_key(1, "old");
        let new = test_key(2, "new");
        let server = JwksServer::start(vec![old.jwk.clone()]).await;
        let auth = Authenticator::with_refetch_interval(server.user_config(), Duration::ZERO);
        let old_token = sign(&old, Some(TYP_USER), user_claims("user:default/jane"));
        auth.authenticate(Some(&bearer(&old_token))).await.unwrap();

        server.set_keys(vec![new.jwk.clone()]);
        let new_token = sign(&new, Some(TYP_USER), user_claims("user:default/john"));
        let principal = auth.authenticate(Some(&bearer(&new_token))).await.unwrap();

        assert_eq!(principal.user_ref(), Some("user:default/john"));
        assert_eq!(server.hits(), 2);
        // The old key is gone from the refetched set.
        let message = reject(&auth, Some(&bearer(&old_token))).await;
        assert!(message.contains("no key of"), "{message}");
    }

    #[tokio::test]
    async fn unknown_kid_refetches_at_most_once_per_interval() {
        let old = test_key(1, "old");
        let new = test_key(2, "new");
        let server = JwksServer::start(vec![old.jwk.clone()]).await;
        let auth = Authenticator::new(server.user_config());
        auth.authenticate(Some(&bearer(&sign(
            &old,
            Some(TYP_USER),
            user_claims("user:default/a"),
        ))))
        .await
        .unwrap();

        server.set_keys(vec![old.jwk.clone(), new.jwk.clone()]);
        let new_token = sign(&new, Some(TYP_USER), user_claims("user:default/b"));
        for _ in 0..3 {
            let message = reject(&auth, Some(&bearer(&new_token))).await;
            assert!(message.contains("no key of"), "{message}");
        }

        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn error_names_the_url_when_jwks_cannot_be_fetched() {
        // A port that was free a moment ago: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let auth = Authenticator::new(AuthConfig {
            backstage_base_url: Some(base.clone()),
            ..AuthConfig::default()
        });
        let token = sign(
            &test_key(1, "key-1"),
            Some(TYP_USER),
            user_claims("user:default/jane"),
        );

        let message = reject(&auth, Some(&bearer(&token))).await;

        let prefix = format!("Illegal token: cannot fetch keys from {base}{USER_JWKS_PATH}: ");
        assert!(message.starts_with(&prefix), "{message}");
    }

    #[tokio::test]
    async fn limited_user_and_plugin_tokens_are_refused() {
        let key = test_key(1, "key-1");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let auth = Authenticator::new(server.user_config());
        for (typ, expected) in [
            (TYP_LIMITED_USER, "limited user tokens"),
            (TYP_PLUGIN, "plugin-to-plugin tokens"),
        ] {
            let message = reject(
                &auth,
                Some(&bearer(&sign(
                    &key,
                    Some(typ),
                    user_claims("user:default/j"),
                ))),
            )
            .await;
            assert!(message.contains(expected), "{message}");
        }
        assert_eq!(server.hits(), 0);
    }

    #[tokio::test]
    async fn service_principal_when_external_jwks_token_is_valid() {
        let key = test_key(3, "ext");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let mut access = server.external_access();
        let auth = Authenticator::new(AuthConfig {
            jwks: vec![access.clone()],
            ..AuthConfig::default()
        });
        let claims = json!({
            "sub": "repo:acme/app", "iss": "https://issuer.example.com", "aud": "scaffolder", "exp": now() + 600,
        });

        // Any of the configured audiences will do, the second as well as the first.
        for audience in [json!("scaffolder"), json!(["portal"])] {
            let mut claims = claims.clone();
            claims["aud"] = audience;
            let principal = auth
                .authenticate(Some(&bearer(&sign(&key, Some("JWT"), claims))))
                .await
                .unwrap();
            assert_eq!(
                principal.kind,
                PrincipalKind::Service {
                    subject: "external:ci:repo:acme/app".to_owned()
                }
            );
        }

        access.subject_prefix = None;
        let auth = Authenticator::new(AuthConfig {
            jwks: vec![access],
            ..AuthConfig::default()
        });
        let principal = auth
            .authenticate(Some(&bearer(&sign(&key, None, claims))))
            .await
            .unwrap();
        assert_eq!(
            principal.kind,
            PrincipalKind::Service {
                subject: "external:repo:acme/app".to_owned()
            }
        );
    }

    #[tokio::test]
    async fn error_when_external_jwks_token_has_wrong_issuer_or_audience() {
        let key = test_key(3, "ext");
        let server = JwksServer::start(vec![key.jwk.clone()]).await;
        let auth = Authenticator::new(AuthConfig {
            jwks: vec![server.external_access()],
            ..AuthConfig::default()
        });
        let valid = json!({
            "sub": "repo:acme/app", "iss": "https://issuer.example.com", "aud": "scaffolder", "exp": now() + 600,
        });
        let cases = [
            (
                "iss",
                json!("https://evil.example.com"),
                "issuer does not match",
            ),
            ("aud", json!("other-service"), "audience does not match"),
            ("iss", Value::Null, "has no 'iss' claim"),
            ("aud", Value::Null, "has no 'aud' claim"),
        ];
        for (claim, value, expected) in cases {
            let mut claims = valid.clone();
            match value {
                Value::Null => claims.as_object_mut().unwrap().remove(claim),
                value => claims
                    .as_object_mut()
                    .unwrap()
                    .insert(claim.to_owned(), value),
            };
            let message = reject(&auth, Some(&bearer(&sign(&key, Some("JWT"), claims)))).await;
            assert!(message.contains(expected), "{claim}: {message}");
        }
        // A user token is not accepted by an externalAccess key set.
        let message = reject(&auth, Some(&bearer(&sign(&key, Some(TYP_USER), valid)))).await;
        assert!(
            message.contains("user tokens are not accepted"),
            "{message}"
        );
    }

    #[test]
    fn principal_debug_hides_the_token() {
        let principal = Principal {
            kind: PrincipalKind::Service {
                subject: "ci-bot".to_owned(),
            },
            token: Some("super-secret-token".to_owned()),
        };
        let printed = format!("{principal:?} {:?}", static_config().static_tokens);
        assert!(!printed.contains("secret-token"), "{printed}");
        assert!(printed.contains("ci-bot"), "{printed}");
    }

    #[test]
    fn validate_rejects_what_backstage_rejects() {
        assert_eq!(static_config().validate(), Ok(()));
        let short = AuthConfig {
            static_tokens: vec![StaticToken {
                token: "short".to_owned(),
                subject: "s".to_owned(),
            }],
            ..AuthConfig::default()
        };
        assert!(short.validate().is_err());
        let hmac = AuthConfig {
            jwks: vec![JwksAccess {
                url: "https://idp.example.com/jwks".to_owned(),
                algorithms: vec!["HS256".to_owned()],
                ..JwksAccess::default()
            }],
            ..AuthConfig::default()
        };
        assert!(hmac.validate().unwrap_err().message.contains("HS256"));
        let not_url = AuthConfig {
            backstage_base_url: Some("backstage".to_owned()),
            ..AuthConfig::default()
        };
        assert!(not_url.validate().is_err());
    }

    #[test]
    fn validate_allows_unverified_tokens_only_when_nothing_could_verify_them() {
        assert_eq!(development_config().validate(), Ok(()));
        let refused = [
            AuthConfig {
                allow_anonymous: false,
                ..development_config()
            },
            AuthConfig {
                serve_unverified_tokens: true,
                allow_anonymous: true,
                ..static_config()
            },
            AuthConfig {
                backstage_base_url: Some("http://127.0.0.1:7007".to_owned()),
                ..development_config()
            },
        ];
        for config in refused {
            let error = config.validate().unwrap_err();
            assert!(error.message.contains("unverified tokens"), "{error}");
        }
    }
}
