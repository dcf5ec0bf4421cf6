//! The authentication settings: `backend.auth.externalAccess` entries as the configuration
//! file spells them ([`ExternalAccess`], read by `scaffolder-config`), and the
//! [`AuthConfig`] an [`Authenticator`](super::Authenticator) is built from, checked as
//! Backstage checks it at startup.

use std::fmt;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::jwks::ASYMMETRIC_ALGORITHMS;

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

/// One `backend.auth.externalAccess` entry, `{ type, options }`, as the configuration file
/// spells it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", content = "options", rename_all = "lowercase")]
pub enum ExternalAccess {
    /// `type: static`.
    Static(StaticToken),
    /// `type: jwks`.
    Jwks(JwksAccess),
}

/// A `type: static` external access token (`options.token`, `options.subject`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct StaticToken {
    /// The secret token; Backstage requires at least 8 characters and no whitespace
    /// ([`check_static_token`]).
    #[serde(deserialize_with = "static_token")]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwksAccess {
    /// URL of the JSON Web Key Set (`options.url`).
    pub url: String,
    /// Required `iss` claim (`options.issuer`); not checked when `None`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `alg` values (`options.algorithm`), e.g. `["RS256"]`; empty means every asymmetric
    /// algorithm. HMAC algorithms are never accepted: a published key set holds no shared secrets.
    #[serde(default, rename = "algorithm", deserialize_with = "one_or_more")]
    pub algorithms: Vec<String>,
    /// Accepted `aud` values (`options.audience`): the token's must include one of them;
    /// not checked when empty.
    #[serde(default, deserialize_with = "one_or_more")]
    pub audience: Vec<String>,
    /// `options.subjectPrefix`. As in Backstage the principal's subject is `external:<prefix>:<sub>`,
    /// or `external:<sub>` without a prefix.
    #[serde(default)]
    pub subject_prefix: Option<String>,
}

/// An [`AuthConfig`] that Backstage would refuse to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid auth config: {message}")]
pub struct AuthConfigError {
    /// Which entry is wrong and why.
    pub message: String,
}

impl AuthConfig {
    /// Checks the entries the way Backstage does at startup: static tokens that pass
    /// [`check_static_token`], declared once, with a non-space subject; JWKS and Backstage URLs that are http(s)
    /// URLs; known asymmetric algorithm names.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        let invalid = |message: String| Err(AuthConfigError { message });
        for (index, entry) in self.static_tokens.iter().enumerate() {
            if let Err(problem) = check_static_token(&entry.token) {
                return invalid(format!("static token #{index}: {problem}"));
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

pub(super) fn parse_asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    let algorithm = name.parse::<Algorithm>().ok()?;
    ASYMMETRIC_ALGORITHMS
        .contains(&algorithm)
        .then_some(algorithm)
}

pub(super) fn check_http_url(url: &str) -> Result<(), AuthConfigError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        _ => Err(AuthConfigError {
            message: format!("'{url}' is not an http(s) URL"),
        }),
    }
}

/// Static tokens shorter than this are refused by Backstage (`MIN_TOKEN_LENGTH` in `static.ts`).
const MIN_STATIC_TOKEN_LEN: usize = 8;

/// Backstage's rule for a static token (`static.ts`): at least 8 characters, no whitespace.
/// The configuration reader applies it to each entry and [`AuthConfig::validate`] again.
pub fn check_static_token(token: &str) -> Result<(), String> {
    if token.chars().any(char::is_whitespace) {
        return Err("the token must not contain whitespace".to_owned());
    }
    if token.chars().count() < MIN_STATIC_TOKEN_LEN {
        return Err(format!(
            "the token must be at least {MIN_STATIC_TOKEN_LEN} characters long"
        ));
    }
    Ok(())
}

fn static_token<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let token = String::deserialize(deserializer)?;
    check_static_token(&token).map_err(de::Error::custom)?;
    Ok(token)
}

/// One string or a list of strings (`algorithm: RS256` or `algorithm: [RS256, ES256]`).
fn one_or_more<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct OneOrMore;
    impl<'de> Visitor<'de> for OneOrMore {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
            Vec::deserialize(SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_any(OneOrMore)
}
