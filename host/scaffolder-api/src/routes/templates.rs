//! `GET /v2/templates/:namespace/:kind/:name/parameter-schema` (spec §1.3), our
//! `GET /v2/templates` (every template of the server's directories with its load status),
//! and the template lookup shared with task creation and retry.

use axum::Json as JsonResponse;
use axum::extract::{Path, State};
use axum::http::Uri;
use serde_json::{Value as Json, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::templates::{FindError, ListedTemplate, LoadedTemplate};

/// `GET /v2/templates` (ours, not Backstage's): `{ templates: [{ ref, title, file,
/// status: "loaded" | "error", error: { message, file, line, column, path } }] }`, sorted
/// by file. A broken file whose name cannot be read has a `null` ref. Templates of a
/// catalog are not listed: the catalog lists them.
pub async fn list(State(state): State<ApiState>, uri: Uri) -> Result<JsonResponse<Json>, ApiError> {
    super::no_query(&uri)?;
    let templates: Vec<Json> = state.templates.list().await.iter().map(listed).collect();
    Ok(JsonResponse(json!({ "templates": templates })))
}

fn listed(template: &ListedTemplate) -> Json {
    let mut out = json!({
        "ref": template.entity_ref,
        "title": template.title,
        "file": template.file.display().to_string(),
        "status": if template.error.is_some() { "error" } else { "loaded" },
    });
    if let Some(error) = &template.error {
        out["error"] = json!({
            "message": error.to_string(),
            "file": error.file,
            "line": error.position.map(|p| p.line),
            "column": error.position.map(|p| p.column),
            "path": error.path,
        });
    }
    out
}

pub async fn parameter_schema(
    State(state): State<ApiState>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    uri: Uri,
) -> Result<JsonResponse<Json>, ApiError> {
    super::no_query(&uri)?;
    if !kind.eq_ignore_ascii_case("template") {
        return Err(ApiError::input(
            "Invalid kind, only 'Template' kind is supported",
        ));
    }
    let loaded = find_template(&state, &namespace, &name).await?;
    let template = &loaded.template;
    let entity = &template.entity;
    let mut out = serde_json::Map::new();
    out.insert(
        "title".into(),
        json!(
            template
                .metadata
                .title
                .clone()
                .unwrap_or_else(|| template.metadata.name.clone())
        ),
    );
    if let Some(presentation) = &template.spec.presentation {
        out.insert("presentation".into(), presentation.clone());
    }
    if let Some(description) = &template.metadata.description {
        out.insert("description".into(), json!(description));
    }
    if let Some(options) = entity.pointer("/metadata/ui:options") {
        out.insert("ui:options".into(), options.clone());
    }
    let steps: Vec<Json> = template
        .spec
        .parameters
        .iter()
        .map(|page| {
            let mut step = serde_json::Map::new();
            step.insert(
                "title".into(),
                page.get("title")
                    .cloned()
                    .unwrap_or_else(|| json!("Please enter the following information")),
            );
            if let Some(description) = page.get("description") {
                step.insert("description".into(), description.clone());
            }
            // Backstage 4.3.0 moves a page's `when` out of the schema to the step, and
            // drops one that is neither a string nor a boolean (`router.cjs.js`).
            let mut schema = page.clone();
            if let Some(when) = schema.as_object_mut().and_then(|s| s.remove("when"))
                && (when.is_string() || when.is_boolean())
            {
                step.insert("when".into(), when);
            }
            step.insert("schema".into(), schema);
            Json::Object(step)
        })
        .collect();
    out.insert("steps".into(), Json::Array(steps));
    if let Some(decorators) = &template.spec.form_decorators {
        out.insert("formDecorators".into(), decorators.clone());
    }
    Ok(JsonResponse(Json::Object(out)))
}

/// The template `template:<namespace>/<name>`, Backstage's 404 when there is none, or a
/// 400 naming the file, line and column when it exists and does not load.
pub(crate) async fn find_template(
    state: &ApiState,
    namespace: &str,
    name: &str,
) -> Result<LoadedTemplate, ApiError> {
    match state.templates.find(namespace, name).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(ApiError::not_found(format!(
            "Template template:{namespace}/{name} not found"
        ))),
        Err(FindError::Broken(broken)) => Err(ApiError::input(format!(
            "Template template:{namespace}/{name} cannot be loaded: {}; fix it, it is read again on the next request",
            broken.error
        ))),
        Err(FindError::Unavailable(message)) => Err(ApiError::internal(message)),
    }
}

/// A template ref as Backstage's `parseEntityRef` reads it with default kind `template`
/// and namespace `default`: `[kind:][namespace/]name`. Returns `(namespace, name)`.
pub(crate) fn parse_template_ref(template_ref: &str) -> Result<(String, String), ApiError> {
    let (kind, rest) = match template_ref.split_once(':') {
        Some((kind, rest)) => (kind, rest),
        None => ("template", template_ref),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((namespace, name)) => (namespace, name),
        None => ("default", rest),
    };
    if name.is_empty() || namespace.is_empty() || kind.is_empty() || name.contains(['/', ':']) {
        return Err(ApiError::input(format!(
            "Entity reference \"{template_ref}\" was not on the form [<kind>:][<namespace>/]<name>"
        )));
    }
    if !kind.eq_ignore_ascii_case("template") {
        return Err(ApiError::input(
            "Invalid kind, only 'Template' kind is supported",
        ));
    }
    Ok((namespace.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_refs_take_backstage_defaults() {
        for r in ["template:default/x", "default/x", "x", "Template:default/x"] {
            assert_eq!(
                parse_template_ref(r).unwrap(),
                ("default".into(), "x".into()),
                "{r}"
            );
        }
        assert_eq!(
            parse_template_ref("ns/x").unwrap(),
            ("ns".into(), "x".into())
        );
        assert!(parse_template_ref("component:default/x").is_err());
        assert!(parse_template_ref("a/b/c").is_err());
    }
}
