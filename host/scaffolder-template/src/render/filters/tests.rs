use super::*;

fn env() -> Environment<'static> {
    let mut env = Environment::empty();
    register(&mut env, &ScmIntegration::defaults(), Syntax::Backstage);
    env
}

fn eval(expr: &str) -> Result<Json, String> {
    env()
        .compile_expression(expr)
        .map_err(|e| e.to_string())?
        .eval(minijinja::context! {})
        .map(|v| serde_json::to_value(&v).unwrap())
        .map_err(|e| e.to_string())
}

#[test]
fn parse_repo_url_orders_keys_and_decodes_values() {
    let parsed = eval("'bitbucket.org?repo=r&project=P&workspace=w&x=1' | parseRepoUrl").unwrap();
    let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["host", "repo", "workspace", "project"]);
    assert_eq!(
        eval("'GitHub.com:443?owner=a+b&repo=%2Fc%2F' | parseRepoUrl").unwrap(),
        serde_json::json!({"host": "github.com", "owner": "a b", "repo": "c"})
    );
}

#[test]
fn parse_repo_url_errors_name_the_missing_parameter_and_the_host() {
    let missing = eval("'github.com?owner=acme' | parseRepoUrl").unwrap_err();
    assert!(
        missing.contains("Template filter \"parseRepoUrl\" failed: Invalid repo URL passed to publisher: https://github.com/?owner=acme, missing repo"),
        "{missing}"
    );
    let both = eval("'github.com' | parseRepoUrl").unwrap_err();
    assert!(both.contains("missing repo"), "{both}");
    let host = eval("'github.com:8443?owner=a&repo=b' | parseRepoUrl").unwrap_err();
    assert!(
        host.contains("No matching integration configuration for host github.com:8443"),
        "{host}"
    );
    assert!(
        eval("'exa mple.com?owner=a' | parseRepoUrl")
            .unwrap_err()
            .contains("Invalid URL")
    );
}

#[test]
fn project_slug_prints_missing_parts_as_undefined() {
    assert_eq!(
        eval("'gitlab.com?project=42' | projectSlug").unwrap(),
        "undefined/undefined"
    );
    assert_eq!(
        eval("'github.com?owner=a&repo=b' | projectSlug").unwrap(),
        "a/b"
    );
}

#[test]
fn parse_entity_ref_reads_strings_and_objects_with_defaults() {
    assert_eq!(
        eval("'ns/kind:name' | parseEntityRef({'defaultKind': 'k'})").unwrap(),
        serde_json::json!({"kind": "k", "namespace": "ns", "name": "kind:name"})
    );
    assert_eq!(
        eval("'group:team' | parseEntityRef({'defaultNamespace': ''})").unwrap(),
        serde_json::json!({"kind": "group", "namespace": "default", "name": "team"})
    );
    assert_eq!(
        eval("{'kind': 'k', 'namespace': 'n', 'name': 'x', 'extra': 1} | parseEntityRef").unwrap(),
        serde_json::json!({"kind": "k", "namespace": "n", "name": "x"})
    );
    let missing = eval("{'kind': 'k'} | parseEntityRef").unwrap_err();
    assert!(
        missing.contains("Entity reference {\"kind\":\"k\"} had missing or empty name"),
        "{missing}"
    );
    assert!(
        eval("'' | parseEntityRef")
            .unwrap_err()
            .contains("must not be empty")
    );
    assert!(
        eval("'kind:/name' | parseEntityRef")
            .unwrap_err()
            .contains("was not on the form")
    );
}

#[test]
fn pick_is_lodash_get() {
    assert_eq!(
        eval("{'a': {'b': [1, {'c': 3}]}} | pick('a.b[1].c')").unwrap(),
        3
    );
    assert_eq!(eval("{'a-b': {'c': 1}} | pick('[\"a-b\"].c')").unwrap(), 1);
    assert_eq!(eval("{'a.b': 2} | pick('a.b')").unwrap(), 2);
    assert_eq!(eval("'abc' | pick('length')").unwrap(), 3);
    assert_eq!(
        eval("{'a': 1} | pick('b', 'fallback')").unwrap(),
        "fallback"
    );
    assert_eq!(eval("({'a': 1} | pick('b.c')) is undefined").unwrap(), true);
    assert_eq!(string_to_path("a..b"), ["a", "", "b"]);
    assert_eq!(string_to_path(".a[0]['x']"), ["", "a", "0", "x"]);
}

fn render(source: &str) -> Option<Json> {
    let renderer = crate::render::Renderer::new(crate::render::RendererOptions::default());
    renderer
        .render_string(source, &serde_json::json!({}))
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

#[test]
fn regex_literals_reach_replace_through_the_renderer() {
    assert_eq!(
        render("${{ 'my-new_svc' | replace(r/[^a-z]/g, '') }}"),
        Some(Json::from("mynewsvc"))
    );
    assert_eq!(
        render("x ${{ 'A.B' | replace(r/[.]/g, '/') | lower }}"),
        Some(Json::from("x a/b"))
    );
}

#[test]
fn string_literals_keep_non_ascii_characters() {
    assert_eq!(render("${{ 'héllo' | length }}"), Some(Json::from(5)));
    assert_eq!(
        render("${{ 'straße' | upper }}"),
        Some(Json::from("STRASSE"))
    );
    assert_eq!(render("${{ 'a\\'é' }}"), Some(Json::from("a'é")));
}

fn diagnose(source: &str) -> String {
    let err = env()
        .render_str(source, minijinja::context! {})
        .unwrap_err();
    diagnostic(source, &err, Syntax::Backstage).unwrap_or_else(|| err.to_string())
}

#[test]
fn diagnostics_name_the_filter_position_as_nunjitsu() {
    assert_eq!(
        diagnose("name: {{ x }}\nslug: {{ x | slugify }}\n"),
        "Template error at line 2, column 14: Unknown template filter \"slugify\""
    );
    assert_eq!(
        diagnose("{{ x | lenght }}"),
        "Template error at line 1, column 8: Unknown template filter \"lenght\"; did you mean \"length\"?"
    );
    assert_eq!(
        diagnose("a\nmissing: {{ x | first }}"),
        "Template error at line 2, column 17: Filter \"first\" failed for undefined input: first requires a sequence"
    );
    assert_eq!(
        diagnose("owner: {{ ('github.com?owner=a' | parseRepoUrl).owner }}"),
        "Template error at line 1, column 35: Template filter \"parseRepoUrl\" failed: Invalid repo URL passed to publisher: https://github.com/?owner=a, missing repo"
    );
    assert_eq!(
        diagnose("{{ 1 is nope }}"),
        "Template error at line 1, column 9: Unknown template test \"nope\""
    );
}

#[test]
fn a_text_template_reports_the_column_as_written() {
    let renderer = crate::render::Renderer::new(crate::render::RendererOptions::default());
    let err = renderer
        .render_text(
            "first: ${{ values.name }}\nsize: ${{ values.name.length | batch(0) }}\n",
            &serde_json::json!({ "values": { "name": "x" } }),
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        "Template error at line 2, column 32: Filter \"batch\" failed for number input: Batch size must be a positive integer"
    );
}

#[test]
fn registered_filters_refuse_keyword_arguments() {
    let err = eval("'user:x' | parseEntityRef(defaultKind='group')").unwrap_err();
    assert!(err.contains("only positional arguments"), "{err}");
}
