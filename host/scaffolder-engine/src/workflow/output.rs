//! What a run produces besides its steps' outputs: `spec.output` rendered, and the example
//! output a dry run gives an action it does not run.

use scaffolder_template::Renderer;
use serde_json::{Map, Value as Json, json};

/// `spec.output` rendered without secrets; in `links` and `text`, items whose `if` is
/// falsy are dropped and the `if` key is removed from the rest.
pub(crate) fn render_output(
    renderer: &Renderer,
    output: &Map<String, Json>,
    context: &Json,
    warnings: &mut Vec<String>,
) -> Json {
    let mut rendered = renderer
        .render_value(&Json::Object(output.clone()), context, warnings)
        .unwrap_or_else(|| json!({}));
    for key in ["links", "text"] {
        if let Some(Json::Array(items)) = rendered.get_mut(key) {
            items.retain_mut(|item| match item.as_object_mut() {
                Some(object) => match object.remove("if") {
                    Some(condition) => scaffolder_template::is_truthy(&condition),
                    None => true,
                },
                None => true,
            });
        }
    }
    rendered
}

/// The example output of an action that a dry run does not run (spec §5.4).
pub(crate) fn example_of_schema(schema: &Json) -> Json {
    if let Some(first) = schema
        .get("examples")
        .and_then(Json::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let kind = schema.get("type").and_then(Json::as_str);
    match kind {
        Some("object") => Json::Object(
            schema
                .get("properties")
                .and_then(Json::as_object)
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), example_of_schema(v)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("array") => match schema.get("items") {
            Some(items) if items.is_object() => json!([example_of_schema(items)]),
            _ => json!([]),
        },
        Some("string") => json!("<example>"),
        Some("number") | Some("integer") => json!(0),
        Some("boolean") => json!(false),
        _ => json!("<unknown>"),
    }
}
