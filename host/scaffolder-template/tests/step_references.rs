//! `steps.<id>` references a template makes to steps that cannot have run yet. Backstage
//! renders them empty without a word; the template keeps rendering them empty, and a load
//! reports each as a warning at its line (issue 20, item 9).

use scaffolder_template::Template;

fn warnings(steps: &str, output: &str) -> Vec<String> {
    let source = format!(
        "apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: refs
spec:
  type: service
  steps:
{steps}
{output}"
    );
    let template = Template::from_yaml(&source, Some("template.yaml")).unwrap();
    template.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn an_unknown_step_id_is_reported_at_its_line() {
    let found = warnings(
        "    - id: fetch
      action: fetch:plain
      input:
        url: ./skeleton
    - id: log
      action: debug:log
      input:
        message: ${{ steps.nosuch.output.x }}",
        "",
    );
    assert_eq!(
        found,
        [
            "template.yaml:15:18: spec.steps[1].input.message: `steps.nosuch` names no step, so it renders empty; \
             the steps before this one are: fetch"
        ]
    );
}

#[test]
fn references_to_earlier_steps_in_every_form_are_fine() {
    let found = warnings(
        r#"    - id: fetch-base
      action: fetch:plain
    - id: publish
      action: debug:log
      if: ${{ steps['fetch-base'].output.ok }}
      each: ${{ steps["fetch-base"].output.items }}
      input:
        message: "${{ steps.publish2 }}{% if steps['fetch-base'].output %}yes{% endif %}"
        nested:
          - ${{ steps [ 'fetch-base' ] . output }}
          - "${{ 'steps.nosuch is text' }} and ${{ parameters.steps.nosuch }}""#,
        "  output:
    links:
      - url: ${{ steps.publish.output.remoteUrl }}",
    );
    // `steps.publish2` alone is the one mistake here.
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("`steps.publish2` names no step"),
        "{found:#?}"
    );
}

#[test]
fn a_later_step_and_the_step_itself_have_no_output_yet() {
    let found = warnings(
        "    - id: first
      action: debug:log
      input:
        message: ${{ steps.second.output.x }} ${{ steps.first.output.y }}
    - id: second
      action: debug:log",
        "",
    );
    assert_eq!(
        found,
        [
            "template.yaml:11:18: spec.steps[0].input.message: `steps.second` runs after this step, \
             so its output is empty here",
            "template.yaml:11:18: spec.steps[0].input.message: `steps.first` is this step, \
             whose output is empty until it has run",
        ],
    );
}

/// `steps.fetch-base.output` is `steps.fetch - base.output` to Nunjucks: a reference to a
/// step `fetch`, minus a variable.
#[test]
fn a_hyphenated_id_read_with_a_dot_is_pointed_at_the_brackets() {
    let found = warnings(
        "    - id: fetch-base
      action: fetch:plain
    - id: log
      action: debug:log
      input:
        message: ${{ steps.fetch-base.output.x }}",
        "",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("write `steps['fetch-base']`: a step id with `-` needs brackets"),
        "{found:#?}"
    );
}

#[test]
fn output_may_read_every_step_but_only_their_output() {
    let found = warnings(
        "    - id: fetch
      action: fetch:plain",
        "  output:
    text:
      - title: x
        content: ${{ steps.fetch.outputs.x }} ${{ steps.fetch.output.y }}",
    );
    assert_eq!(
        found,
        [
            "template.yaml:13:18: spec.output.text[0].content: `steps.fetch.outputs` is always \
          empty: a step has only `output`"
        ]
    );
}

/// A template that binds its own `steps` variable reads that one, not the steps.
#[test]
fn a_template_variable_named_steps_is_not_a_step_reference() {
    let found = warnings(
        "    - id: log
      action: debug:log
      input:
        message: \"{% set steps = { a: 1 } %}${{ steps.a }}\"",
        "",
    );
    assert!(found.is_empty(), "{found:#?}");
}
