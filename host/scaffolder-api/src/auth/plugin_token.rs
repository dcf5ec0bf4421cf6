//! The actions registry's callers: Backstage plugin-to-plugin tokens, verified against the
//! calling plugin's published keys, with the user an `obo` token acts for.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};

use super::authenticator::bearer_token;
use super::jwks::{
    ASYMMETRIC_ALGORITHMS, Claims, KeySet, LEEWAY_SECS, MIN_REFETCH_INTERVAL, TYP_LIMITED_USER,
    TYP_PLUGIN, jwks_client, verify,
};

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

pub(super) struct PluginTokenInner {
    plugin_id: String,
    /// One key set per allowed caller, so an unknown `sub` never makes us fetch anything.
    callers: std::collections::HashMap<String, KeySet>,
    user_keys: KeySet,
}

impl PluginTokenVerifier {
    pub fn new(config: PluginTokenConfig) -> Self {
        Self::with_refetch_interval(config, MIN_REFETCH_INTERVAL)
    }

    pub(super) fn with_refetch_interval(
        config: PluginTokenConfig,
        refetch_interval: Duration,
    ) -> Self {
        let http = jwks_client();
        let base = config.backstage_base_url.trim_end_matches('/').to_owned();
        let key_set = |url: String| KeySet::new(url, http.clone(), refetch_interval);
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

/// Backstage's plugin id pattern (`^[a-z0-9_-]+$`, case-insensitive).
pub fn is_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
