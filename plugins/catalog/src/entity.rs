//! The object Backstage's `catalog:write` hands to `yaml.stringify`:
//! `{ ...entity, metadata: { ...entity.metadata, annotations: { ...annotations, source-template } } }`,
//! with JavaScript's spread semantics, which decide the key order of the file.

use serde_json::{Map, Value};

use crate::js;

/// The annotation naming the template an entity was created from.
pub const SOURCE_TEMPLATE_ANNOTATION: &str = "backstage.io/source-template";

/// `entity` with `metadata` always present (added last when missing) and, when the task
/// has a template ref, the source-template annotation added to (or replaced in) its
/// annotations. Fails as Backstage's handler does (with JavaScript's `TypeError` message)
/// when there is a template ref and `metadata` is missing or null.
pub fn with_source_template(
    entity: &Map<String, Value>,
    template_ref: Option<&str>,
) -> Result<Map<String, Value>, String> {
    let given = entity.get("metadata");
    let mut metadata = js::spread(given);
    // `templateInfo?.entityRef ? ... : undefined`: an empty ref adds nothing.
    if let Some(template_ref) = template_ref.filter(|r| !r.is_empty()) {
        let annotations = match given {
            None => return Err(type_error("undefined")),
            Some(Value::Null) => return Err(type_error("null")),
            Some(Value::Object(metadata)) => metadata.get("annotations"),
            // Strings, numbers, booleans and arrays have no `annotations` property.
            Some(_) => None,
        };
        let mut annotations = js::spread(annotations);
        annotations.insert(
            SOURCE_TEMPLATE_ANNOTATION.to_owned(),
            Value::String(template_ref.to_owned()),
        );
        metadata.insert("annotations".to_owned(), Value::Object(annotations));
    }
    // Replacing a key keeps its place, as assigning an existing property does.
    let mut written = entity.clone();
    written.insert("metadata".to_owned(), Value::Object(metadata));
    Ok(written)
}

fn type_error(metadata: &str) -> String {
    format!("Cannot read properties of {metadata} (reading 'annotations')")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(entity: Value, template_ref: Option<&str>, expected: Value) {
        let entity = entity.as_object().unwrap();
        let written = with_source_template(entity, template_ref).unwrap();
        let (written, expected) = (Value::Object(written), expected);
        // `Value`'s equality ignores order; compare the serialised text too.
        assert_eq!(written.to_string(), expected.to_string());
    }

    #[test]
    fn annotation_joins_existing_annotations_in_place() {
        check(
            json!({ "kind": "Component", "metadata": { "annotations": { "a": "1" }, "name": "x" }, "spec": {} }),
            Some("template:default/t"),
            json!({ "kind": "Component", "metadata": { "annotations": { "a": "1", SOURCE_TEMPLATE_ANNOTATION: "template:default/t" }, "name": "x" }, "spec": {} }),
        );
    }

    #[test]
    fn annotation_replaces_a_given_one_in_its_place() {
        check(
            json!({ "metadata": { "annotations": { SOURCE_TEMPLATE_ANNOTATION: "old", "b": "2" } } }),
            Some("template:default/new"),
            json!({ "metadata": { "annotations": { SOURCE_TEMPLATE_ANNOTATION: "template:default/new", "b": "2" } } }),
        );
    }

    #[test]
    fn annotations_are_added_after_the_other_metadata() {
        check(
            json!({ "metadata": { "name": "x" }, "spec": { "type": "service" } }),
            Some("template:default/t"),
            json!({ "metadata": { "name": "x", "annotations": { SOURCE_TEMPLATE_ANNOTATION: "template:default/t" } }, "spec": { "type": "service" } }),
        );
    }

    #[test]
    fn metadata_is_added_last_when_missing_without_a_template_ref() {
        check(
            json!({ "kind": "Component" }),
            None,
            json!({ "kind": "Component", "metadata": {} }),
        );
        check(
            json!({ "metadata": { "name": "x" } }),
            Some(""),
            json!({ "metadata": { "name": "x" } }),
        );
    }

    #[test]
    fn missing_or_null_metadata_with_a_template_ref_fails_like_javascript() {
        let missing = json!({ "kind": "Component" });
        assert_eq!(
            with_source_template(missing.as_object().unwrap(), Some("template:default/t")),
            Err("Cannot read properties of undefined (reading 'annotations')".to_owned())
        );
        let null = json!({ "metadata": null });
        assert_eq!(
            with_source_template(null.as_object().unwrap(), Some("template:default/t")),
            Err("Cannot read properties of null (reading 'annotations')".to_owned())
        );
    }

    #[test]
    fn non_object_metadata_and_annotations_spread_as_javascript_does() {
        check(
            json!({ "metadata": "ab" }),
            Some("t"),
            json!({ "metadata": { "0": "a", "1": "b", "annotations": { SOURCE_TEMPLATE_ANNOTATION: "t" } } }),
        );
        check(
            json!({ "metadata": { "annotations": ["x"] } }),
            Some("t"),
            json!({ "metadata": { "annotations": { "0": "x", SOURCE_TEMPLATE_ANNOTATION: "t" } } }),
        );
        check(
            json!({ "metadata": { "annotations": null } }),
            Some("t"),
            json!({ "metadata": { "annotations": { SOURCE_TEMPLATE_ANNOTATION: "t" } } }),
        );
    }
}
