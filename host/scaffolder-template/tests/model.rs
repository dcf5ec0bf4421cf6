//! Parsing and checking of v1beta3 templates.

use scaffolder_template::{RecoveryStrategy, Template};
use serde_json::json;

const MINIMAL: &str = r#"
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: minimal
  title: Minimal
spec:
  type: service
  parameters:
    title: Name
    required: [name]
    properties:
      name: { type: string }
  steps:
    - action: debug:log
      input:
        message: hello ${{ parameters.name }}
    - id: second
      name: Second step
      action: fs:delete
      if: ${{ parameters.name }}
      each: ${{ parameters.list }}
      backstage:permissions:
        tags: [secret]
  output:
    links:
      - title: Repo
        url: https://example.com
    note: plain
"#;

fn error_of(source: &str) -> String {
    Template::from_yaml(source, Some("template.yaml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn minimal_template_parses_with_step_defaults() {
    let t = Template::from_yaml(MINIMAL, None).unwrap();
    assert_eq!(t.entity_ref(), "template:default/minimal");
    assert_eq!(t.metadata.title.as_deref(), Some("Minimal"));
    assert_eq!(
        t.spec.parameters.len(),
        1,
        "a single parameters object is one page"
    );
    let first = &t.spec.steps[0];
    assert_eq!(
        (first.id.as_str(), first.name.as_str()),
        ("step-1", "debug:log")
    );
    assert_eq!(first.raw["id"], "step-1");
    let second = &t.spec.steps[1];
    assert_eq!(
        (second.id.as_str(), second.name.as_str()),
        ("second", "Second step")
    );
    assert_eq!(second.condition, Some(json!("${{ parameters.name }}")));
    assert_eq!(second.each, Some(json!("${{ parameters.list }}")));
    assert_eq!(
        second.raw["backstage:permissions"],
        json!({ "tags": ["secret"] }),
        "other keys are kept"
    );
    assert_eq!(t.spec.output["note"], "plain");
    assert_eq!(t.spec.recovery, RecoveryStrategy::None);
}

#[test]
fn parameters_may_be_pages_or_absent() {
    let pages = MINIMAL.replace(
        "  parameters:\n    title: Name\n    required: [name]\n    properties:\n      name: { type: string }\n",
        "  parameters:\n    - title: One\n    - title: Two\n",
    );
    assert_eq!(
        Template::from_yaml(&pages, None)
            .unwrap()
            .spec
            .parameters
            .len(),
        2
    );
    let none = MINIMAL.replace(
        "  parameters:\n    title: Name\n    required: [name]\n    properties:\n      name: { type: string }\n",
        "",
    );
    assert!(
        Template::from_yaml(&none, None)
            .unwrap()
            .spec
            .parameters
            .is_empty()
    );
}

#[test]
fn unsupported_api_version_gives_backstages_message() {
    let source = MINIMAL.replace("v1beta3", "v1beta2");
    let err = error_of(&source);
    assert!(
        err.ends_with("apiVersion: Unsupported apiVersion field in schema entity, scaffolder.backstage.io/v1beta2"),
        "{err}"
    );
}

#[test]
fn missing_action_points_at_the_step() {
    let source = MINIMAL.replace("      action: fs:delete\n", "");
    let err = error_of(&source);
    assert_eq!(err, "template.yaml:18:9: spec.steps[1].action: required");
}

#[test]
fn wrong_types_name_the_path() {
    let cases = [
        (
            "      if: ${{ parameters.name }}\n",
            "      if: 3\n",
            "spec.steps[1].if: must be a string or a boolean",
        ),
        (
            "      each: ${{ parameters.list }}\n",
            "      each: 3\n",
            "spec.steps[1].each: must be a string or an array",
        ),
        (
            "    note: plain\n",
            "    note: 3\n",
            "spec.output.note: must be a string",
        ),
        ("  type: service\n", "", "spec.type: required"),
        (
            "  name: minimal\n",
            "  name: not a name!\n",
            "metadata.name: 'not a name!' is not a valid name",
        ),
        (
            "  name: minimal\n",
            "  description: x\n",
            "metadata.name: required",
        ),
        (
            "    - id: second\n",
            "    - id: step-1\n",
            "spec.steps[1].id: duplicate step id 'step-1'",
        ),
    ];
    for (from, to, expected) in cases {
        let err = error_of(&MINIMAL.replace(from, to));
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        assert!(err.starts_with("template.yaml:"), "{err}");
    }
}

#[test]
fn invalid_yaml_has_a_position() {
    let err = error_of("apiVersion: [unclosed\nkind: Template\n");
    assert!(err.starts_with("template.yaml:"), "{err}");
    assert!(err.contains("invalid YAML"), "{err}");
}

#[test]
fn only_template_documents_are_read() {
    let source = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: c\n---\n{MINIMAL}"
    );
    let all = Template::all_from_yaml(&source, None).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].as_ref().unwrap().metadata.name, "minimal");
}

#[test]
fn base_url_comes_from_annotations() {
    let with = |annotation: &str| {
        let source = MINIMAL.replace(
            "  title: Minimal\n",
            &format!("  title: Minimal\n  annotations:\n    {annotation}\n"),
        );
        Template::from_yaml(&source, None).unwrap().base_url()
    };
    assert_eq!(
        with("backstage.io/source-location: url:https://github.com/o/r/tree/main/t/"),
        Some("https://github.com/o/r/tree/main/t/".into())
    );
    assert_eq!(
        with("backstage.io/managed-by-location: file:/srv/templates/t/template.yaml"),
        Some("file:///srv/templates/t/template.yaml".into())
    );
    assert_eq!(with("other: x"), None);
}

#[test]
fn recovery_strategy() {
    let source = MINIMAL.replace(
        "  type: service\n",
        "  type: service\n  EXPERIMENTAL_recovery:\n    EXPERIMENTAL_strategy: startOver\n",
    );
    assert_eq!(
        Template::from_yaml(&source, None).unwrap().spec.recovery,
        RecoveryStrategy::StartOver
    );
}

#[test]
fn from_json_takes_a_dry_run_template() {
    let entity = json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": { "name": "x" },
        "spec": { "type": "service", "steps": [] }
    });
    let t = Template::from_json(entity.clone()).unwrap();
    assert_eq!(t.entity, entity);
    let err = Template::from_json(json!({"kind": "Template"})).unwrap_err();
    assert_eq!(err.to_string(), "apiVersion: required");
}
