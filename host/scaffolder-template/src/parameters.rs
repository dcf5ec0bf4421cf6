//! Checking submitted values against the template's parameter pages and secrets schema,
//! with failures in the shape Backstage returns (`400 {"errors": [...]}`): the error
//! objects of the JavaScript `jsonschema` package, messages included. Pages with a `when`
//! condition (Backstage 4.3.0) are resolved first, in `parameters/pages.rs`:
//! [`check_values`] is the one check every path that accepts values goes through.

mod pages;

pub use pages::{BUDGET, CheckedValues, MAX_DEPTH, PageCheck, check_values};

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::compiled_schemas::{Checking, compiled};

/// One validation failure, as the JavaScript `jsonschema` package reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterError {
    /// Path of the offending value: property names and array indices.
    pub path: Vec<Json>,
    /// The same path as text, rooted at `instance` (`instance.name`, `instance.list[0]`).
    pub property: String,
    pub message: String,
    /// The (sub)schema that failed.
    pub schema: Json,
    /// The offending value.
    pub instance: Json,
    /// The failing keyword (`required`, `type`, `pattern`, ...).
    pub name: String,
    /// The keyword's argument (the missing property, the expected types, ...).
    pub argument: Json,
    /// `<property> <message>`.
    pub stack: String,
}

/// Validates `values` against each shown parameter page in turn; the errors of the first
/// page that fails, as Backstage reports them. [`check_values`] also gives the values a
/// task runs with, which hidden pages' values are removed from.
pub fn validate_values(pages: &[Json], values: &Json) -> Result<(), Vec<ParameterError>> {
    check_values(pages, values).into_result().map(|_| ())
}

/// Validates task secrets against `spec.secrets.schema`. Errors never carry secret values:
/// `instance` is `{}`, properties read `secrets.<name>`, and required secrets say
/// `secrets.<name> is required`.
pub fn validate_secrets(schema: &Json, secrets: &Json) -> Result<(), Vec<ParameterError>> {
    let errors = validate(schema, secrets, "the secrets schema");
    if errors.is_empty() {
        return Ok(());
    }
    Err(errors
        .into_iter()
        .map(|mut err| {
            let property = err.property.replacen("instance", "secrets", 1);
            if err.name == "required" {
                let name = err.argument.as_str().unwrap_or_default();
                err.message = format!("{property}.{name} is required");
            } else {
                err.message = format!("{property} {}", err.message);
            }
            // Backstage rewrites `property` and `message` but keeps jsonschema's `stack`.
            err.property = property;
            err.instance = json!({});
            err
        })
        .collect())
}

/// Validates an action's rendered input against its input schema, as the workflow runner
/// does before any iteration of a step runs.
pub fn validate_input(schema: &Json, input: &Json) -> Result<(), Vec<ParameterError>> {
    let errors = validate(schema, input, "the action's input schema");
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn validate(schema: &Json, instance: &Json, what: &str) -> Vec<ParameterError> {
    let validator = match compiled(schema, Checking::WithFormats) {
        Ok(v) => v,
        Err(err) => {
            return vec![error(
                Vec::new(),
                format!("cannot be checked: {what} is not a valid JSON Schema: {err}"),
                schema.clone(),
                instance.clone(),
                "schema",
                Json::Null,
            )];
        }
    };
    validator
        .iter_errors(instance)
        .flat_map(|err| convert(schema, &err))
        .collect()
}

fn error(
    path: Vec<Json>,
    message: String,
    schema: Json,
    instance: Json,
    name: &str,
    argument: Json,
) -> ParameterError {
    let property = property_of(&path);
    ParameterError {
        stack: format!("{property} {message}"),
        path,
        property,
        message,
        schema,
        instance,
        name: name.to_owned(),
        argument,
    }
}

/// `instance` followed by `.key`, `[0]` or `["odd key"]` per segment.
fn property_of(path: &[Json]) -> String {
    let mut out = String::from("instance");
    for segment in path {
        match segment {
            Json::Number(n) => out.push_str(&format!("[{n}]")),
            Json::String(key) => {
                let plain = !key.is_empty()
                    && !key.starts_with(|c: char| c.is_ascii_digit())
                    && !key.contains(['.', '[', ']'])
                    && !key.contains(char::is_whitespace);
                if plain {
                    out.push('.');
                    out.push_str(key);
                } else {
                    out.push_str(&format!("[{}]", Json::String(key.clone())));
                }
            }
            other => out.push_str(&format!("[{other}]")),
        }
    }
    out
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

fn convert(root: &Json, err: &ValidationError) -> Vec<ParameterError> {
    let path: Vec<Json> = err
        .instance_path()
        .iter()
        .map(|s| match s {
            LocationSegment::Index(i) => json!(i),
            LocationSegment::Property(p) => json!(unescape(&p)),
        })
        .collect();
    let schema_segments: Vec<String> = err
        .schema_path()
        .iter()
        .map(|s| unescape(&s.to_string()))
        .collect();
    // The schema holding the failing keyword.
    let subschema = schema_segments
        .split_last()
        .and_then(|(_, parent)| {
            parent.iter().try_fold(root, |node, seg| match node {
                Json::Object(m) => m.get(seg),
                Json::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            })
        })
        .cloned()
        .unwrap_or_else(|| json!({}));
    let keyword = |k: &str| subschema.get(k).cloned().unwrap_or(Json::Null);
    let instance = err.instance().clone().into_owned();
    let one = |message: String, name: &str, argument: Json| {
        vec![error(
            path.clone(),
            message,
            subschema.clone(),
            instance.clone(),
            name,
            argument,
        )]
    };

    // `dependencies` failures surface as `required` at `.../dependencies`; the owner is the
    // present property whose dependency list names the missing one.
    if schema_segments.last().map(String::as_str) == Some("dependencies")
        && let ValidationErrorKind::Required { property } = err.kind()
    {
        let prop = property.as_str().unwrap_or_default();
        let owner = keyword("dependencies")
            .as_object()
            .and_then(|deps| {
                deps.iter().find(|(key, dep)| {
                    instance.get(key.as_str()).is_some()
                        && dep.as_array().is_some_and(|d| d.iter().any(|v| v == prop))
                })
            })
            .map(|(key, _)| key.clone())
            .unwrap_or_default();
        let mut owner_path = path.clone();
        owner_path.push(json!(owner));
        let required_by = property_of(&owner_path);
        return one(
            format!("property {prop} not found, required by {required_by}"),
            "dependencies",
            json!(required_by),
        );
    }

    match err.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            one(
                format!("requires property {}", json!(name)),
                "required",
                json!(name),
            )
        }
        ValidationErrorKind::Type { .. } => {
            let types: Vec<Json> = match keyword("type") {
                Json::Array(list) => list,
                Json::Null => Vec::new(),
                single => vec![single],
            };
            let list = types.iter().map(js_string).collect::<Vec<_>>().join(",");
            one(
                format!("is not of a type(s) {list}"),
                "type",
                Json::Array(types),
            )
        }
        ValidationErrorKind::MinLength { limit } => one(
            format!("does not meet minimum length of {limit}"),
            "minLength",
            json!(limit),
        ),
        ValidationErrorKind::MaxLength { limit } => one(
            format!("does not meet maximum length of {limit}"),
            "maxLength",
            json!(limit),
        ),
        ValidationErrorKind::MinItems { limit } => one(
            format!("does not meet minimum length of {limit}"),
            "minItems",
            json!(limit),
        ),
        ValidationErrorKind::MaxItems { limit } => one(
            format!("does not meet maximum length of {limit}"),
            "maxItems",
            json!(limit),
        ),
        ValidationErrorKind::MinProperties { limit } => one(
            format!("does not meet minimum property length of {limit}"),
            "minProperties",
            json!(limit),
        ),
        ValidationErrorKind::MaxProperties { limit } => one(
            format!("does not meet maximum property length of {limit}"),
            "maxProperties",
            json!(limit),
        ),
        ValidationErrorKind::Pattern { pattern } => one(
            format!("does not match pattern {}", json!(pattern)),
            "pattern",
            json!(pattern),
        ),
        ValidationErrorKind::Format { format } => one(
            format!("does not conform to the {} format", json!(format)),
            "format",
            json!(format),
        ),
        ValidationErrorKind::Minimum { limit } => one(
            format!("must be greater than or equal to {}", js_string(limit)),
            "minimum",
            limit.clone(),
        ),
        ValidationErrorKind::Maximum { limit } => one(
            format!("must be less than or equal to {}", js_string(limit)),
            "maximum",
            limit.clone(),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => one(
            format!("must be strictly greater than {}", js_string(limit)),
            "exclusiveMinimum",
            limit.clone(),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => one(
            format!("must be strictly less than {}", js_string(limit)),
            "exclusiveMaximum",
            limit.clone(),
        ),
        ValidationErrorKind::MultipleOf { .. } => {
            let n = keyword("multipleOf");
            one(
                format!("is not a multiple of (divisible by) {n}"),
                "multipleOf",
                n,
            )
        }
        ValidationErrorKind::Enum { options } => {
            let list = options
                .as_array()
                .map(|o| o.iter().map(js_string).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            one(
                format!("is not one of enum values: {list}"),
                "enum",
                (**options).clone(),
            )
        }
        ValidationErrorKind::Constant { expected_value } => one(
            format!(
                "does not exactly match expected constant: {}",
                js_string(expected_value)
            ),
            "const",
            (**expected_value).clone(),
        ),
        ValidationErrorKind::UniqueItems => {
            one("contains duplicate item".into(), "uniqueItems", Json::Null)
        }
        ValidationErrorKind::Contains => one(
            "must contain an item matching given schema".into(),
            "contains",
            keyword("contains"),
        ),
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|prop| {
                error(
                    path.clone(),
                    format!(
                        "is not allowed to have the additional property {}",
                        json!(prop)
                    ),
                    subschema.clone(),
                    instance.clone(),
                    "additionalProperties",
                    json!(prop),
                )
            })
            .collect(),
        ValidationErrorKind::AnyOf { .. } => {
            let list = subschema_names(&keyword("anyOf"), true);
            one(
                format!("is not any of {}", list.join(",")),
                "anyOf",
                json!(list),
            )
        }
        ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => {
            let list = subschema_names(&keyword("oneOf"), false);
            one(
                format!("is not exactly one from {}", list.join(",")),
                "oneOf",
                json!(list),
            )
        }
        ValidationErrorKind::Not { schema } => one(
            format!("is of prohibited type {}", js_string(schema)),
            "not",
            schema.clone(),
        ),
        other => one(err.to_string(), keyword_name(other), Json::Null),
    }
}

/// How `jsonschema` names the alternatives of `anyOf`/`oneOf`: their id, their title in
/// quotes, their `$ref` in angle brackets, or `[subschema i]`.
fn subschema_names(list: &Json, bracket_ids: bool) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if let Some(id) = s.get("$id").or_else(|| s.get("id")).and_then(Json::as_str) {
                        return if bracket_ids {
                            format!("<{id}>")
                        } else {
                            id.to_owned()
                        };
                    }
                    if let Some(title) = s.get("title").and_then(Json::as_str) {
                        return json!(title).to_string();
                    }
                    if let Some(reference) = s.get("$ref").and_then(Json::as_str) {
                        return format!("<{reference}>");
                    }
                    format!("[subschema {i}]")
                })
                .collect()
        })
        .unwrap_or_default()
}

fn keyword_name(kind: &ValidationErrorKind) -> &'static str {
    match kind {
        ValidationErrorKind::AdditionalItems { .. } => "additionalItems",
        ValidationErrorKind::FalseSchema => "false",
        ValidationErrorKind::PropertyNames { .. } => "propertyNames",
        ValidationErrorKind::UnevaluatedItems { .. } => "unevaluatedItems",
        ValidationErrorKind::UnevaluatedProperties { .. } => "unevaluatedProperties",
        _ => "schema",
    }
}

/// JavaScript's `String(value)` for JSON values.
fn js_string(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::String(s) => s.clone(),
        Json::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Json::Bool(b) => b.to_string(),
        Json::Array(items) => items
            .iter()
            .map(|v| {
                if v.is_null() {
                    String::new()
                } else {
                    js_string(v)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Json::Object(_) => "[object Object]".into(),
    }
}
