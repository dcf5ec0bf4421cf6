use serde_json::json;

use super::*;

/// One page, the values, and what the frontend would submit.
fn check(page: Json, values: Json, expect: Json) {
    let got = apply_defaults(&[page], &values);
    assert_eq!(got, expect);
}

#[test]
fn missing_properties_get_their_default_and_given_ones_are_kept() {
    check(
        json!({ "properties": {
            "name": { "type": "string" },
            "docker": { "type": "boolean", "default": true },
            "port": { "type": "integer", "default": 8080 },
            "note": { "type": "string", "default": "hi" },
        }}),
        json!({ "name": "billing", "port": 9000, "note": null }),
        json!({ "name": "billing", "port": 9000, "note": null, "docker": true }),
    );
}

#[test]
fn pages_are_applied_in_turn() {
    let pages = [
        json!({ "properties": { "a": { "type": "string", "default": "x" } } }),
        json!({ "properties": { "b": { "type": "boolean", "default": false } } }),
    ];
    assert_eq!(
        apply_defaults(&pages, &json!({})),
        json!({ "a": "x", "b": false })
    );
    assert_eq!(
        apply_defaults(&pages, &Json::Null),
        json!({ "a": "x", "b": false })
    );
}

#[test]
fn nested_objects_get_defaults_only_when_they_hold_some() {
    check(
        json!({ "properties": {
            "repo": { "type": "object", "properties": {
                "branch": { "type": "string", "default": "main" },
                "host": { "type": "string" },
            }},
            "empty": { "type": "object", "properties": { "x": { "type": "string" } } },
            "needed": { "type": "object", "properties": { "x": { "type": "string" } } },
        }, "required": ["needed"] }),
        json!({ "repo": { "host": "github.com" } }),
        json!({ "repo": { "branch": "main", "host": "github.com" }, "needed": {} }),
    );
}

#[test]
fn a_propertys_own_default_wins_over_its_parents_object_default() {
    check(
        json!({ "properties": { "db": {
            "type": "object",
            "default": { "engine": "mysql", "size": "small" },
            "properties": {
                "engine": { "type": "string", "default": "postgres" },
                "size": { "type": "string" },
                "unnamed": { "type": "string" },
            },
        }}}),
        json!({}),
        json!({ "db": { "engine": "postgres", "size": "small" } }),
    );
}

#[test]
fn arrays_become_empty_and_their_items_get_defaults() {
    check(
        json!({ "properties": {
            "tags": { "type": "array", "items": { "type": "string" } },
            "components": { "type": "array", "items": {
                "type": "object",
                "properties": {
                    "name": { "type": "string" },
                    "type": { "type": "string", "default": "service" },
                },
            }},
            "owners": { "type": "array", "default": ["a"], "items": { "type": "string" } },
        }}),
        json!({ "components": [{ "name": "cart" }, { "name": "web", "type": "website" }] }),
        json!({
            "components": [
                { "type": "service", "name": "cart" },
                { "type": "website", "name": "web" },
            ],
            "tags": [],
            "owners": ["a"],
        }),
    );
}

#[test]
fn min_items_are_filled_with_item_defaults_except_for_multi_selects() {
    check(
        json!({ "properties": {
            "envs": { "type": "array", "minItems": 2, "items": { "type": "string", "default": "dev" } },
            "names": { "type": "array", "minItems": 1, "items": { "type": "string" } },
            "picked": {
                "type": "array", "minItems": 1, "uniqueItems": true,
                "items": { "type": "string", "enum": ["a", "b"], "default": "a" },
            },
        }}),
        json!({}),
        json!({ "envs": ["dev", "dev"], "names": [], "picked": [] }),
    );
}

#[test]
fn a_const_is_a_default() {
    check(
        json!({ "properties": { "kind": { "const": "Component" } } }),
        json!({}),
        json!({ "kind": "Component" }),
    );
}

#[test]
fn if_then_else_on_the_page_is_decided_with_the_defaults() {
    let page = json!({
        "properties": { "docker": { "type": "boolean", "default": true } },
        "if": { "properties": { "docker": { "const": true } }, "required": ["docker"] },
        "then": { "properties": { "registry": { "type": "string", "default": "ghcr.io" } } },
        "else": { "properties": { "artifact": { "type": "string", "default": "tarball" } } },
    });
    check(
        page.clone(),
        json!({}),
        // The first pass decides on `{}` (no `docker`: the `else`), the second on the
        // default; the portal's form re-renders the same way and keeps both.
        json!({ "docker": true, "artifact": "tarball", "registry": "ghcr.io" }),
    );
    check(
        page,
        json!({ "docker": false }),
        json!({ "docker": false, "artifact": "tarball" }),
    );
}

#[test]
fn all_of_on_the_page_is_merged_but_not_below_it() {
    check(
        json!({
            "properties": {
                "a": { "type": "string", "default": "x" },
                "nested": { "type": "object", "allOf": [
                    { "properties": { "n": { "type": "string", "default": "skipped" } } },
                ]},
            },
            "allOf": [
                { "properties": { "b": { "type": "string", "default": "y" } } },
                {
                    "if": { "properties": { "a": { "const": "x" } } },
                    "then": { "properties": { "c": { "type": "integer", "default": 1 } } },
                },
            ],
        }),
        json!({}),
        json!({ "a": "x", "b": "y", "c": 1 }),
    );
}

#[test]
fn dependencies_bring_the_defaults_of_the_branch_that_fits() {
    let page = json!({
        "properties": {
            "provider": { "type": "string", "enum": ["github", "gitlab"], "default": "github" },
        },
        "dependencies": {
            "provider": {
                "oneOf": [
                    {
                        "properties": {
                            "provider": { "const": "github" },
                            "visibility": { "type": "string", "default": "private" },
                        },
                    },
                    {
                        "properties": {
                            "provider": { "const": "gitlab" },
                            "group": { "type": "string", "default": "platform" },
                        },
                    },
                ],
            },
        },
    });
    check(
        page.clone(),
        json!({}),
        json!({ "provider": "github", "visibility": "private" }),
    );
    check(
        page,
        json!({ "provider": "gitlab" }),
        json!({ "provider": "gitlab", "group": "platform" }),
    );
}

#[test]
fn refs_to_the_pages_definitions_are_followed() {
    check(
        json!({
            "definitions": { "port": { "type": "integer", "default": 8080 } },
            "properties": { "port": { "$ref": "#/definitions/port" } },
        }),
        json!({}),
        json!({ "port": 8080 }),
    );
}

#[test]
fn one_of_takes_the_option_the_value_fits() {
    check(
        json!({ "properties": { "db": {
            "type": "object",
            "oneOf": [
                { "properties": { "kind": { "const": "pg" }, "port": { "type": "integer", "default": 5432 } }, "required": ["kind"] },
                { "properties": { "kind": { "const": "mysql" }, "port": { "type": "integer", "default": 3306 } }, "required": ["kind"] },
            ],
        }}}),
        json!({ "db": { "kind": "mysql" } }),
        json!({ "db": { "kind": "mysql", "port": 3306 } }),
    );
}

#[test]
fn ui_keys_and_pages_without_properties_change_nothing() {
    check(
        json!({ "title": "Nothing", "ui:order": ["a"] }),
        json!({ "x": 1 }),
        json!({ "x": 1 }),
    );
    assert_eq!(apply_defaults(&[], &json!("text")), json!("text"));
}
