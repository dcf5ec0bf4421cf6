//! The actions registry routes (`/api/<pluginId>/.backstage/actions/...`) as Backstage's
//! `ActionsService` calls them: plugin tokens signed with keys served at the calling
//! plugin's JWKS URL, percent-encoded ids, Backstage's bodies and error shapes.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use common::TestServer;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use scaffolder_api::auth::{PluginTokenConfig, PluginTokenVerifier};
use scaffolder_api::registry::{self, RegistryState};
use scaffolder_store::Backend;
use serde_json::{Value as Json, json};

const PLUGIN_ID: &str = "wasm-actions";

/// An ES256 key; `seed` makes distinct, reproducible keys.
struct Key {
    encoding: EncodingKey,
    jwk: Jwk,
}

fn key(seed: u8, kid: &str) -> Key {
    let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let der = secret.to_pkcs8_der().unwrap();
    let encoding = EncodingKey::from_ec_der(der.as_bytes());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Key { encoding, jwk }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(key: &Key, typ: &str, claims: Json) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = key.jwk.common.key_id.clone();
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

/// A plugin token as Backstage's `AuthService.getPluginRequestToken` makes one.
fn plugin_token(key: &Key, caller: &str, audience: &str, obo: Option<&str>) -> String {
    let mut claims = json!({ "sub": caller, "aud": audience, "iat": now(), "exp": now() + 3600 });
    if let Some(obo) = obo {
        claims["obo"] = json!(obo);
    }
    sign(key, "vnd.backstage.plugin", claims)
}

/// A Backstage "backend" on loopback that publishes the scaffolder's and catalog's plugin
/// keys and the users' keys, and our registry routes on another port.
struct Setup {
    server: TestServer,
    /// `http://127.0.0.1:<port>/api/wasm-actions`
    base: String,
    client: reqwest::Client,
    scaffolder_key: Key,
    catalog_key: Key,
    user_key: Key,
}

impl Setup {
    async fn start(exposed: &[&str]) -> Self {
        let server = TestServer::start(Backend::Sqlite).await;
        let scaffolder_key = key(1, "scaffolder-key");
        let catalog_key = key(2, "catalog-key");
        let user_key = key(3, "user-key");
        let set = |key: &Key| JwkSet {
            keys: vec![key.jwk.clone()],
        };
        let (scaffolder_keys, catalog_keys, user_keys) =
            (set(&scaffolder_key), set(&catalog_key), set(&user_key));
        let backstage = Router::new()
            .route(
                "/api/scaffolder/.backstage/auth/v1/jwks.json",
                get(move || async move { axum::Json(scaffolder_keys) }),
            )
            .route(
                "/api/catalog/.backstage/auth/v1/jwks.json",
                get(move || async move { axum::Json(catalog_keys) }),
            )
            .route(
                "/api/auth/.well-known/jwks.json",
                get(move || async move { axum::Json(user_keys) }),
            );
        let backstage_url = serve(backstage).await;

        let exposed: Vec<String> = exposed.iter().map(|s| s.to_string()).collect();
        let state = RegistryState {
            engine: server.engine.clone(),
            plugin_id: PLUGIN_ID.into(),
            verifier: PluginTokenVerifier::new(PluginTokenConfig {
                plugin_id: PLUGIN_ID.into(),
                backstage_base_url: backstage_url,
                // The catalog publishes keys but is not allowed to call.
                allowed_callers: vec!["scaffolder".into()],
            }),
            exposed: (!exposed.is_empty())
                .then(|| Arc::new(registry::exposed_actions(&exposed).unwrap())),
        };
        let app = Router::new().nest(&format!("/api/{PLUGIN_ID}"), registry::router(state));
        let base = format!("{}/api/{PLUGIN_ID}", serve(app).await);
        Self {
            server,
            base,
            client: reqwest::Client::new(),
            scaffolder_key,
            catalog_key,
            user_key,
        }
    }

    fn token(&self) -> String {
        plugin_token(&self.scaffolder_key, "scaffolder", PLUGIN_ID, None)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Json) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Json) -> (u16, Json) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    /// `POST .../v1/actions/<encodeURIComponent(id)>/invoke` with the scaffolder's token.
    async fn invoke(&self, id: &str, input: Json) -> (u16, Json) {
        let path = format!("/.backstage/actions/v1/actions/{}/invoke", encode(id));
        self.post(&path, Some(&self.token()), input).await
    }

    async fn finish(self) {
        self.server.finish().await;
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Json) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

/// `encodeURIComponent` for action ids.
fn encode(id: &str) -> String {
    id.replace(':', "%3A")
}

fn error_of(body: &Json) -> (&str, &str) {
    (
        body["error"]["name"].as_str().unwrap_or_default(),
        body["error"]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn actions_are_listed_as_backstage_lists_them() {
    let setup = Setup::start(&[]).await;
    let (status, body) = setup
        .get("/.backstage/actions/v1/actions", Some(&setup.token()))
        .await;
    assert_eq!(status, 200, "{body}");
    let actions = body["actions"].as_array().unwrap();
    let write = actions
        .iter()
        .find(|a| a["id"] == "wasm-actions:friendly:write-file")
        .unwrap_or_else(|| panic!("{body:#}"));
    assert_eq!(write["pluginId"], PLUGIN_ID);
    assert_eq!(write["name"], "friendly:write-file");
    assert_eq!(write["title"], "friendly:write-file");
    assert_eq!(write["description"], "Writes a file into the workspace.");
    assert_eq!(
        write["schema"]["input"]["required"],
        json!(["path", "content"])
    );
    assert_eq!(write["schema"]["output"]["type"], "object");
    assert!(write["schema"].get("secrets").is_none());
    assert_eq!(
        write["attributes"],
        json!({ "readOnly": false, "destructive": true, "idempotent": false })
    );
    let http = actions
        .iter()
        .find(|a| a["id"] == "wasm-actions:friendly:http-get")
        .unwrap();
    assert_eq!(http["attributes"]["readOnly"], true);
    assert_eq!(http["attributes"]["destructive"], false);
    let secret = actions
        .iter()
        .find(|a| a["id"] == "wasm-actions:friendly:secret")
        .unwrap();
    assert_eq!(
        secret["schema"]["secrets"]["properties"],
        json!({ "deploy-token": { "type": "string" } })
    );
    // Served without a token, as on every Backstage plugin; we sign nothing yet.
    let (status, body) = setup.get("/.backstage/auth/v1/jwks.json", None).await;
    assert_eq!((status, body), (200, json!({ "keys": [] })));
    setup.finish().await;
}

#[tokio::test]
async fn an_invoked_action_runs_in_a_fresh_workspace_that_is_removed() {
    let setup = Setup::start(&[]).await;
    let (status, body) = setup
        .invoke(
            "wasm-actions:friendly:write-file",
            json!({ "path": "notes.txt", "content": "hello" }),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({ "output": {} })));
    // The next invocation does not see the first one's file.
    let (status, body) = setup
        .invoke(
            "wasm-actions:friendly:read-file",
            json!({ "path": "notes.txt" }),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(error_of(&body).0, "Error");
    let invocations = setup.server.workdir.path().join("invocations");
    assert_eq!(
        std::fs::read_dir(&invocations).unwrap().count(),
        0,
        "workspaces are removed"
    );
    setup.finish().await;
}

#[tokio::test]
async fn invoke_errors_have_backstage_names_codes_and_messages() {
    let setup = Setup::start(&["friendly:write-file", "friendly:se*"]).await;
    let (status, body) = setup
        .invoke("wasm-actions:friendly:write-file", json!({ "path": 3 }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_of(&body),
        (
            "InputError",
            "Invalid input to action \"wasm-actions:friendly:write-file\""
        )
    );
    assert!(
        body["error"]["cause"]["message"]
            .as_str()
            .unwrap()
            .contains("content"),
        "the cause says what is wrong: {body}"
    );
    assert_eq!(
        body["request"],
        // Relative to the plugin's router, as Backstage's error middleware writes it.
        json!({ "method": "POST", "url": "/.backstage/actions/v1/actions/wasm-actions%3Afriendly%3Awrite-file/invoke" })
    );

    for missing in [
        "wasm-actions:friendly:nope",
        "wasm-actions:friendly:noop",
        "friendly:noop",
    ] {
        let (status, body) = setup.invoke(missing, json!({})).await;
        assert_eq!(status, 404, "{missing}: {body}");
        assert_eq!(
            error_of(&body),
            (
                "NotFoundError",
                format!("Action \"{missing}\" not found").as_str()
            )
        );
    }
    let (_, listed) = setup
        .get("/.backstage/actions/v1/actions", Some(&setup.token()))
        .await;
    let ids: Vec<&str> = listed["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "wasm-actions:friendly:secret",
            "wasm-actions:friendly:write-file"
        ],
        "only the exposed actions are listed"
    );

    // v2: secrets only for actions that declare them.
    let v2 = |id: &str| format!("/.backstage/actions/v2/actions/{}/invoke", encode(id));
    let token = setup.token();
    let (status, body) = setup
        .post(
            &v2("wasm-actions:friendly:secret"),
            Some(&token),
            json!({ "input": {}, "secrets": { "deploy-token": "s3cr3t" } }),
        )
        .await;
    assert_eq!(
        (status, &body),
        (200, &json!({ "output": { "value": "s3cr3t" } }))
    );
    let (status, body) = setup
        .post(
            &v2("wasm-actions:friendly:write-file"),
            Some(&token),
            json!({ "input": { "path": "a", "content": "b" }, "secrets": { "x": "y" } }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_of(&body).0, "InputError");
    setup.finish().await;
}

#[tokio::test]
async fn tokens_are_checked_as_a_backstage_plugin_checks_them() {
    let setup = Setup::start(&[]).await;
    let list = "/.backstage/actions/v1/actions";
    let expired = sign(
        &setup.scaffolder_key,
        "vnd.backstage.plugin",
        json!({ "sub": "scaffolder", "aud": PLUGIN_ID, "iat": now() - 7200, "exp": now() - 3600 }),
    );
    // Same key id, another key: a forgery.
    let forged = plugin_token(&key(9, "scaffolder-key"), "scaffolder", PLUGIN_ID, None);
    let wrong_audience = plugin_token(&setup.scaffolder_key, "scaffolder", "catalog", None);
    let user_token = sign(
        &setup.user_key,
        "vnd.backstage.user",
        json!({ "sub": "user:default/jane", "iat": now(), "exp": now() + 3600 }),
    );
    for (what, token, message) in [
        ("no token", None, "Missing credentials"),
        ("an expired token", Some(expired.as_str()), "expired"),
        ("a forged token", Some(forged.as_str()), "signature"),
        (
            "a token for another plugin",
            Some(wrong_audience.as_str()),
            "audience",
        ),
        ("a user token", Some(user_token.as_str()), "plugin tokens"),
    ] {
        let (status, body) = setup.get(list, token).await;
        assert_eq!(status, 401, "{what}: {body}");
        let (name, text) = error_of(&body);
        assert_eq!(name, "AuthenticationError", "{what}");
        assert!(text.contains(message), "{what}: {text}");
    }

    // The catalog's token verifies, but the catalog may not call.
    let catalog = plugin_token(&setup.catalog_key, "catalog", PLUGIN_ID, None);
    let (status, body) = setup.get(list, Some(&catalog)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_of(&body).0, "NotAllowedError");
    let (status, _) = setup
        .post(
            "/.backstage/actions/v1/actions/wasm-actions%3Afriendly%3Anoop/invoke",
            Some(&catalog),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);

    // On behalf of a user: the user's limited token rides along.
    let limited = sign(
        &setup.user_key,
        "vnd.backstage.limited-user",
        json!({ "sub": "user:default/jane", "iat": now(), "exp": now() + 3600 }),
    );
    let on_behalf = plugin_token(
        &setup.scaffolder_key,
        "scaffolder",
        PLUGIN_ID,
        Some(&limited),
    );
    let whoami = "/.backstage/actions/v1/actions/wasm-actions%3Afriendly%3Awhoami/invoke";
    let (status, body) = setup.post(whoami, Some(&on_behalf), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"]["userRef"], "user:default/jane",
        "the user the plugin acts for is the step's user"
    );
    let (status, without_user) = setup.post(whoami, Some(&setup.token()), json!({})).await;
    assert_eq!(status, 200, "{without_user}");
    assert_eq!(without_user["output"]["userRef"], Json::Null);
    assert_ne!(
        body["output"]["taskId"], without_user["output"]["taskId"],
        "each invocation is a run of its own"
    );
    let forged_obo = sign(
        &key(9, "user-key"),
        "vnd.backstage.limited-user",
        json!({ "sub": "user:default/admin", "iat": now(), "exp": now() + 3600 }),
    );
    let token = plugin_token(
        &setup.scaffolder_key,
        "scaffolder",
        PLUGIN_ID,
        Some(&forged_obo),
    );
    let (status, body) = setup.get(list, Some(&token)).await;
    assert_eq!(status, 401, "{body}");
    setup.finish().await;
}

/// Backstage's `express.json()` parses only `application/json` bodies: any other type
/// leaves the input empty, so a cross-site `text/plain` POST cannot carry one.
#[tokio::test]
async fn only_json_bodies_are_read_as_input() {
    let setup = Setup::start(&[]).await;
    let path = format!(
        "/.backstage/actions/v1/actions/{}/invoke",
        encode("wasm-actions:friendly:write-file")
    );
    let post = |content_type: &'static str| {
        setup
            .client
            .post(format!("{}{path}", setup.base))
            .bearer_auth(setup.token())
            .header("content-type", content_type)
            .body(json!({ "path": "a.txt", "content": "b" }).to_string())
    };
    let (status, body) = send(post("text/plain")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_of(&body),
        (
            "InputError",
            "Invalid input to action \"wasm-actions:friendly:write-file\""
        ),
        "a text/plain body is not the input"
    );
    let (status, body) = send(post("application/json; charset=latin1")).await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(
        error_of(&body),
        (
            "UnsupportedMediaTypeError",
            "unsupported charset \"LATIN1\""
        )
    );
    let (status, body) = send(post("Application/JSON; charset=utf-8")).await;
    assert_eq!(status, 200, "{body}");
    setup.finish().await;
}
