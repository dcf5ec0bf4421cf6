use super::iterations::{Each, add_secret_redactions, js_object_entries, render_each};
use super::*;

#[test]
fn example_outputs_follow_the_schema() {
    let schema = json!({
        "type": "object",
        "properties": {
            "remoteUrl": { "type": "string" },
            "count": { "type": "integer" },
            "ok": { "type": "boolean" },
            "tags": { "type": "array", "items": { "type": "string" } },
            "given": { "type": "string", "examples": ["https://x"] },
            "any": {}
        }
    });
    assert_eq!(
        example_of_schema(&schema),
        json!({
            "remoteUrl": "<example>", "count": 0, "ok": false, "tags": ["<example>"],
            "given": "https://x", "any": "<unknown>"
        })
    );
}

#[test]
fn each_outputs_collect_in_arrays() {
    let mut output = Map::new();
    merge_output(&mut output, json!({ "a": 1 }), true);
    merge_output(&mut output, json!({ "a": 2 }), true);
    assert_eq!(Json::Object(output), json!({ "a": [1, 2] }));
}

#[test]
fn each_over_an_object_follows_javascript_key_order() {
    let map = json!({ "zeta": 1, "10": 2, "alpha": 3, "9": 4, "-1": 5, "01": 6, "2": 7 });
    let Json::Object(map) = map else {
        unreachable!()
    };
    let keys: Vec<String> = js_object_entries(map).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["2", "9", "10", "zeta", "alpha", "-1", "01"]);
}

#[test]
fn each_kinds_and_holes_of_a_yaml_list() {
    let renderer = Renderer::new(Default::default());
    let ctx = json!({ "parameters": { "list": ["a"], "n": 5, "nothing": null } });
    let mut warnings = Vec::new();
    let mut each = |value: Json| render_each(&renderer, &value, &ctx, &mut warnings);
    assert!(matches!(
        each(json!("${{ parameters.missing }}")),
        Each::Undefined
    ));
    assert!(matches!(
        each(json!("${{ parameters.nothing }}")),
        Each::Primitive
    ));
    assert!(matches!(
        each(json!("${{ parameters.n }}")),
        Each::Primitive
    ));
    let Each::Entries(entries) = each(json!([
        "${{ parameters.list[0] }}",
        "${{ parameters.missing }}",
        "x"
    ])) else {
        panic!("a list is entries")
    };
    assert_eq!(
        entries,
        [("0".to_owned(), json!("a")), ("2".to_owned(), json!("x"))]
    );
}

#[test]
fn what_differs_without_secrets_is_hidden_and_keys_stay() {
    let redactor = Redactor::default();
    // Without secrets `token` is gone: the entries after it pair by key, not position.
    add_secret_redactions(
        &redactor,
        &json!({ "message": "token abc123", "token": "t0ken-value", "same": "plain", "gone": "s3cr3t", "list": ["x1", "y2"] }),
        Some(&json!({ "message": "token ", "same": "plain" })),
    );
    assert_eq!(
        redactor.redact("token abc123 t0ken-value plain s3cr3t gone list x1 y2"),
        "*** *** plain *** gone list *** ***"
    );
}

#[test]
fn each_items_are_described_as_javascript_strings() {
    assert_eq!(
        describe_each(&("0".into(), json!({ "x": 1 }))),
        r#"{"key":"0","value":"[object Object]"}"#
    );
    assert_eq!(
        describe_each(&("k".into(), json!(["a", 1]))),
        r#"{"key":"k","value":"a,1"}"#
    );
}
