//! Route handlers, one file per resource.

pub mod dry_run;
pub mod events;
pub mod misc;
pub mod openapi;
pub mod tasks;
pub mod templates;

use axum::body::Bytes;
use axum::http::Uri;
use scaffolder_template::parameters::check_values;
use scaffolder_template::{Template, validate_secrets};
use serde_json::{Map, Value as Json, json};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::query::Query;

/// A JSON request body; parser errors are 400s with the parser's message, as
/// Backstage rethrows them as `InputError`. A body with too many values is refused
/// before it is parsed ([`crate::body::check_json_size`]).
pub(crate) fn json_body(body: &Bytes) -> Result<Json, ApiError> {
    crate::body::check_json_size(body)?;
    serde_json::from_slice(body)
        .map_err(|e| ApiError::input(format!("Unexpected token in JSON body: {e}")))
}

/// An optional JSON body (empty means `{}`).
pub(crate) fn optional_json_body(body: &Bytes) -> Result<Json, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Object(Map::new()));
    }
    json_body(body)
}

/// The body as an object, with the validator's message otherwise.
pub(crate) fn body_object(body: Json) -> Result<Map<String, Json>, ApiError> {
    match body {
        Json::Object(map) => Ok(map),
        _ => Err(ApiError::input("request/body must be object")),
    }
}

/// A required property of the body.
pub(crate) fn required<'a>(body: &'a Map<String, Json>, key: &str) -> Result<&'a Json, ApiError> {
    body.get(key)
        .ok_or_else(|| ApiError::input(format!("request/body must have required property '{key}'")))
}

/// An optional `{ "<k>": "<string>" }` map of secrets at `request/body/<key>`.
pub(crate) fn secrets_field(
    body: &Map<String, Json>,
    key: &str,
) -> Result<Map<String, Json>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(Map::new()),
        Some(Json::Object(secrets)) => {
            if let Some((name, _)) = secrets.iter().find(|(_, v)| !v.is_string()) {
                return Err(ApiError::input(format!(
                    "request/body/{key}/{name} must be string"
                )));
            }
            Ok(secrets.clone())
        }
        Some(_) => Err(ApiError::input(format!(
            "request/body/{key} must be object"
        ))),
    }
}

/// Rejects any query parameter on a route that documents none.
pub(crate) fn no_query(uri: &Uri) -> Result<(), ApiError> {
    Query::parse(uri.query(), &[]).map(|_| ())
}

/// Checks `values` against each shown parameter page, then `secrets` against the
/// template's secrets schema: Backstage's `400 { errors }` on the first that fails.
/// Returns the values the run gets: Backstage 4.3.0 removes what only hidden pages (a
/// false `when`) own.
pub(crate) fn check_values_and_secrets(
    template: &Template,
    values: &Json,
    secrets: &Map<String, Json>,
) -> Result<Json, ApiError> {
    let checked = check_values(&template.spec.parameters, values);
    for warning in &checked.warnings {
        tracing::debug!(template = %template.entity_ref(), "{warning}");
    }
    let values = checked.into_result().map_err(ApiError::Validation)?;
    check_secrets(template, secrets)?;
    Ok(values)
}

/// Checks `secrets` against `spec.secrets.schema`, when the template has one.
pub(crate) fn check_secrets(
    template: &Template,
    secrets: &Map<String, Json>,
) -> Result<(), ApiError> {
    match &template.spec.secrets_schema {
        Some(schema) => {
            validate_secrets(schema, &Json::Object(secrets.clone())).map_err(ApiError::Validation)
        }
        None => Ok(()),
    }
}

/// The secrets a run keeps: the user's, plus the caller's token as `backstageToken`.
pub(crate) fn with_backstage_token(
    mut secrets: Map<String, Json>,
    principal: &Principal,
) -> Map<String, Json> {
    if let Some(token) = &principal.token {
        secrets.insert(crate::BACKSTAGE_TOKEN_SECRET.into(), json!(token));
    }
    secrets
}
