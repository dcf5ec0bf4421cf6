//! The check `POST /v2/dry-run` makes of its `template` before anything else: Backstage's
//! `templateEntityV1beta3Validator`, the catalog's Ajv validator over the Template v1beta3
//! schema (with the `Entity` envelope it refers to). An entity whose `apiVersion` or
//! `kind` is simply another one is "not a template" (a 400); any other schema failure
//! throws a `TypeError` worded from Ajv's first error, which Backstage answers with a 500.
//!
//! The schema below states the constraints of those schemas that the check enforces
//! (types, required properties, minimum lengths, the closed top level); the keywords a
//! validator only annotates with (titles, descriptions, examples) are left out.

use std::sync::LazyLock;

use serde_json::{Value as Json, json};

/// Why a dry run's `template` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityProblem {
    /// `apiVersion` or `kind` names another entity: `Input template is not a template`.
    NotATemplate,
    /// Ajv's first error, as the catalog's `throwAjvError` words it.
    Invalid(String),
}

/// Checks a dry run's `template` as Backstage does before running it.
pub fn check_template_entity(entity: &Json) -> Result<(), EntityProblem> {
    let mut errors = Vec::new();
    validate(&TEMPLATE_SCHEMA, entity, "", &mut errors);
    if errors.is_empty() {
        return Ok(());
    }
    let soft: Vec<&AjvError> = errors
        .iter()
        .filter(|e| e.path == "/kind" || e.path == "/apiVersion")
        .collect();
    if !soft.is_empty() && soft.iter().all(|e| e.keyword == "enum") {
        return Err(EntityProblem::NotATemplate);
    }
    let first = &errors[0];
    let path = if first.path.is_empty() {
        "<root>"
    } else {
        &first.path
    };
    Err(EntityProblem::Invalid(format!(
        "{path} {} - {}",
        first.message, first.params
    )))
}

/// One Ajv error: where, which keyword, its message and its `params` as
/// `key: value` (JavaScript `String` of the value).
#[derive(Debug)]
struct AjvError {
    path: String,
    keyword: &'static str,
    message: String,
    params: String,
}

/// A schema node: `{ type?, required?, minLength?, enum?, properties?, closed?,
/// values?, items?, oneOf?, allOf? }` where `closed` is `additionalProperties: false` and
/// `values` the schema of every other property (`additionalProperties` or the
/// `^.+$` pattern).
fn validate(schema: &Json, value: &Json, path: &str, errors: &mut Vec<AjvError>) {
    for part in schema
        .get("allOf")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        validate(part, value, path, errors);
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Json::String(t) => vec![t.as_str()],
            Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.iter().any(|t| is_type(value, t)) {
            let joined = names.join(",");
            errors.push(AjvError {
                path: path.to_owned(),
                keyword: "type",
                message: format!("must be {joined}"),
                params: format!("type: {joined}"),
            });
            return;
        }
    }
    if let (Some(min), Some(text)) = (
        schema.get("minLength").and_then(Json::as_u64),
        value.as_str(),
    ) && (text.encode_utf16().count() as u64) < min
    {
        errors.push(AjvError {
            path: path.to_owned(),
            keyword: "minLength",
            message: format!("must NOT have fewer than {min} characters"),
            params: format!("limit: {min}"),
        });
    }
    if let Json::Object(map) = value {
        for name in schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
        {
            if !map.contains_key(name) {
                errors.push(AjvError {
                    path: path.to_owned(),
                    keyword: "required",
                    message: format!("must have required property '{name}'"),
                    params: format!("missingProperty: {name}"),
                });
            }
        }
        let properties = schema.get("properties").and_then(Json::as_object);
        let known = |key: &str| properties.is_some_and(|p| p.contains_key(key));
        if schema.get("closed") == Some(&Json::Bool(true)) {
            for key in map.keys().filter(|k| !known(k)) {
                errors.push(AjvError {
                    path: path.to_owned(),
                    keyword: "additionalProperties",
                    message: "must NOT have additional properties".to_owned(),
                    params: format!("additionalProperty: {key}"),
                });
            }
        }
        for (key, property) in properties.into_iter().flatten() {
            if let Some(item) = map.get(key) {
                validate(property, item, &child(path, key), errors);
            }
        }
        if let Some(values) = schema.get("values") {
            for (key, item) in map.iter().filter(|(k, _)| !known(k)) {
                validate(values, item, &child(path, key), errors);
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (index, item) in list.iter().enumerate() {
            validate(items, item, &child(path, &index.to_string()), errors);
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Json::as_array)
        && !allowed.contains(value)
    {
        let shown: Vec<String> = allowed
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        errors.push(AjvError {
            path: path.to_owned(),
            keyword: "enum",
            message: "must be equal to one of the allowed values".to_owned(),
            params: format!("allowedValues: {}", shown.join(",")),
        });
    }
    if let Some(branches) = schema.get("oneOf").and_then(Json::as_array) {
        let mut branch_errors = Vec::new();
        let mut passing = Vec::new();
        for (index, branch) in branches.iter().enumerate() {
            let before = branch_errors.len();
            validate(branch, value, path, &mut branch_errors);
            if branch_errors.len() == before {
                passing.push(index);
            }
        }
        if passing.len() != 1 {
            let passing = match passing.as_slice() {
                [] => "null".to_owned(),
                many => many
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            };
            errors.extend(branch_errors);
            errors.push(AjvError {
                path: path.to_owned(),
                keyword: "oneOf",
                message: "must match exactly one schema in oneOf".to_owned(),
                params: format!("passingSchemas: {passing}"),
            });
        }
    }
}

fn is_type(value: &Json, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "null" => value.is_null(),
        _ => true,
    }
}

/// A JSON pointer one level down.
fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

static TEMPLATE_SCHEMA: LazyLock<Json> = LazyLock::new(|| {
    let text = json!({ "type": "string", "minLength": 1 });
    let strings = json!({ "type": "object", "values": { "type": "string" } });
    let permissions = json!({
        "type": "object",
        "properties": { "tags": { "type": "array", "items": { "type": "string" } } }
    });
    let page = json!({ "type": "object", "properties": { "backstage:permissions": permissions } });
    let decorators = json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": { "id": { "type": "string" }, "input": { "type": "object" } }
        }
    });
    let condition = json!({ "type": ["string", "boolean"] });
    let entity = json!({
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "closed": true,
        "properties": {
            "apiVersion": text,
            "kind": text,
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "uid": text, "etag": text, "name": text, "namespace": text, "title": text,
                    "labels": strings, "annotations": strings,
                    "tags": { "type": "array", "items": text },
                    "links": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["url"],
                            "properties": { "url": text, "title": text, "icon": text, "type": text }
                        }
                    }
                }
            },
            "spec": { "type": "object" },
            "relations": { "type": "array" },
            "status": { "type": "object" }
        }
    });
    let template = json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": { "enum": ["scaffolder.backstage.io/v1beta3"] },
            "kind": { "enum": ["Template"] },
            "spec": {
                "type": "object",
                "required": ["type", "steps"],
                "properties": {
                    "type": text,
                    "owner": text,
                    "lifecycle": text,
                    "parameters": { "oneOf": [page, { "type": "array", "items": page }] },
                    "secrets": { "type": "object", "properties": { "schema": { "type": "object" } } },
                    "presentation": {
                        "type": "object",
                        "properties": {
                            "buttonLabels": {
                                "type": "object",
                                "properties": {
                                    "backButtonText": { "type": "string" },
                                    "createButtonText": { "type": "string" },
                                    "reviewButtonText": { "type": "string" }
                                }
                            }
                        }
                    },
                    "EXPERIMENTAL_recovery": {
                        "type": "object",
                        "properties": { "EXPERIMENTAL_strategy": { "type": "string" } }
                    },
                    "formDecorators": decorators,
                    "EXPERIMENTAL_formDecorators": decorators,
                    "steps": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["action"],
                            "properties": {
                                "id": { "type": "string" },
                                "name": { "type": "string" },
                                "action": { "type": "string" },
                                "input": { "type": "object" },
                                "if": condition,
                                "backstage:permissions": permissions
                            }
                        }
                    },
                    "output": {
                        "type": "object",
                        "properties": {
                            "links": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "if": condition, "url": text, "entityRef": text,
                                        "title": text, "icon": text
                                    }
                                }
                            },
                            "text": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "if": condition, "title": text, "icon": text,
                                        "content": { "type": "string" }
                                    }
                                }
                            }
                        },
                        "values": { "type": "string" }
                    }
                }
            }
        }
    });
    json!({ "allOf": [entity, template] })
});

#[cfg(test)]
mod tests {
    use super::*;

    fn template(spec: Json) -> Json {
        json!({
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "kind": "Template",
            "metadata": { "name": "t" },
            "spec": spec
        })
    }

    #[test]
    fn a_valid_template_passes() {
        let entity = template(json!({
            "type": "service",
            "parameters": [{ "properties": {} }],
            "steps": [{ "id": "a", "action": "debug:log", "if": false, "each": "${{ x }}" }],
            "output": { "links": [{ "title": "x", "url": "https://x" }], "extra": "${{ 1 }}" }
        }));
        assert_eq!(check_template_entity(&entity), Ok(()));
    }

    #[test]
    fn another_kind_is_not_a_template_even_with_other_errors() {
        let mut entity = template(json!({ "steps": [] }));
        entity["kind"] = json!("Component");
        assert_eq!(
            check_template_entity(&entity),
            Err(EntityProblem::NotATemplate)
        );
    }

    #[test]
    fn schema_failures_are_worded_as_ajv() {
        let cases = [
            (
                json!({ "steps": [] }),
                "/spec must have required property 'type' - missingProperty: type",
            ),
            (
                json!({ "type": "s", "steps": [{ "id": "x" }] }),
                "/spec/steps/0 must have required property 'action' - missingProperty: action",
            ),
            (
                json!({ "type": "s", "steps": [], "output": { "links": [{}, "x"] } }),
                "/spec/output/links/1 must be object - type: object",
            ),
            (
                json!({ "type": "s", "steps": [{ "action": "a", "if": 5 }] }),
                "/spec/steps/0/if must be string,boolean - type: string,boolean",
            ),
            (
                json!({ "type": "", "steps": [] }),
                "/spec/type must NOT have fewer than 1 characters - limit: 1",
            ),
            (
                json!({ "type": "s", "steps": [], "output": { "n": 5 } }),
                "/spec/output/n must be string - type: string",
            ),
            (
                json!({ "type": "s", "steps": [], "parameters": "x" }),
                "/spec/parameters must be object - type: object",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(
                check_template_entity(&template(spec.clone())),
                Err(EntityProblem::Invalid(message.to_owned())),
                "{spec}"
            );
        }
        let mut extra = template(json!({ "type": "s", "steps": [] }));
        extra["foo"] = json!(1);
        assert_eq!(
            check_template_entity(&extra),
            Err(EntityProblem::Invalid(
                "<root> must NOT have additional properties - additionalProperty: foo".into()
            ))
        );
    }
}
