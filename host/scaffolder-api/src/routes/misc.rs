//! `GET /v2/actions`, `POST /v2/autocomplete/...` and `GET /v2/templating-extensions`
//! (spec §1.4, §1.13, §1.14), and our `GET /v2/plugins`.

use axum::Json as JsonResponse;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use serde_json::{Map, Value as Json, json};

use super::{body_object, json_body, no_query, required};
use crate::ApiState;
use crate::error::ApiError;

/// `GET /v2/plugins` (ours; Backstage has no such route): the plugins tasks starting now
/// use, with what the configuration named and what it resolved to.
pub async fn plugins(
    State(state): State<ApiState>,
    uri: Uri,
) -> Result<JsonResponse<Json>, ApiError> {
    no_query(&uri)?;
    let actions = state.engine.actions();
    let list: Vec<Json> = actions
        .plugins()
        .iter()
        .map(|(plugin, origin)| {
            json!({
                "name": plugin.name(),
                "source": origin.source,
                "digest": plugin.digest(),
                "manifestDigest": origin.manifest_digest,
                "signedBy": origin.signed_by,
                "witVersion": plugin.wit_version().to_string(),
                "actions": plugin.info().actions.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(JsonResponse(json!({ "plugins": list })))
}

/// Every loaded action, sorted by id, in Backstage's shape.
pub async fn actions(
    State(state): State<ApiState>,
    uri: Uri,
) -> Result<JsonResponse<Json>, ApiError> {
    no_query(&uri)?;
    let actions = state.engine.actions();
    let list: Vec<Json> = actions
        .iter()
        .map(|action| {
            let info = &action.info;
            let mut out = Map::new();
            out.insert("id".into(), json!(info.id));
            if !info.description.is_empty() {
                out.insert("description".into(), json!(info.description));
            }
            if !info.examples.is_empty() {
                out.insert(
                    "examples".into(),
                    info.examples
                        .iter()
                        .map(|e| json!({ "description": e.description, "example": e.example }))
                        .collect(),
                );
            }
            let mut schema = Map::new();
            schema.insert("input".into(), info.input_schema.clone());
            if let Some(output) = &info.output_schema {
                schema.insert("output".into(), output.clone());
            }
            out.insert("schema".into(), Json::Object(schema));
            Json::Object(out)
        })
        .collect();
    Ok(JsonResponse(Json::Array(list)))
}

/// No autocomplete providers are installed yet: every provider is unsupported.
pub async fn autocomplete(
    Path((provider, _resource)): Path<(String, String)>,
    uri: Uri,
    body: Bytes,
) -> Result<JsonResponse<Json>, ApiError> {
    no_query(&uri)?;
    let body = body_object(json_body(&body)?)?;
    required(&body, "token")?;
    required(&body, "context")?;
    Err(ApiError::input(format!("Unsupported provider: {provider}")))
}

/// The filters our renderer adds to Nunjucks, with Backstage's metadata shapes.
pub async fn templating_extensions(uri: Uri) -> Result<JsonResponse<Json>, ApiError> {
    no_query(&uri)?;
    Ok(JsonResponse(json!({
        "filters": {
            "parseRepoUrl": {
                "description": "Parses a repository URL (as produced by the RepoUrlPicker) into its parts.",
                "schema": {
                    "input": { "type": "string" },
                    "output": {
                        "type": "object",
                        "properties": {
                            "host": { "type": "string" },
                            "owner": { "type": "string" },
                            "repo": { "type": "string" },
                            "organization": { "type": "string" },
                            "workspace": { "type": "string" },
                            "project": { "type": "string" }
                        },
                        "required": ["host", "repo"]
                    }
                },
                "examples": [{
                    "example": "${{ parameters.repoUrl | parseRepoUrl }}",
                    "notes": "github.com?owner=o&repo=r becomes { host: 'github.com', owner: 'o', repo: 'r' }"
                }]
            },
            "parseEntityRef": {
                "description": "Parses an entity reference into kind, namespace and name.",
                "schema": {
                    "input": { "type": "string" },
                    "arguments": [{
                        "type": "object",
                        "properties": {
                            "defaultKind": { "type": "string" },
                            "defaultNamespace": { "type": "string" }
                        }
                    }],
                    "output": {
                        "type": "object",
                        "properties": {
                            "kind": { "type": "string" },
                            "namespace": { "type": "string" },
                            "name": { "type": "string" }
                        },
                        "required": ["kind", "namespace", "name"]
                    }
                },
                "examples": [{
                    "example": "${{ parameters.owner | parseEntityRef }}",
                    "notes": "group:default/team-a becomes { kind: 'group', namespace: 'default', name: 'team-a' }"
                }]
            },
            "pick": {
                "description": "Selects a property of an object.",
                "schema": {
                    "input": { "type": "object" },
                    "arguments": [{ "type": "string" }],
                    "output": {}
                },
                "examples": [{ "example": "${{ parameters.owner | parseEntityRef | pick('name') }}" }]
            },
            "projectSlug": {
                "description": "Turns a repository URL into an `owner/repo` slug.",
                "schema": {
                    "input": { "type": "string" },
                    "output": { "type": "string" }
                },
                "examples": [{ "example": "${{ parameters.repoUrl | projectSlug }}" }]
            }
        },
        "globals": { "functions": {}, "values": {} }
    })))
}
