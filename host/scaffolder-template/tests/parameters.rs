//! Parameter and secret validation, with Backstage's error shapes.

use scaffolder_template::{validate_secrets, validate_values};
use serde_json::{Value as Json, json};

fn page() -> Json {
    json!({
        "title": "Basics",
        "required": ["name", "owner"],
        "properties": {
            "name": { "type": "string", "minLength": 3, "pattern": "^[a-z-]+$", "ui:autofocus": true },
            "owner": { "type": "string", "ui:field": "OwnerPicker" },
            "replicas": { "type": "integer", "minimum": 1, "maximum": 5 },
            "language": { "type": "string", "enum": ["rust", "go"] },
            "email": { "type": "string", "format": "email" },
            "tags": { "type": "array", "items": { "type": "string" }, "maxItems": 2, "uniqueItems": true },
            "useDb": { "type": "boolean" },
            "dbName": { "type": "string" }
        },
        "dependencies": { "useDb": ["dbName"] }
    })
}

fn errors(values: Json) -> Vec<Json> {
    validate_values(&[page()], &values)
        .unwrap_err()
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

fn only(values: Json) -> Json {
    let mut all = errors(values);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[test]
fn valid_values_pass() {
    assert!(validate_values(&[page()], &json!({ "name": "my-svc", "owner": "team" })).is_ok());
}

#[test]
fn required_property() {
    let e = only(json!({ "name": "my-svc" }));
    assert_eq!(e["name"], "required");
    assert_eq!(e["property"], "instance");
    assert_eq!(e["path"], json!([]));
    assert_eq!(e["message"], "requires property \"owner\"");
    assert_eq!(e["argument"], "owner");
    assert_eq!(e["stack"], "instance requires property \"owner\"");
    assert_eq!(e["instance"], json!({ "name": "my-svc" }));
    assert_eq!(
        e["schema"]["title"], "Basics",
        "the failing schema is returned"
    );
}

#[test]
fn type_mismatch() {
    let e = only(json!({ "name": "my-svc", "owner": 7 }));
    assert_eq!(e["name"], "type");
    assert_eq!(e["property"], "instance.owner");
    assert_eq!(e["path"], json!(["owner"]));
    assert_eq!(e["message"], "is not of a type(s) string");
    assert_eq!(e["argument"], json!(["string"]));
    assert_eq!(e["instance"], 7);
}

#[test]
fn string_keywords() {
    let all = errors(json!({ "name": "AB", "owner": "t" }));
    let messages: Vec<&str> = all.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(
        messages.contains(&"does not meet minimum length of 3"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"does not match pattern \"^[a-z-]+$\""),
        "{messages:?}"
    );
}

#[test]
fn number_range() {
    let e = only(json!({ "name": "abc", "owner": "t", "replicas": 9 }));
    assert_eq!(e["message"], "must be less than or equal to 5");
    assert_eq!(e["name"], "maximum");
    let e = only(json!({ "name": "abc", "owner": "t", "replicas": 0 }));
    assert_eq!(e["message"], "must be greater than or equal to 1");
}

#[test]
fn enum_values() {
    let e = only(json!({ "name": "abc", "owner": "t", "language": "java" }));
    assert_eq!(e["message"], "is not one of enum values: rust,go");
    assert_eq!(e["argument"], json!(["rust", "go"]));
}

#[test]
fn format_is_checked() {
    let e = only(json!({ "name": "abc", "owner": "t", "email": "not-an-email" }));
    assert_eq!(e["message"], "does not conform to the \"email\" format");
}

#[test]
fn array_keywords() {
    let e = only(json!({ "name": "abc", "owner": "t", "tags": ["a", "b", "c"] }));
    assert_eq!(e["message"], "does not meet maximum length of 2");
    let e = only(json!({ "name": "abc", "owner": "t", "tags": ["a", "a"] }));
    assert_eq!(e["message"], "contains duplicate item");
    let e = only(json!({ "name": "abc", "owner": "t", "tags": ["a", 1] }));
    assert_eq!(e["property"], "instance.tags[1]");
    assert_eq!(e["path"], json!(["tags", 1]));
}

#[test]
fn dependencies() {
    let e = only(json!({ "name": "abc", "owner": "t", "useDb": true }));
    assert_eq!(e["name"], "dependencies");
    assert_eq!(
        e["message"],
        "property dbName not found, required by instance.useDb"
    );
}

#[test]
fn if_then() {
    let page = json!({
        "properties": { "kind": { "type": "string" }, "port": { "type": "integer" } },
        "if": { "properties": { "kind": { "const": "server" } } },
        "then": { "required": ["port"] }
    });
    assert!(validate_values(std::slice::from_ref(&page), &json!({ "kind": "library" })).is_ok());
    let errs = validate_values(&[page], &json!({ "kind": "server" })).unwrap_err();
    assert_eq!(errs[0].message, "requires property \"port\"");
}

#[test]
fn additional_properties_when_the_author_forbids_them() {
    let page = json!({ "properties": { "a": {} }, "additionalProperties": false });
    let errs = validate_values(&[page], &json!({ "a": 1, "b": 2 })).unwrap_err();
    assert_eq!(
        errs[0].message,
        "is not allowed to have the additional property \"b\""
    );
    assert_eq!(errs[0].argument, json!("b"));
}

#[test]
fn first_failing_page_wins() {
    let first = json!({ "required": ["a"] });
    let second = json!({ "required": ["b"] });
    let errs = validate_values(&[first, second], &json!({ "a": 1 })).unwrap_err();
    assert_eq!(errs[0].argument, json!("b"));
    let errs = validate_values(
        &[json!({ "required": ["a"] }), json!({ "required": ["b"] })],
        &json!({}),
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1, "only the first failing page is reported");
    assert_eq!(errs[0].argument, json!("a"));
}

#[test]
fn secrets_are_never_echoed() {
    let schema = json!({
        "required": ["token"],
        "properties": { "token": { "type": "string", "minLength": 10 } }
    });
    let errs = validate_secrets(&schema, &json!({})).unwrap_err();
    assert_eq!(errs[0].message, "secrets.token is required");
    assert_eq!(errs[0].property, "secrets");
    assert_eq!(errs[0].instance, json!({}));

    let errs = validate_secrets(&schema, &json!({ "token": "hunter2" })).unwrap_err();
    assert_eq!(errs[0].property, "secrets.token");
    assert_eq!(
        errs[0].message,
        "secrets.token does not meet minimum length of 10"
    );
    assert_eq!(errs[0].instance, json!({}));
    let serialized = serde_json::to_string(&errs).unwrap();
    assert!(!serialized.contains("hunter2"), "{serialized}");
}

#[test]
fn invalid_page_schema_is_reported_not_panicked() {
    let errs = validate_values(&[json!({ "type": 12 })], &json!({})).unwrap_err();
    assert!(
        errs[0]
            .message
            .contains("parameter page 1 is not a valid JSON Schema"),
        "{}",
        errs[0].message
    );
}
