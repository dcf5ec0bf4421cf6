//! `POST /v2/dry-run` (spec §1.12, §5).

use std::sync::Arc;

use axum::Extension;
use axum::Json as JsonResponse;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use scaffolder_engine::{DryRunUpload, LocalRunRequest, LocalRunResult, TaskUser, TemplateFiles};
use scaffolder_template::Template;
use serde_json::{Value as Json, json};

use super::{
    body_object, check_values_and_secrets, json_body, no_query, required, secrets_field,
    with_backstage_token,
};
use crate::ApiState;
use crate::auth::Principal;
use crate::entity_check::{EntityProblem, check_template_entity};
use crate::error::ApiError;

pub async fn dry_run(
    State(state): State<ApiState>,
    Extension(principal): Extension<Arc<Principal>>,
    uri: Uri,
    body: Bytes,
) -> Result<JsonResponse<Json>, ApiError> {
    no_query(&uri)?;
    let body = body_object(json_body(&body)?)?;
    let entity = required(&body, "template")?.clone();
    let values = required(&body, "values")?.clone();
    if !values.is_object() {
        return Err(ApiError::input("request/body/values must be object"));
    }
    let contents = required(&body, "directoryContents")?;
    let secrets = secrets_field(&body, "secrets")?;
    let directory_contents = parse_directory_contents(contents)?;

    match check_template_entity(&entity) {
        Ok(()) => {}
        Err(EntityProblem::NotATemplate) => {
            return Err(ApiError::input("Input template is not a template"));
        }
        Err(EntityProblem::Invalid(message)) => return Err(ApiError::type_error(message)),
    }
    let template = Template::from_json(entity).map_err(|err| {
        ApiError::input("Input template is not a template")
            .with_cause("TemplateError", err.to_string())
    })?;
    let values = check_values_and_secrets(&template, &values, &secrets)?;
    let secrets = with_backstage_token(secrets, &principal);

    let result = state
        .engine
        .dry_run(LocalRunRequest {
            template,
            values,
            secrets,
            files: TemplateFiles::Uploaded(directory_contents),
            user: Some(TaskUser {
                entity: None,
                user_ref: principal.created_by().map(str::to_owned),
            }),
            execute: false,
            events: None,
            cancel: Default::default(),
        })
        .await?;
    Ok(JsonResponse(response_body(result)))
}

/// The response body of `POST /v2/dry-run`: `{ log, directoryContents, output, steps }`,
/// file contents in base64. `scaffolder dry-run --json` prints the same. The result's
/// values move into the body, uncopied.
pub fn response_body(result: LocalRunResult) -> Json {
    let files: Vec<Json> = result
        .directory_contents
        .iter()
        .map(|f| {
            json!({
                "path": f.path,
                "executable": f.executable,
                "base64Content": BASE64.encode(&f.content),
            })
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("log".into(), Json::Array(result.log));
    body.insert("directoryContents".into(), Json::Array(files));
    body.insert("output".into(), result.output);
    body.insert(
        "steps".into(),
        Json::Array(result.steps.into_iter().map(Json::Object).collect()),
    );
    Json::Object(body)
}

/// `[{ path, base64Content, executable? }]` with zod's messages, prefixed like Backstage's
/// `Malformed request`.
fn parse_directory_contents(value: &Json) -> Result<Vec<DryRunUpload>, ApiError> {
    let malformed = |index: usize, what: &str| {
        ApiError::input(format!(
            "Malformed request: directoryContents[{index}]: {what}"
        ))
    };
    let Json::Array(items) = value else {
        return Err(ApiError::input(
            "request/body/directoryContents must be array",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let path = item
                .get("path")
                .and_then(Json::as_str)
                .ok_or_else(|| malformed(index, "path must be a string"))?;
            let content = item
                .get("base64Content")
                .and_then(Json::as_str)
                .ok_or_else(|| malformed(index, "base64Content must be a string"))?;
            let content = BASE64.decode(content).map_err(|e| {
                malformed(index, &format!("base64Content is not valid base64: {e}"))
            })?;
            // An `executable` flag is dropped, as Backstage drops it.
            Ok(DryRunUpload {
                path: path.to_owned(),
                content,
            })
        })
        .collect()
}
