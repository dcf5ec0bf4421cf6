//! One case per rule of Backstage's templating (spec §3.3–§3.6), quirks included.

use serde_json::{Value as Json, json};

use super::*;

fn context() -> Json {
    json!({
        "parameters": {
            "name": "my-service",
            "count": 3,
            "ratio": 1.5,
            "whole": 2.0,
            "enabled": true,
            "disabled": false,
            "owner": "group:default/team-a",
            "tags": ["a", "b"],
            "empty": [],
            "nested": { "deep": { "value": "found" } },
            "repoUrl": "github.com?owner=acme&repo=widgets",
            "nothing": null,
            "falseString": "false",
        },
        "steps": { "fetch": { "output": { "files": ["a.txt"], "count": 2 } } },
        "user": { "ref": "user:default/jane", "entity": { "metadata": { "name": "jane" } } },
        "context": { "task": { "id": "task-123" } },
        "environment": { "parameters": { "region": "eu" } },
        "each": { "key": "0", "value": "alpha" },
    })
}

/// Renders one leaf with the workflow rules; `None` means the key is dropped.
fn check(template: &str, expected: Option<Json>) {
    let renderer = Renderer::new(RendererOptions::default());
    let mut warnings = Vec::new();
    let got = renderer.render_value(&json!(template), &context(), &mut warnings);
    assert_eq!(
        got, expected,
        "rendering {template:?} (warnings: {warnings:?})"
    );
}

fn check_warns(template: &str) {
    let renderer = Renderer::new(RendererOptions::default());
    let mut warnings = Vec::new();
    let got = renderer.render_value(&json!(template), &context(), &mut warnings);
    assert_eq!(
        got,
        Some(json!(template)),
        "a failed render keeps the string"
    );
    assert_eq!(warnings.len(), 1, "a failed render warns: {warnings:?}");
}

// §3.3 a sole expression keeps its native type.
#[test]
fn sole_expression_keeps_number() {
    check("${{ parameters.count }}", Some(json!(3)));
}

#[test]
fn sole_expression_keeps_boolean() {
    check("${{ parameters.enabled }}", Some(json!(true)));
}

#[test]
fn sole_expression_keeps_array() {
    check("${{ parameters.tags }}", Some(json!(["a", "b"])));
}

#[test]
fn sole_expression_keeps_object() {
    check(
        "${{ parameters.nested.deep }}",
        Some(json!({ "value": "found" })),
    );
}

#[test]
fn sole_expression_keeps_null() {
    check("${{ parameters.nothing }}", Some(json!(null)));
}

#[test]
fn sole_expression_keeps_string() {
    check("${{ parameters.name }}", Some(json!("my-service")));
}

#[test]
fn sole_expression_without_spaces() {
    check("${{parameters.count}}", Some(json!(3)));
}

// §3.3 anything else is a string.
#[test]
fn leading_space_makes_a_string() {
    check(" ${{ parameters.count }}", Some(json!(" 3")));
}

#[test]
fn two_expressions_make_a_string() {
    check(
        "${{ parameters.count }}${{ parameters.count }}",
        Some(json!("33")),
    );
}

#[test]
fn statement_renders_to_string() {
    check("{% if false %}x{% endif %}", Some(json!("")));
}

#[test]
fn statement_with_text() {
    check(
        "{% if parameters.enabled %}on{% else %}off{% endif %}",
        Some(json!("on")),
    );
}

// §3.3 missing values.
#[test]
fn missing_sole_expression_drops_the_key() {
    check("${{ parameters.missing }}", None);
}

#[test]
fn deep_missing_sole_expression_drops_the_key() {
    check("${{ parameters.a.b.c }}", None);
}

#[test]
fn missing_value_in_text_renders_empty() {
    check("x${{ parameters.missing }}y", Some(json!("xy")));
}

#[test]
fn undefined_in_array_becomes_null() {
    let renderer = Renderer::new(RendererOptions::default());
    let mut warnings = Vec::new();
    let got = renderer.render_value(
        &json!(["${{ parameters.missing }}", "${{ parameters.count }}"]),
        &context(),
        &mut warnings,
    );
    assert_eq!(got, Some(json!([null, 3])));
}

#[test]
fn dropped_key_leaves_siblings() {
    let renderer = Renderer::new(RendererOptions::default());
    let mut warnings = Vec::new();
    let got = renderer.render_value(
        &json!({ "a": "${{ parameters.missing }}", "b": "${{ parameters.name }}", "c": 7, "d": true }),
        &context(),
        &mut warnings,
    );
    assert_eq!(got, Some(json!({ "b": "my-service", "c": 7, "d": true })));
}

// §3.3 render errors keep the raw string (and we warn).
#[test]
fn syntax_error_keeps_the_string() {
    check_warns("${{ parameters.name | }}");
}

#[test]
fn unknown_filter_keeps_the_string() {
    check_warns("${{ parameters.name | nosuchfilter }}");
}

#[test]
fn throwing_filter_keeps_the_string() {
    check_warns("${{ 'gitlab.example.com?repo=x' | parseRepoUrl }}");
}

// §3.3 untouched leaves.
#[test]
fn plain_string_passes_through() {
    check(
        "just text with {{ braces }}",
        Some(json!("just text with {{ braces }}")),
    );
}

#[test]
fn non_string_leaves_are_untouched() {
    let renderer = Renderer::new(RendererOptions::default());
    let mut warnings = Vec::new();
    let value = json!({ "n": 1, "b": false, "z": null });
    assert_eq!(
        renderer.render_value(&value, &context(), &mut warnings),
        Some(value)
    );
}

#[test]
fn keys_are_not_rendered() {
    let renderer = Renderer::new(RendererOptions::default());
    let mut warnings = Vec::new();
    let value = json!({ "${{ parameters.name }}": "v" });
    assert_eq!(
        renderer.render_value(&value, &context(), &mut warnings),
        Some(value)
    );
}

// §3.3 how values print inside text.
#[test]
fn object_in_text_prints_object_object() {
    check(
        "v=${{ parameters.nested }}",
        Some(json!("v=[object Object]")),
    );
}

#[test]
fn array_in_text_joins_with_commas() {
    check("v=${{ parameters.tags }}", Some(json!("v=a,b")));
}

#[test]
fn whole_float_prints_without_fraction() {
    check("v=${{ parameters.whole }}", Some(json!("v=2")));
}

#[test]
fn fraction_prints() {
    check("v=${{ parameters.ratio }}", Some(json!("v=1.5")));
}

#[test]
fn null_in_text_prints_nothing() {
    check("v=${{ parameters.nothing }}", Some(json!("v=")));
}

#[test]
fn dump_gives_json() {
    check(
        "${{ parameters.nested | dump }}",
        Some(json!("{\"deep\":{\"value\":\"found\"}}")),
    );
}

#[test]
fn dump_with_indent() {
    check(
        "${{ parameters.tags | dump(2) }}",
        Some(json!("[\n  \"a\",\n  \"b\"\n]")),
    );
}

#[test]
fn plain_double_braces_are_literal() {
    check(
        "{{ parameters.name }}",
        Some(json!("{{ parameters.name }}")),
    );
}

// §3.4 context.
#[test]
fn steps_output_is_visible() {
    check("${{ steps.fetch.output.count }}", Some(json!(2)));
}

#[test]
fn steps_output_by_bracket() {
    check("${{ steps['fetch'].output.files }}", Some(json!(["a.txt"])));
}

#[test]
fn user_ref_and_entity() {
    check(
        "${{ user.ref }}/${{ user.entity.metadata.name }}",
        Some(json!("user:default/jane/jane")),
    );
}

#[test]
fn task_id() {
    check("${{ context.task.id }}", Some(json!("task-123")));
}

#[test]
fn environment_parameters() {
    check("${{ environment.parameters.region }}", Some(json!("eu")));
}

#[test]
fn each_key_and_value() {
    check("${{ each.key }}:${{ each.value }}", Some(json!("0:alpha")));
}

// §3.5 Backstage filters.
#[test]
fn parse_repo_url_filter() {
    check(
        "${{ parameters.repoUrl | parseRepoUrl }}",
        Some(json!({ "host": "github.com", "owner": "acme", "repo": "widgets" })),
    );
}

#[test]
fn parse_repo_url_missing_owner_fails() {
    check_warns("${{ 'github.com?repo=x' | parseRepoUrl }}");
}

#[test]
fn project_slug_filter() {
    check(
        "${{ parameters.repoUrl | projectSlug }}",
        Some(json!("acme/widgets")),
    );
}

#[test]
fn parse_entity_ref_filter() {
    check(
        "${{ parameters.owner | parseEntityRef }}",
        Some(json!({ "kind": "group", "namespace": "default", "name": "team-a" })),
    );
}

#[test]
fn parse_entity_ref_with_defaults() {
    check(
        "${{ 'jane' | parseEntityRef({ defaultKind: 'user', defaultNamespace: 'people' }) }}",
        Some(json!({ "kind": "user", "namespace": "people", "name": "jane" })),
    );
}

#[test]
fn parse_entity_ref_without_kind_fails() {
    check_warns("${{ 'jane' | parseEntityRef }}");
}

#[test]
fn pick_filter() {
    check(
        "${{ parameters | pick('nested.deep.value') }}",
        Some(json!("found")),
    );
}

#[test]
fn pick_filter_with_brackets() {
    check("${{ parameters | pick('tags[1]') }}", Some(json!("b")));
}

// §3.5 Nunjucks built-ins real templates use.
#[test]
fn builtin_filters() {
    let cases: &[(&str, Json)] = &[
        ("${{ parameters.missing | default('x') }}", json!("x")),
        ("${{ parameters.missing | d('y') }}", json!("y")),
        ("${{ parameters.tags | join('-') }}", json!("a-b")),
        ("${{ parameters.name | upper }}", json!("MY-SERVICE")),
        ("${{ 'ABC' | lower }}", json!("abc")),
        (
            "${{ parameters.name | replace('-', '_') }}",
            json!("my_service"),
        ),
        ("${{ '  x  ' | trim }}", json!("x")),
        ("${{ parameters.tags | length }}", json!(2)),
        ("${{ parameters.tags | first }}", json!("a")),
        ("${{ parameters.tags | last }}", json!("b")),
        ("${{ 'hello world' | title }}", json!("Hello World")),
        ("${{ 'hello' | capitalize }}", json!("Hello")),
        ("${{ '42' | int }}", json!(42)),
        ("${{ '1.5' | float }}", json!(1.5)),
        ("${{ parameters.count | string }}", json!("3")),
        ("${{ 'ab' | list }}", json!(["a", "b"])),
        ("${{ ['b', 'a'] | sort }}", json!(["a", "b"])),
        ("${{ parameters.tags | reverse }}", json!(["b", "a"])),
        ("${{ 'a b' | urlencode }}", json!("a%20b")),
        ("${{ 'one two three' | wordcount }}", json!(3)),
        ("${{ 'hello world' | truncate(8) }}", json!("hello...")),
    ];
    for (template, expected) in cases {
        check(template, Some(expected.clone()));
    }
}

// §3.5 JavaScript methods.
#[test]
fn js_string_methods() {
    let cases: &[(&str, Json)] = &[
        ("${{ parameters.name.toUpperCase() }}", json!("MY-SERVICE")),
        ("${{ 'ABC'.toLowerCase() }}", json!("abc")),
        (
            "${{ parameters.name.replace('-', '_') }}",
            json!("my_service"),
        ),
        ("${{ 'a-b-c'.replace('-', '_') }}", json!("a_b-c")),
        ("${{ 'a/b/c'.split('/') }}", json!(["a", "b", "c"])),
        ("${{ parameters.name.startsWith('my') }}", json!(true)),
        ("${{ parameters.name.endsWith('x') }}", json!(false)),
        ("${{ parameters.name.includes('serv') }}", json!(true)),
        ("${{ parameters.name.indexOf('s') }}", json!(3)),
        ("${{ parameters.name.substring(0, 2) }}", json!("my")),
        ("${{ parameters.name.slice(-7) }}", json!("service")),
        ("${{ '  x '.trim() }}", json!("x")),
        ("${{ parameters.name.length }}", json!(10)),
        ("${{ parameters.tags.length }}", json!(2)),
        ("${{ parameters.tags.join('+') }}", json!("a+b")),
        ("${{ parameters.tags.includes('b') }}", json!(true)),
        ("${{ parameters.name === 'my-service' }}", json!(true)),
        ("${{ parameters.name !== 'my-service' }}", json!(false)),
        ("${{ 'a.length' }}", json!("a.length")),
    ];
    for (template, expected) in cases {
        check(template, Some(expected.clone()));
    }
}

#[test]
fn length_in_text_is_only_rewritten_inside_tags() {
    check(
        "x.length=${{ parameters.tags.length }}",
        Some(json!("x.length=2")),
    );
}

#[test]
fn string_concatenation_with_plus() {
    check(
        "${{ parameters.name + '-api' }}",
        Some(json!("my-service-api")),
    );
}

#[test]
fn inline_if_with_else() {
    check(
        "${{ 'on' if parameters.enabled else 'off' }}",
        Some(json!("on")),
    );
}

#[test]
fn huge_repeat_is_refused() {
    check_warns("${{ 'x'.repeat(100000000) }}");
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    check_warns("{% for i in range(100000000) %}x{% endfor %}");
}

// §3.6 `if` truthiness.
fn condition(cond: Json, failed: bool) -> Condition {
    let renderer = Renderer::new(RendererOptions::default());
    renderer.render_condition(&cond, &context(), failed, &mut Vec::new())
}

#[test]
fn if_truthiness() {
    let cases: &[(Json, bool)] = &[
        (json!(true), true),
        (json!(false), false),
        (json!("${{ parameters.enabled }}"), true),
        (json!("${{ parameters.disabled }}"), false),
        (json!("${{ parameters.empty }}"), false),
        (json!("${{ parameters.tags }}"), true),
        (json!("${{ parameters.falseString }}"), true),
        (json!("false"), true),
        (json!(""), false),
        (json!("${{ parameters.missing }}"), false),
        (json!("${{ parameters.nothing }}"), false),
        (json!("${{ 0 }}"), false),
        (json!("${{ parameters.count }}"), true),
        (json!("${{ parameters.nested }}"), true),
        (json!("${{ {} }}"), true),
        (json!("${{ parameters.count > 2 }}"), true),
        (json!("${{ parameters.name === 'other' }}"), false),
    ];
    for (cond, expected) in cases {
        assert_eq!(
            condition(cond.clone(), false).holds,
            *expected,
            "if: {cond}"
        );
    }
}

#[test]
fn always_is_true_and_noted() {
    let c = condition(json!("${{ always() }}"), true);
    assert!(c.holds && c.uses_status_function);
}

#[test]
fn failure_reflects_earlier_failure() {
    assert!(condition(json!("${{ failure() }}"), true).holds);
    let c = condition(json!("${{ failure() }}"), false);
    assert!(!c.holds && c.uses_status_function);
}

#[test]
fn plain_condition_does_not_use_status_functions() {
    assert!(!condition(json!("${{ parameters.enabled }}"), true).uses_status_function);
}

#[test]
fn is_truthy_matches_javascript() {
    assert!(!is_truthy(&json!(null)));
    assert!(!is_truthy(&json!(0)));
    assert!(!is_truthy(&json!(0.0)));
    assert!(!is_truthy(&json!("")));
    assert!(!is_truthy(&json!([])));
    assert!(is_truthy(&json!("false")));
    assert!(is_truthy(&json!("0")));
    assert!(is_truthy(&json!({})));
    assert!(is_truthy(&json!([0])));
    assert!(is_truthy(&json!(-1)));
}

// Cookiecutter mode (fetch:template with cookiecutterCompat).
#[test]
fn cookiecutter_syntax_and_jsonify() {
    let renderer = Renderer::new(RendererOptions {
        syntax: Syntax::Cookiecutter,
        ..RendererOptions::default()
    });
    let ctx = json!({ "cookiecutter": { "name": "x", "list": [1, 2] } });
    assert_eq!(
        renderer
            .render_text(
                "{{ cookiecutter.name }} {{ cookiecutter.list | jsonify }} ${{ x }}",
                &ctx
            )
            .unwrap(),
        "x [1,2] $"
    );
}

#[test]
fn trim_and_lstrip_blocks() {
    let source = "a\n  {% if true %}\nb\n  {% endif %}\nc";
    let plain = Renderer::new(RendererOptions::default());
    assert_eq!(
        plain.render_text(source, &json!({})).unwrap(),
        "a\n  \nb\n  \nc"
    );
    let trimmed = Renderer::new(RendererOptions {
        trim_blocks: true,
        lstrip_blocks: true,
        ..RendererOptions::default()
    });
    assert_eq!(trimmed.render_text(source, &json!({})).unwrap(), "a\nb\nc");
}

// nunjitsu's expression language, as Backstage 4.2.0 evaluates it.

#[test]
fn plus_concatenates_when_either_side_is_a_string_after_to_primitive() {
    let cases: &[(&str, Json)] = &[
        ("${{ 'v' + 1 }}", json!("v1")),
        ("${{ 1 + '2' }}", json!("12")),
        ("${{ null + 1 }}", json!(1)),
        ("${{ true + 1 }}", json!(2)),
        ("${{ [1, 2] + [3] }}", json!("1,23")),
        ("${{ parameters.nested + '' }}", json!("[object Object]")),
        ("${{ null ~ 'x' }}", json!("nullx")),
        ("${{ parameters.missing ~ 'x' }}", json!("undefinedx")),
    ];
    for (template, expected) in cases {
        check(template, Some(expected.clone()));
    }
    // `undefined + 1` is NaN, which JSON cannot hold.
    check("${{ parameters.missing + 1 }}", Some(Json::Null));
}

#[test]
fn arithmetic_converts_operands_to_numbers() {
    let cases: &[(&str, Json)] = &[
        ("${{ '3' * '4' }}", json!(12)),
        ("${{ '10' - '4' }}", json!(6)),
        ("${{ [4] * 2 }}", json!(8)),
        ("${{ 7 // 2 }}", json!(3)),
        ("${{ -7 % 3 }}", json!(-1)),
        ("${{ 0.1 + 0.2 }}", json!(0.30000000000000004)),
        ("${{ 2 ** 3 ** 2 }}", json!(64)),
        ("${{ 3 * 7 // 2 }}", json!(9)),
        ("v=${{ 10 ** 21 }}", json!("v=1e+21")),
        ("v=${{ 1 / 0 }}", json!("v=Infinity")),
    ];
    for (template, expected) in cases {
        check(template, Some(expected.clone()));
    }
}

#[test]
fn comparisons_follow_javascript_loose_and_strict_equality() {
    let cases: &[(&str, Json)] = &[
        ("${{ 42 == '42' }}", json!(true)),
        ("${{ 42 === '42' }}", json!(false)),
        ("${{ null == parameters.missing }}", json!(true)),
        ("${{ null == 0 }}", json!(false)),
        ("${{ [1, 2] == '1,2' }}", json!(true)),
        ("${{ '10' < '9' }}", json!(true)),
        ("${{ '10' < 9 }}", json!(false)),
        ("${{ 3 > 2 > 1 }}", json!(false)),
        ("${{ not parameters.count == 3 }}", json!(false)),
        ("${{ not 1 + 1 }}", json!(1)),
    ];
    for (template, expected) in cases {
        check(template, Some(expected.clone()));
    }
}

#[test]
fn and_or_return_an_operand_with_javascript_truthiness() {
    check("${{ parameters.empty or 'fallback' }}", Some(json!([])));
    check(
        "${{ parameters.nothing or 'fallback' }}",
        Some(json!("fallback")),
    );
    check("${{ parameters.count and 'x' }}", Some(json!("x")));
    check("${{ 'a' if parameters.disabled }}", Some(json!("")));
    check(
        "${{ 'yes' if parameters.empty else 'no' }}",
        Some(json!("yes")),
    );
    check("${{ 3 in ['3'] }}", Some(json!(false)));
}

#[test]
fn only_the_methods_nunjitsu_approves_are_callable() {
    check("${{ (255).toString(16) }}", Some(json!("ff")));
    check("${{ (1.005).toFixed(2) }}", Some(json!("1.00")));
    check("${{ (123.456).toPrecision(4) }}", Some(json!("123.5")));
    check("${{ [3, 1, 10].sort() }}", Some(json!([1, 10, 3])));
    check("${{ [1, [2, [3]]].flat() }}", Some(json!([1, 2, [3]])));
    check("${{ 'a1b2'.split(r/\\d/) }}", Some(json!(["a", "b", ""])));
    check("${{ r/^my/.test(parameters.name) }}", Some(json!(true)));
    check_warns("${{ '7'.padStart(3, '0') }}");
    check_warns("${{ 'a-b'.replaceAll('-', '_') }}");
    check_warns("${{ parameters.nested.keys() }}");
    // A method read without a call cannot be printed.
    check_warns("${{ parameters.name.toUpperCase }}");
}

#[test]
fn members_of_missing_values_are_undefined() {
    check("${{ parameters.nothing.member }}", None);
    check("${{ parameters.missing.a.b }}", None);
    check("${{ parameters.nested.length }}", None);
    check("${{ parameters.name[0] }}", Some(json!("m")));
    check("${{ parameters.tags[-1] }}", None);
    check("${{ parameters.tags[1:] }}", Some(json!(["b"])));
}

#[test]
fn minijinja_globals_are_not_nunjitsu_globals() {
    // nunjitsu has `range`, `cycler` and `joiner`; minijinja's others are undefined.
    for name in ["dict", "debug", "namespace"] {
        check(&format!("${{{{ {name} }}}}"), None);
    }
    check("${{ range(2) | join(',') }}", Some(json!("0,1")));
}

#[test]
fn what_nunjitsu_does_not_parse_stays_as_written() {
    check_warns("${{ 1e3 }}");
    check_warns("${{ !parameters.enabled }}");
    check_warns("${{ parameters.enabled && true }}");
    check_warns("${{ parameters.constructor }}");
    check_warns("${{ - -1 }}");
}

#[test]
fn sole_expression_values_become_json_as_javascript_copies_them() {
    check(
        "${{ { a: parameters.missing, b: null } }}",
        Some(json!({ "b": null })),
    );
    check("${{ [parameters.missing, 1] }}", Some(json!([null, 1])));
    check("${{ 0 / 0 }}", Some(Json::Null));
    check("${{ 4 / 2 }}", Some(json!(2)));
    check("${{ r/a+/g }}", Some(json!("/a+/g")));
    // Trimmed white space around the only interpolation leaves it sole.
    check("  ${{- parameters.count -}}  ", Some(json!(3)));
}

#[test]
fn statements_use_javascript_truthiness_and_nunjitsu_loops() {
    check(
        "{% if parameters.empty %}truthy{% else %}falsy{% endif %}",
        Some(json!("truthy")),
    );
    check(
        "{% for k, v in parameters.nested %}${{ k }}={{ v }}{% endfor %}",
        Some(json!("deep={{ v }}")),
    );
    check(
        "{% for k in parameters.nested %}x{% endfor %}",
        Some(json!("")),
    );
    check(
        "{% for i in range(0, 1, 0.25) %}${{ i }};{% endfor %}",
        Some(json!("0;0.25;0.5;0.75;")),
    );
    check(
        "{% set c = cycler('a', 'b') %}${{ c.current }}|${{ c.next() }}|${{ c.next() }}",
        Some(json!("|a|b")),
    );
    check(
        "{% set j = joiner(' | ') %}{% for t in parameters.tags %}${{ j() }}${{ t }}{% endfor %}",
        Some(json!("a | b")),
    );
    check(
        "{% raw %}${{ github.sha }}{% endraw %}{% verbatim %}{% x %}{% endverbatim %}",
        Some(json!("${{ github.sha }}{% x %}")),
    );
}

#[test]
fn set_in_a_loop_body_assigns_the_outer_variable() {
    check(
        "{% set total = 0 %}{% for n in [1, 2, 3] %}{% set total = total + n %}{% endfor %}${{ total }}",
        Some(json!("6")),
    );
    // A macro keeps its own variables.
    check(
        "{% set x = 1 %}{% macro m() %}{% set x = 5 %}${{ x }}{% endmacro %}\
         {% for i in [1] %}{% set x = 2 %}{% endfor %}${{ m() }}${{ x }}",
        Some(json!("52")),
    );
}

#[test]
fn switch_compares_strictly_and_falls_through_empty_cases() {
    check(
        "{% switch parameters.count %}{% case 1 %}{% case 3 %}one or three{% default %}other{% endswitch %}",
        Some(json!("one or three")),
    );
    check(
        "{% switch parameters.count %}{% case '3' %}string{% default %}other{% endswitch %}",
        Some(json!("other")),
    );
}

#[test]
fn context_arrays_change_only_within_one_render() {
    check(
        "${{ parameters.tags.reverse() }} ${{ parameters.tags }}",
        Some(json!("b,a b,a")),
    );
    check("${{ parameters.tags }}", Some(json!(["a", "b"])));
}

#[test]
fn trim_blocks_keeps_the_newline_after_comments_and_raw_blocks() {
    let renderer = Renderer::new(RendererOptions {
        trim_blocks: true,
        ..RendererOptions::default()
    });
    let text = renderer
        .render_text(
            "{% if true %}\na\n{% endif %}\n{# note #}\n{% raw %}\n${{ x }}\n{% endraw %}\nend\n",
            &context(),
        )
        .unwrap();
    assert_eq!(text, "a\n\n${{ x }}\n\nend\n");
}

#[test]
fn a_test_named_by_a_literal_uses_its_text() {
    check("${{ parameters.nothing is null }}", Some(json!(true)));
    check("${{ parameters.name is none }}", Some(json!(false)));
}

#[test]
fn a_missing_method_is_reported_where_nunjitsu_reports_it() {
    let renderer = Renderer::new(RendererOptions::default());
    let err = renderer
        .render_text(
            "line one\nid: ${{ parameters.name.padStart(20, '0') }}\n",
            &context(),
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        "Template error at line 2, column 25: Template value \"parameters.name.padStart\" \
         resolved to undefined and cannot be called"
    );
}

#[test]
fn raw_blocks_and_comments_keep_white_space_as_nunjitsu_does() {
    let render = |source: &str, trim_blocks: bool, lstrip_blocks: bool| {
        Renderer::new(RendererOptions {
            trim_blocks,
            lstrip_blocks,
            ..RendererOptions::default()
        })
        .render_text(source, &context())
        .unwrap()
    };
    // A later `{%-` trims the end of a raw body, as any text.
    assert_eq!(
        render(
            "{% raw %}x ${{ y }}\n  {% endraw %}\n  {%- if true %}!{% endif %}",
            false,
            false
        ),
        "x ${{ y }}!"
    );
    // The opening tag's `-%}` applies after the closing tag; raw tags nest.
    assert_eq!(
        render(
            "{% raw -%} a {% raw %}b{% endraw %} {% endraw %}  c",
            false,
            false
        ),
        " a {% raw %}b{% endraw %} c"
    );
    // A comment stops the trimming of a `-%}` before it.
    assert_eq!(
        render("{% if true -%}\n   {# note #}   b{% endif %}", false, false),
        "   b"
    );
    // lstripBlocks strips the indentation before `{% raw %}`.
    assert_eq!(
        render("a\n  {% raw %}\n{{ x }}{% endraw %}", true, true),
        "a\n{{ x }}"
    );
    assert_eq!(
        Renderer::new(RendererOptions::default())
            .render_text("a {% raw %}x{%- endraw %}", &context())
            .unwrap_err()
            .message,
        "Template error at line 1, column 3: Missing \"endraw\" tag"
    );
}

#[test]
fn syntax_errors_are_worded_and_located_as_nunjitsu_words_them() {
    let renderer = Renderer::new(RendererOptions::default());
    let error = |source: &str| {
        renderer
            .render_text(source, &context())
            .unwrap_err()
            .message
    };
    assert_eq!(
        error("a ${{ foo bar }}"),
        "Template error at line 1, column 11: Expected eof, received \"bar\""
    );
    assert_eq!(
        error("x\n  ${{ 1 + }}"),
        "Template error at line 2, column 11: Unexpected expression token at end of input"
    );
    assert_eq!(
        error("a ${{ 1e3 }}"),
        "Template error at line 1, column 7: Invalid numeric literal"
    );
    assert_eq!(
        error("a ${{ x.__proto__ }}"),
        "Template error at line 1, column 9: Template name \"__proto__\" is reserved"
    );
    assert_eq!(
        error("a ${{ - -1 }}"),
        "Template error at line 1, column 9: Repeated unparenthesized unary - is not supported"
    );
    assert_eq!(
        error("a {# x"),
        "Template error at line 1, column 3: Unterminated comment tag"
    );
}

#[test]
fn text_without_a_tag_renders_as_itself_within_the_output_limit() {
    let renderer = Renderer::new(RendererOptions::default());
    for text in ["README.md", "{{ x }} and } and $ {", "line\r\n\n  \t", ""] {
        assert_eq!(renderer.render_text(text, &context()).unwrap(), text);
    }
    let cookiecutter = Renderer::new(RendererOptions {
        syntax: Syntax::Cookiecutter,
        ..RendererOptions::default()
    });
    assert_eq!(
        cookiecutter.render_text("${ x } {x}", &context()).unwrap(),
        "${ x } {x}"
    );
    let huge = "a".repeat(MAX_OUTPUT_BYTES + 1);
    assert!(
        renderer
            .render_text(&huge, &context())
            .unwrap_err()
            .message
            .contains("exceeds")
    );
}
