use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

use super::authenticator::*;
use super::config::*;
use super::jwks::*;
use super::principal::*;

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
    let token = jsonwebtoken::encode(&header, &user_claims("user:default/jane"), &secret).unwrap();

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
