//! What the local commands read from the command line: parameter values (`--values FILE`,
//! `--set key=value`), secrets (`--secret NAME[=VALUE]`) and YAML-or-JSON documents, and
//! the field-by-field report of values a template's parameters refuse.

use std::path::Path;

use anyhow::{Context, bail};
use scaffolder_template::ParameterError;
use scaffolder_template::Template;
use scaffolder_template::parameters::{PageCheck, check_values};
use serde_json::{Map, Value as Json};

/// One YAML (or JSON, which is YAML) document; an empty text is `null`.
pub fn parse_yaml(text: &str, what: &str) -> anyhow::Result<Json> {
    let documents = scaffolder_template::yaml::parse_documents(text).map_err(|err| {
        anyhow::anyhow!(
            "{what} is not valid YAML or JSON (line {}, column {}): {}",
            err.position.line,
            err.position.column,
            err.message
        )
    })?;
    match documents.len() {
        0 => Ok(Json::Null),
        1 => Ok(documents
            .into_iter()
            .next()
            .map(|d| d.value)
            .unwrap_or_default()),
        n => bail!("{what} holds {n} YAML documents; give one"),
    }
}

/// `--values FILE` (an object, YAML or JSON), then each `--set` on top.
pub fn read_values(
    file: Option<&Path>,
    sets: &[String],
    template: &Template,
) -> anyhow::Result<Json> {
    let mut values = match file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the values file {}", file.display()))?;
            match parse_yaml(&text, &file.display().to_string())? {
                Json::Object(values) => values,
                Json::Null => Map::new(),
                other => bail!(
                    "{} must hold an object of parameter values (`name: billing`), not {}",
                    file.display(),
                    json_kind(&other)
                ),
            }
        }
        None => Map::new(),
    };
    for set in sets {
        let (key, text) = set.split_once('=').with_context(|| {
            format!("--set {set}: expected KEY=VALUE, for example --set name=billing")
        })?;
        let path: Vec<&str> = key.split('.').collect();
        if path.iter().any(|part| part.is_empty()) {
            bail!("--set {set}: '{key}' is not a parameter name; nested ones read a.b");
        }
        let value = if declared_string(template, &path) {
            Json::String(text.to_owned())
        } else {
            set_value(text)
        };
        insert_path(&mut values, &path, value)
            .with_context(|| format!("--set {set}: '{key}' is not an object"))?;
    }
    Ok(Json::Object(values))
}

/// A `--set` value the schema does not type: YAML when it reads as a scalar or a flow
/// collection (`true`, `3`, `[a, b]`), otherwise the text.
fn set_value(text: &str) -> Json {
    match parse_yaml(text, "the value") {
        Ok(Json::Null) if !matches!(text.trim(), "null" | "~") => Json::String(text.to_owned()),
        Ok(value) => value,
        Err(_) => Json::String(text.to_owned()),
    }
}

/// Whether some parameter page declares the property at `path` as a string.
fn declared_string(template: &Template, path: &[&str]) -> bool {
    template.spec.parameters.iter().any(|page| {
        let mut schema = page;
        for part in path {
            match schema.get("properties").and_then(|p| p.get(part)) {
                Some(next) => schema = next,
                None => return false,
            }
        }
        schema.get("type").and_then(Json::as_str) == Some("string")
    })
}

fn insert_path(values: &mut Map<String, Json>, path: &[&str], value: Json) -> Option<()> {
    let (last, parents) = path.split_last()?;
    let mut object = values;
    for part in parents {
        object = object
            .entry(*part)
            .or_insert_with(|| Json::Object(Map::new()))
            .as_object_mut()?;
    }
    object.insert((*last).to_owned(), value);
    Some(())
}

/// `--secret NAME=VALUE`, or `--secret NAME` for the environment variable NAME.
pub fn parse_secrets(args: &[String]) -> anyhow::Result<Map<String, Json>> {
    let mut secrets = Map::new();
    for arg in args {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, value.to_owned()),
            None => {
                let value = std::env::var(arg).with_context(|| {
                    format!(
                        "--secret {arg}: the environment variable {arg} is not set; set it, or give --secret {arg}=VALUE"
                    )
                })?;
                (arg.as_str(), value)
            }
        };
        if name.is_empty() {
            bail!("--secret {arg}: the secret needs a name, as in --secret GIT_TOKEN=...");
        }
        secrets.insert(name.to_owned(), Json::String(value));
    }
    Ok(secrets)
}

/// Values checked against a template's parameter pages for a local run.
pub struct CheckedValues {
    /// What the run gets: the values minus those only hidden pages own (a false `when`).
    pub values: Json,
    /// Every value the shown pages refuse, one line per field.
    pub problems: Vec<String>,
    /// `when` conditions that could not be evaluated and schemas that could not be
    /// followed, with what was done instead; and values no parameter declares.
    pub warnings: Vec<String>,
}

/// Checks values as the server does (`scaffolder_template::parameters::check_values`), but
/// reports every shown page (Backstage stops at the first page that fails; an author
/// wants them all), and warns about each top-level key no page declares: the portal's
/// form sends only declared fields, so such a key is usually a misspelt one, which the
/// schemas let through.
pub fn check(template: &Template, values: &Json) -> CheckedValues {
    let pages = &template.spec.parameters;
    let checked = check_values(pages, values);
    let mut problems = Vec::new();
    for (index, (page, check)) in pages.iter().zip(&checked.pages).enumerate() {
        let PageCheck::Shown { errors } = check else {
            continue;
        };
        let title = page
            .get("title")
            .and_then(Json::as_str)
            .map(|t| format!("'{t}'"))
            .unwrap_or_else(|| format!("{}", index + 1));
        for error in errors {
            problems.push(format!("page {title}: {}", describe(error)));
        }
    }
    let mut warnings = checked.warnings;
    warnings.extend(undeclared_keys(pages, values));
    CheckedValues {
        values: checked.values,
        problems,
        warnings,
    }
}

/// A warning for each top-level key of `values` that no page declares, naming the
/// parameters there are. Pages that admit undeclared keys (`additionalProperties` other
/// than `false`, `patternProperties`) turn the check off.
fn undeclared_keys(pages: &[Json], values: &Json) -> Vec<String> {
    let Some(values) = values.as_object() else {
        return Vec::new();
    };
    let open = pages.iter().any(|page| {
        page.get("patternProperties").is_some()
            || page
                .get("additionalProperties")
                .is_some_and(|a| a != &Json::Bool(false))
    });
    if open {
        return Vec::new();
    }
    let mut declared = Vec::new();
    for page in pages {
        declared_names(page, &mut declared);
    }
    let known = if declared.is_empty() {
        "the template has no parameters".to_owned()
    } else {
        format!("the parameters are {}", declared.join(", "))
    };
    values
        .keys()
        .filter(|key| !declared.contains(key))
        .map(|key| format!("no parameter is named '{key}' (the portal would not send it); {known}"))
        .collect()
}

/// The property names a page's schema declares, in order: its `properties`, and those of
/// the subschemas that add fields conditionally (`dependencies`, `allOf`/`anyOf`/`oneOf`,
/// `if`/`then`/`else`).
fn declared_names(schema: &Json, out: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Json::as_object) {
        for name in properties.keys() {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    let nested = ["allOf", "anyOf", "oneOf"]
        .iter()
        .filter_map(|key| schema.get(key).and_then(Json::as_array))
        .flatten()
        .chain(
            ["if", "then", "else"]
                .iter()
                .filter_map(|key| schema.get(key)),
        )
        .chain(
            schema
                .get("dependencies")
                .and_then(Json::as_object)
                .into_iter()
                .flat_map(|d| d.values()),
        );
    for subschema in nested {
        declared_names(subschema, out);
    }
}

/// `values.port: is not of a type(s) integer (got "abc")`.
fn describe(error: &ParameterError) -> String {
    let field = error.property.replacen("instance", "values", 1);
    match error.name.as_str() {
        "required" => {
            let name = error.argument.as_str().unwrap_or_default();
            format!("{field}.{name}: is required")
        }
        _ => format!("{field}: {} (got {})", error.message, error.instance),
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Template {
        Template::from_yaml(
            r#"
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: { name: t }
spec:
  type: service
  parameters:
    - title: Service
      required: [name, port]
      properties:
        name: { type: string }
        port: { type: integer }
        version: { type: string }
        options:
          type: object
          properties:
            tag: { type: string }
    - title: Extras
      properties:
        docker: { type: boolean }
  steps: []
"#,
            None,
        )
        .unwrap()
    }

    #[test]
    fn sets_are_typed_by_the_schema_then_as_yaml() {
        let values = read_values(
            None,
            &[
                "name=123".into(),
                "port=9000".into(),
                "version=1.10".into(),
                "docker=true".into(),
                "options.tag=007".into(),
                "tags=[a, b]".into(),
                "free=hello world".into(),
            ],
            &template(),
        )
        .unwrap();
        assert_eq!(
            values,
            json!({
                "name": "123", "port": 9000, "version": "1.10", "docker": true,
                "options": { "tag": "007" }, "tags": ["a", "b"], "free": "hello world"
            })
        );
    }

    #[test]
    fn sets_override_the_values_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, "name: billing\nport: 1\n").unwrap();
        let values = read_values(Some(&file), &["port=2".into()], &template()).unwrap();
        assert_eq!(values, json!({ "name": "billing", "port": 2 }));
    }

    #[test]
    fn malformed_sets_and_files_say_what_to_write() {
        let err = read_values(None, &["name".into()], &template()).unwrap_err();
        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
        let err = read_values(None, &["a..b=1".into()], &template()).unwrap_err();
        assert!(err.to_string().contains("nested ones read a.b"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, "- a\n- b\n").unwrap();
        let err = read_values(Some(&file), &[], &template()).unwrap_err();
        assert!(err.to_string().contains("must hold an object"), "{err}");
        std::fs::write(&file, "name: [unclosed\n").unwrap();
        let err = read_values(Some(&file), &[], &template()).unwrap_err();
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn every_page_is_reported_field_by_field() {
        let problems = check(&template(), &json!({ "port": "abc", "docker": "yes" })).problems;
        assert_eq!(
            problems,
            [
                "page 'Service': values.name: is required",
                "page 'Service': values.port: is not of a type(s) integer (got \"abc\")",
                "page 'Extras': values.docker: is not of a type(s) boolean (got \"yes\")",
            ]
        );
    }

    #[test]
    fn undeclared_keys_are_warned_about_with_the_declared_ones() {
        let checked = check(
            &template(),
            &json!({ "name": "a", "port": 1, "nmae": "a", "options": { "tga": "x" } }),
        );
        assert_eq!(
            checked.warnings,
            [
                "no parameter is named 'nmae' (the portal would not send it); the parameters \
              are name, port, version, options, docker"
            ]
        );
        let conditional = Template::from_yaml(
            r#"
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: { name: t }
spec:
  type: service
  parameters:
    - properties:
        kind: { type: string, enum: [lib, app] }
      dependencies:
        kind:
          oneOf:
            - properties: { kind: { const: app }, port: { type: integer } }
  steps: []
"#,
            None,
        )
        .unwrap();
        let checked = check(&conditional, &json!({ "kind": "app", "port": 1 }));
        assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
    }

    #[test]
    fn hidden_pages_are_skipped_and_lose_their_values() {
        let template = Template::from_yaml(
            r#"
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: { name: t }
spec:
  type: service
  parameters:
    - title: Service
      properties:
        docker: { type: boolean }
    - title: Docker
      when: ${{ parameters.docker }}
      required: [image]
      properties:
        image: { type: string }
  steps: []
"#,
            None,
        )
        .unwrap();
        let checked = check(&template, &json!({ "docker": false, "image": 5 }));
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert_eq!(checked.values, json!({ "docker": false }));
        let checked = check(&template, &json!({ "docker": true }));
        assert_eq!(
            checked.problems,
            ["page 'Docker': values.image: is required"]
        );
    }

    #[test]
    fn secrets_come_from_arguments_or_the_environment() {
        // No test sets this variable.
        let name = "SCAFFOLDER_TEST_SECRET_FROM_ENV";
        assert!(parse_secrets(&[name.into()]).is_err());
        let secrets = parse_secrets(&["TOKEN=abc=def".into()]).unwrap();
        assert_eq!(secrets["TOKEN"], "abc=def");
        let err = parse_secrets(&["=x".into()]).unwrap_err();
        assert!(err.to_string().contains("needs a name"), "{err}");
    }
}
