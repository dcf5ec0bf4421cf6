//! Conditional parameter pages (`when`, Backstage 4.3.0): which pages are shown, which
//! values a task runs with, which pages are validated. The expectations in
//! `when/cases.json` were computed by the real Backstage (`when/README.md` says how).

use scaffolder_template::Template;
use scaffolder_template::parameters::{PageCheck, check_values};
use serde_json::{Value as Json, json};

fn pages(value: &Json) -> Vec<Json> {
    match value {
        Json::Array(pages) => pages.clone(),
        page => vec![page.clone()],
    }
}

#[test]
fn every_case_resolves_as_backstage_4_3_0_does() {
    let cases: Vec<Json> =
        serde_json::from_str(include_str!("when/cases.json")).expect("cases.json is JSON");
    assert!(cases.len() >= 40, "the cases are all there");
    let mut failures = Vec::new();
    for case in &cases {
        let checked = check_values(&pages(&case["pages"]), &case["values"]);
        let actual = json!({ "visible": checked.visible(), "values": checked.values });
        if actual != case["expected"] {
            failures.push(format!(
                "{}:\n  expected {}\n  actual   {}",
                case["name"], case["expected"], actual
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_hidden_page_is_not_validated_and_a_shown_one_is() {
    let pages = pages(&json!([
        { "required": ["cloud"], "properties": { "cloud": { "enum": ["AWS", "GCP"] } } },
        { "when": "${{ parameters.cloud === 'AWS' }}", "required": ["region"],
          "properties": { "region": { "type": "string" } } },
        { "when": "parameters.cloud === 'GCP'", "required": ["project"],
          "properties": { "project": { "type": "string" } } },
    ]));
    // GCP: the AWS page's required region is not required, and its stray value goes.
    let values = check_values(
        &pages,
        &json!({ "cloud": "GCP", "project": "p", "region": 5 }),
    )
    .into_result()
    .expect("the AWS page is hidden, so its rules do not apply");
    assert_eq!(values, json!({ "cloud": "GCP", "project": "p" }));
    // AWS: the AWS page is shown and validated.
    let checked = check_values(&pages, &json!({ "cloud": "AWS" }));
    assert_eq!(checked.visible(), [true, true, false]);
    let errors = checked.into_result().unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].name, "required");
    assert_eq!(errors[0].argument, "region");
    // The page as Backstage validates it, `when` included (an unknown keyword).
    assert_eq!(
        errors[0].schema["when"],
        "${{ parameters.cloud === 'AWS' }}"
    );
}

#[test]
fn shown_pages_validate_the_values_as_submitted() {
    // Backstage validates the submitted values, not the filtered ones: a shown page that
    // forbids additional properties still sees a hidden page's field.
    let pages = pages(&json!([
        { "when": false, "properties": { "secret": {} } },
        { "properties": { "name": {} }, "additionalProperties": false },
    ]));
    let checked = check_values(&pages, &json!({ "name": "n", "secret": 1 }));
    assert!(matches!(&checked.pages[0], PageCheck::Hidden));
    let errors = checked.into_result().unwrap_err();
    assert_eq!(errors[0].name, "additionalProperties");
}

#[test]
fn conditions_that_cannot_be_evaluated_warn_and_show_the_page() {
    let pages = pages(&json!([{ "when": "${{ parameters.a === }}", "required": ["a"] }]));
    let checked = check_values(&pages, &json!({}));
    assert_eq!(checked.visible(), [true]);
    assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
    assert!(
        checked.warnings[0].starts_with(
            "parameter page 1: its `when` could not be evaluated, so the page is shown"
        ),
        "{:?}",
        checked.warnings
    );
    assert!(checked.into_result().is_err(), "a shown page is validated");
}

#[test]
fn schemas_that_cannot_be_followed_warn() {
    let pages = pages(&json!([{ "when": false, "$ref": "#/nowhere", "properties": { "a": {} } }]));
    let checked = check_values(&pages, &json!({ "a": 1 }));
    assert_eq!(checked.values, json!({ "a": 1 }));
    assert_eq!(
        checked.warnings,
        [
            "parameter page 1: its schema has the reference '#/nowhere', which points at no schema object, so it removes no values (as Backstage does)"
        ]
    );
}

#[test]
fn huge_schemas_are_bounded_not_followed_forever() {
    // Each definition refers to the next one twice: 2^40 expansions unbounded.
    let mut definitions = serde_json::Map::new();
    for i in 0..40 {
        let next = format!("#/definitions/d{}", i + 1);
        definitions.insert(
            format!("d{i}"),
            json!({ "allOf": [{ "$ref": next }, { "$ref": next }] }),
        );
    }
    definitions.insert("d40".into(), json!({ "properties": { "a": {} } }));
    let page = json!({ "when": false, "definitions": definitions, "$ref": "#/definitions/d0" });
    let checked = check_values(&[page], &json!({ "a": 1 }));
    assert_eq!(
        checked.values,
        json!({ "a": 1 }),
        "a page that cannot be followed removes nothing"
    );
    assert!(
        checked.warnings[0].contains("steps to follow"),
        "{:?}",
        checked.warnings
    );

    // A chain of references deeper than the bound.
    let mut definitions = serde_json::Map::new();
    for i in 0..1000 {
        definitions.insert(
            format!("d{i}"),
            json!({ "$ref": format!("#/definitions/d{}", i + 1) }),
        );
    }
    definitions.insert("d1000".into(), json!({}));
    let page = json!({ "when": false, "definitions": definitions, "$ref": "#/definitions/d0" });
    let checked = check_values(&[page], &json!({ "a": 1 }));
    assert!(
        checked.warnings[0].contains("deeper than"),
        "{:?}",
        checked.warnings
    );
}

fn template(parameters: &str) -> Result<Template, scaffolder_template::TemplateError> {
    let yaml = format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {{ name: t }}\nspec:\n  type: service\n  parameters:\n{parameters}\n  steps: []\n"
    );
    Template::from_yaml(&yaml, Some("template.yaml"))
}

#[test]
fn a_when_that_is_neither_string_nor_boolean_is_a_template_error() {
    for bad in ["5", "[a]", "{ a: 1 }", "null", ""] {
        let err = template(&format!(
            "    - title: A\n    - title: B\n      when: {bad}"
        ))
        .expect_err(bad);
        assert_eq!(
            err.path.as_deref(),
            Some("spec.parameters[1].when"),
            "{bad}: {err}"
        );
        // An empty `when:` (null) is placed where the next node starts.
        let line = if bad.is_empty() { 10 } else { 9 };
        assert!(
            err.to_string()
                .starts_with(&format!("template.yaml:{line}:")),
            "{bad}: points at the line: {err}"
        );
        assert!(err.message.contains("must be a condition string"), "{err}");
    }
    for good in [
        "true",
        "false",
        "${{ parameters.a }}",
        "parameters.a == 'b'",
        "''",
    ] {
        template(&format!("    - title: A\n      when: \"{good}\"")).expect(good);
    }
    template("    - title: A\n      when: false").expect("a boolean");
    // A single page is not typed by Backstage's schema; only strings and booleans are
    // conditions there.
    let single = template("    title: A\n    when: 5\n    required: [a]").expect("a single page");
    assert!(
        check_values(&single.spec.parameters, &json!({}))
            .into_result()
            .is_err()
    );
}
