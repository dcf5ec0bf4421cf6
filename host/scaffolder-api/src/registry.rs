//! Our Wasm actions for an unmodified Backstage, through its actions registry
//! (`../shared/spec/backstage-actions-registry.md`): the server answers as a Backstage
//! plugin under `/api/<pluginId>`, with the routes every plugin's `ActionsRegistryService`
//! serves. A Backstage backend lists `<pluginId>` in `backend.actions.pluginSources`, and
//! its scaffolder then offers `<pluginId>:<action>` to templates and invokes it here.
//!
//! - `GET /.backstage/actions/v1/actions`: every exposed action, with schemas and
//!   attributes from the plugin's metadata;
//! - `POST /.backstage/actions/v1/actions/:actionId/invoke`: the input as the body;
//! - `POST /.backstage/actions/v2/actions/:actionId/invoke`: `{ input, secrets? }`;
//! - `GET /.backstage/auth/v1/jwks.json`: the keys of tokens we issue (none yet).
//!
//! Every route but the last takes only Backstage plugin tokens of an allowed caller
//! ([`crate::auth::PluginTokenVerifier`]); errors have Backstage's standard body.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json as JsonResponse};
use globset::{Glob, GlobSet, GlobSetBuilder};
use scaffolder_engine::{Engine, Invocation, InvokeError};
use scaffolder_runtime::ActionInfo;
use serde_json::{Map, Value as Json, json};

use crate::auth::{PluginAuthError, PluginCaller, PluginTokenVerifier};
use crate::body::ContentType;
use crate::error::{self, ApiError};
use crate::routes::json_body;

/// Express's `json()` default, which Backstage's registries use.
const BODY_LIMIT: usize = 100 * 1024;

/// What the registry routes need.
#[derive(Clone)]
pub struct RegistryState {
    pub engine: Engine,
    pub plugin_id: String,
    pub verifier: PluginTokenVerifier,
    /// The action ids exposed; `None` exposes every loaded action.
    pub exposed: Option<Arc<GlobSet>>,
}

/// A pattern of [`RegistryState::exposed`] that is not a glob.
#[derive(Debug, thiserror::Error)]
#[error("'{pattern}' is not a valid action pattern: {message}")]
pub struct PatternError {
    pattern: String,
    message: String,
}

/// The set of action ids matching any of `patterns` (`*` spans `:`, as Backstage's
/// minimatch filters on action ids do).
pub fn exposed_actions(patterns: &[String]) -> Result<GlobSet, PatternError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|err| PatternError {
            pattern: pattern.clone(),
            message: err.kind().to_string(),
        })?;
        set.add(glob);
    }
    set.build().map_err(|err| PatternError {
        pattern: patterns.join(", "),
        message: err.to_string(),
    })
}

/// The routes, relative to `/api/<pluginId>`.
pub fn router(state: RegistryState) -> Router {
    let authenticated = Router::new()
        .route("/.backstage/actions/v1/actions", get(list))
        .route(
            "/.backstage/actions/v1/actions/{action_id}/invoke",
            post(invoke_v1),
        )
        .route(
            "/.backstage/actions/v2/actions/{action_id}/invoke",
            post(invoke_v2),
        )
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/.backstage/auth/v1/jwks.json", get(jwks))
        .merge(authenticated)
        .layer(middleware::from_fn(error::standard_error_body))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

impl RegistryState {
    fn is_exposed(&self, action_id: &str) -> bool {
        self.exposed
            .as_ref()
            .is_none_or(|set| set.is_match(action_id))
    }

    /// Our action for a registry id `<pluginId>:<action>`, when we expose it.
    fn action_for(&self, registry_id: &str) -> Option<ActionInfo> {
        let name = registry_id
            .strip_prefix(&self.plugin_id)?
            .strip_prefix(':')?;
        if !self.is_exposed(name) {
            return None;
        }
        Some(self.engine.actions().get(name)?.info.clone())
    }
}

/// Checks the plugin token and stores the [`PluginCaller`] for the handlers.
async fn authenticate(
    State(state): State<RegistryState>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = crate::authorization(&request);
    match state.verifier.authenticate(header.as_deref()).await {
        Ok(caller) => {
            request.extensions_mut().insert(Arc::new(caller));
            next.run(request).await
        }
        Err(refusal) => {
            tracing::info!(target: "scaffolder::audit", path = %request.uri().path(), "registry request refused: {refusal}");
            match refusal {
                PluginAuthError::Unauthenticated(message) => ApiError::authentication(message),
                PluginAuthError::NotAllowed(message) => ApiError::not_allowed(message),
            }
            .into_response()
        }
    }
}

/// `GET /.backstage/auth/v1/jwks.json`: we sign no tokens, so there are no keys.
async fn jwks() -> JsonResponse<Json> {
    JsonResponse(json!({ "keys": [] }))
}

/// `GET /.backstage/actions/v1/actions`.
async fn list(State(state): State<RegistryState>) -> JsonResponse<Json> {
    let actions = state.engine.actions();
    let listed: Vec<Json> = actions
        .iter()
        .filter(|action| state.is_exposed(&action.info.id))
        .map(|action| describe(&state.plugin_id, &action.info))
        .collect();
    JsonResponse(json!({ "actions": listed }))
}

/// An action as Backstage's `ActionsServiceAction`.
fn describe(plugin_id: &str, info: &ActionInfo) -> Json {
    let mut schema = Map::new();
    schema.insert("input".into(), info.input_schema.clone());
    schema.insert(
        "output".into(),
        info.output_schema
            .clone()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
    );
    if !info.capabilities.secrets.is_empty() {
        let properties: Map<String, Json> = info
            .capabilities
            .secrets
            .iter()
            .map(|name| (name.clone(), json!({ "type": "string" })))
            .collect();
        schema.insert(
            "secrets".into(),
            json!({ "type": "object", "properties": properties, "additionalProperties": false }),
        );
    }
    json!({
        "id": format!("{plugin_id}:{}", info.id),
        "pluginId": plugin_id,
        "name": info.id,
        "title": info.id,
        "description": info.description,
        "schema": schema,
        "attributes": {
            "readOnly": info.attributes.read_only,
            "destructive": info.attributes.destructive,
            "idempotent": info.attributes.idempotent,
        },
    })
}

/// The body as Backstage's `express.json()` leaves it: parsed only when the content type
/// is `application/json`, `{}` for any other type or an empty body (so a cross-site
/// `text/plain` POST carries no input), `415` for a charset other than UTF.
fn registry_body(headers: &HeaderMap, body: &Bytes) -> Result<Json, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    match ContentType::of(headers) {
        ContentType::Json => json_body(body),
        ContentType::UnsupportedCharset(charset) => Err(ApiError::unsupported_media_type(
            ContentType::unsupported_message(&charset),
        )),
        ContentType::Missing | ContentType::NotJson(_) => Ok(json!({})),
    }
}

/// `POST /.backstage/actions/v1/actions/:actionId/invoke`: the body is the input.
async fn invoke_v1(
    State(state): State<RegistryState>,
    Path(registry_id): Path<String>,
    Extension(caller): Extension<Arc<PluginCaller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<JsonResponse<Json>, ApiError> {
    let input = registry_body(&headers, &body)?;
    invoke(&state, &registry_id, &caller, input, Map::new()).await
}

/// `POST /.backstage/actions/v2/actions/:actionId/invoke`: `{ input, secrets? }`.
async fn invoke_v2(
    State(state): State<RegistryState>,
    Path(registry_id): Path<String>,
    Extension(caller): Extension<Arc<PluginCaller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<JsonResponse<Json>, ApiError> {
    let Json::Object(mut body) = registry_body(&headers, &body)? else {
        return Err(ApiError::input("request/body must be object"));
    };
    let input = body.remove("input").unwrap_or_else(|| json!({}));
    let secrets = match body.remove("secrets") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(secrets)) => secrets,
        Some(_) => return Err(ApiError::input("request/body/secrets must be object")),
    };
    invoke(&state, &registry_id, &caller, input, secrets).await
}

async fn invoke(
    state: &RegistryState,
    registry_id: &str,
    caller: &PluginCaller,
    input: Json,
    secrets: Map<String, Json>,
) -> Result<JsonResponse<Json>, ApiError> {
    let not_found = || ApiError::not_found(format!("Action \"{registry_id}\" not found"));
    let action = state.action_for(registry_id).ok_or_else(not_found)?;
    let invalid_input = || ApiError::input(format!("Invalid input to action \"{registry_id}\""));
    if !input.is_object() {
        return Err(invalid_input().with_cause("InputError", "the input must be an object"));
    }
    check_secrets(&action, &secrets).map_err(|message| {
        ApiError::input(format!("Invalid secrets for action \"{registry_id}\""))
            .with_cause("InputError", message)
    })?;
    let invocation = Invocation {
        action_id: action.id,
        input,
        secrets,
        caller: format!("plugin:{}", caller.plugin),
        user_ref: caller.user_ref.clone(),
    };
    match state.engine.invoke(invocation).await {
        Ok(output) => Ok(JsonResponse(json!({ "output": output }))),
        Err(InvokeError::NotFound(_)) => Err(not_found()),
        Err(InvokeError::InvalidInput(message)) => {
            Err(invalid_input().with_cause("InputError", message))
        }
        Err(InvokeError::InvalidOutput(message)) => Err(ApiError::input(format!(
            "Invalid output from action \"{registry_id}\""
        ))
        .with_cause("InputError", message)),
        Err(InvokeError::Failed(message)) => Err(ApiError::internal(message)),
    }
}

/// As Backstage: secrets only for an action that declares them, strings, and only the
/// declared names.
fn check_secrets(action: &ActionInfo, secrets: &Map<String, Json>) -> Result<(), String> {
    if secrets.is_empty() {
        return Ok(());
    }
    let declared = &action.capabilities.secrets;
    if declared.is_empty() {
        return Err("the action declares no secrets".into());
    }
    for (name, value) in secrets {
        if !declared.contains(name) {
            return Err(format!(
                "'{name}' is not one of the action's secrets ({})",
                declared.join(", ")
            ));
        }
        if !value.is_string() {
            return Err(format!("secret '{name}' must be a string"));
        }
    }
    Ok(())
}
