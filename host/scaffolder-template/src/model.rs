//! The `scaffolder.backstage.io/v1beta3` `Template` entity, checked the way Backstage's
//! JSON schema (`Template.v1beta3.schema.json` within the catalog `Entity` envelope)
//! checks it, with errors that name the JSON path and, from YAML, the line.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::error::TemplateError;
use crate::step_references::step_reference_warnings;
use crate::yaml::{self, child_index, child_key};

/// The only template API version Backstage 4.x runs.
pub const API_VERSION: &str = "scaffolder.backstage.io/v1beta3";

/// A parsed, checked template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The entity exactly as written (the dry-run and parameter-schema routes return parts
    /// of it verbatim).
    pub entity: Json,
    pub metadata: Metadata,
    pub spec: TemplateSpec,
    /// What loads and runs but cannot be meant, such as a `steps.<id>` reference to a step
    /// that has not run (`step_references`); with the line when read from YAML.
    pub warnings: Vec<TemplateError>,
}

/// The parts of `metadata` the scaffolder uses; everything is also in `Template::entity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub annotations: Map<String, Json>,
}

/// The parts of `spec` the scaffolder uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    /// Parameter pages; a single object becomes one page, absent becomes none. A page's
    /// `when` (Backstage 4.3.0) is kept in the page; `parameters::check_values` resolves it.
    pub parameters: Vec<Json>,
    pub steps: Vec<Step>,
    pub output: Map<String, Json>,
    /// `spec.secrets.schema`.
    pub secrets_schema: Option<Json>,
    pub presentation: Option<Json>,
    /// `spec.formDecorators`, or the deprecated `EXPERIMENTAL_formDecorators`.
    pub form_decorators: Option<Json>,
    pub recovery: RecoveryStrategy,
}

/// `spec.EXPERIMENTAL_recovery.EXPERIMENTAL_strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecoveryStrategy {
    #[default]
    None,
    StartOver,
}

/// One step, with Backstage's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `step-<n>` (1-based) when the template gives none.
    pub id: String,
    /// The action id when the template gives none.
    pub name: String,
    pub action: String,
    pub input: Map<String, Json>,
    pub condition: Option<Json>,
    pub each: Option<Json>,
    /// The step as written plus the defaulted `id` and `name`: what a task's spec stores.
    pub raw: Map<String, Json>,
}

impl Template {
    /// Parses the first `Template` document of a YAML file. `file` names the source in
    /// errors.
    pub fn from_yaml(source: &str, file: Option<&str>) -> Result<Self, TemplateError> {
        let mut templates = Self::all_from_yaml(source, file)?;
        if templates.is_empty() {
            let err = TemplateError::message("no document with `kind: Template`");
            return Err(match file {
                Some(f) => err.in_file(f),
                None => err,
            });
        }
        templates.remove(0)
    }

    /// Every document of a YAML stream whose `kind` is `Template`, each parsed and
    /// checked on its own. Other documents are ignored.
    pub fn all_from_yaml(
        source: &str,
        file: Option<&str>,
    ) -> Result<Vec<Result<Self, TemplateError>>, TemplateError> {
        let name = |err: TemplateError| match file {
            Some(f) => err.in_file(f),
            None => err,
        };
        let documents = yaml::parse_documents(source).map_err(|err| {
            name(TemplateError {
                file: None,
                position: Some(err.position),
                path: None,
                message: format!("invalid YAML: {}", err.message),
            })
        })?;
        Ok(documents
            .into_iter()
            .filter(|doc| doc.value.get("kind").and_then(Json::as_str) == Some("Template"))
            .map(|doc| Self::from_document(&doc, file))
            .collect())
    }

    /// One YAML document checked as a template, its error or warnings located at their
    /// line (and named by `file`).
    pub fn from_document(doc: &yaml::Document, file: Option<&str>) -> Result<Self, TemplateError> {
        let locate = |mut err: TemplateError| {
            err.position = err.path.as_deref().and_then(|p| doc.position(p));
            match file {
                Some(f) => err.in_file(f),
                None => err,
            }
        };
        let mut template = Self::from_json(doc.value.clone()).map_err(locate)?;
        template.warnings = template.warnings.into_iter().map(locate).collect();
        Ok(template)
    }

    /// Checks a template entity given as JSON (the dry-run route receives one).
    pub fn from_json(entity: Json) -> Result<Self, TemplateError> {
        let root = entity
            .as_object()
            .ok_or_else(|| TemplateError::message("a template must be an object"))?;
        let api_version = required_str(root, "", "apiVersion")?;
        if api_version != API_VERSION {
            return Err(TemplateError::at(
                "apiVersion",
                format!("Unsupported apiVersion field in schema entity, {api_version}"),
            ));
        }
        let kind = required_str(root, "", "kind")?;
        if kind != "Template" {
            return Err(TemplateError::at(
                "kind",
                format!("expected Template, found {kind}"),
            ));
        }
        let metadata = parse_metadata(root)?;
        let spec = parse_spec(root)?;
        let steps: Vec<Map<String, Json>> = spec.steps.iter().map(|s| s.raw.clone()).collect();
        let warnings = step_reference_warnings(&steps, &spec.output);
        Ok(Self {
            entity,
            metadata,
            spec,
            warnings,
        })
    }

    /// `template:<namespace>/<name>`.
    pub fn entity_ref(&self) -> String {
        format!(
            "template:{}/{}",
            self.metadata.namespace, self.metadata.name
        )
    }

    /// Where relative `url`s resolve (Backstage's `templateInfo.baseUrl`): the
    /// `backstage.io/source-location` annotation, else `backstage.io/managed-by-location`,
    /// read as a location ref (`url:<target>` → target, `file:<path>` → `file://<path>`).
    pub fn base_url(&self) -> Option<String> {
        let annotation = |key: &str| self.metadata.annotations.get(key).and_then(Json::as_str);
        let location = annotation("backstage.io/source-location")
            .or_else(|| annotation("backstage.io/managed-by-location"))?;
        let (kind, target) = location.split_once(':')?;
        match kind {
            "url" => Some(target.to_owned()),
            "file" => Some(format!("file://{target}")),
            _ => None,
        }
    }
}

fn parse_metadata(root: &Map<String, Json>) -> Result<Metadata, TemplateError> {
    let metadata = required_object(root, "", "metadata")?;
    let name = required_str(metadata, "metadata", "name")?;
    check_entity_name("metadata.name", name)?;
    let namespace = optional_str(metadata, "metadata", "namespace")?.unwrap_or("default");
    check_entity_name("metadata.namespace", namespace)?;
    if let Some(tags) = metadata.get("tags") {
        let items = tags
            .as_array()
            .ok_or_else(|| TemplateError::at("metadata.tags", "must be an array of strings"))?;
        for (i, tag) in items.iter().enumerate() {
            if !tag.is_string() {
                return Err(TemplateError::at(
                    child_index("metadata.tags", i),
                    "must be a string",
                ));
            }
        }
    }
    let annotations = match metadata.get("annotations") {
        None => Map::new(),
        Some(Json::Object(map)) => {
            for (key, value) in map {
                if !value.is_string() {
                    return Err(TemplateError::at(
                        child_key("metadata.annotations", key),
                        "must be a string",
                    ));
                }
            }
            map.clone()
        }
        Some(_) => {
            return Err(TemplateError::at(
                "metadata.annotations",
                "must be an object",
            ));
        }
    };
    Ok(Metadata {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        title: optional_str(metadata, "metadata", "title")?.map(str::to_owned),
        description: optional_str(metadata, "metadata", "description")?.map(str::to_owned),
        annotations,
    })
}

fn parse_spec(root: &Map<String, Json>) -> Result<TemplateSpec, TemplateError> {
    let spec = required_object(root, "", "spec")?;
    let kind = required_str(spec, "spec", "type")?;
    if kind.is_empty() {
        return Err(TemplateError::at("spec.type", "must not be empty"));
    }
    if let Some(owner) = optional_str(spec, "spec", "owner")?
        && owner.is_empty()
    {
        return Err(TemplateError::at("spec.owner", "must not be empty"));
    }
    optional_str(spec, "spec", "lifecycle")?;

    let parameters = match spec.get("parameters") {
        None | Some(Json::Null) => Vec::new(),
        Some(page @ Json::Object(_)) => vec![page.clone()],
        Some(Json::Array(pages)) => {
            for (i, page) in pages.iter().enumerate() {
                if !page.is_object() {
                    return Err(TemplateError::at(
                        child_index("spec.parameters", i),
                        "each parameter page must be an object (a JSON Schema)",
                    ));
                }
                // Backstage 4.3.0's Template schema (scaffolder-common 2.4.0) types a page's
                // `when` as string or boolean on the array form only; a single page may
                // carry anything there, and only a string or a boolean is a condition.
                if let Some(when) = page.get("when")
                    && !(when.is_string() || when.is_boolean())
                {
                    return Err(TemplateError::at(
                        child_key(&child_index("spec.parameters", i), "when"),
                        "must be a condition string, such as `${{ parameters.cloud === 'AWS' }}`, or a boolean; the page is shown when it is true",
                    ));
                }
            }
            pages.clone()
        }
        Some(_) => {
            return Err(TemplateError::at(
                "spec.parameters",
                "must be an object or an array of objects",
            ));
        }
    };

    let steps_value = spec
        .get("steps")
        .ok_or_else(|| TemplateError::at("spec.steps", "required"))?;
    let steps = steps_value
        .as_array()
        .ok_or_else(|| TemplateError::at("spec.steps", "must be an array"))?
        .iter()
        .enumerate()
        .map(|(i, step)| parse_step(i, step))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        if !seen.insert(step.id.as_str()) {
            return Err(TemplateError::at(
                format!("spec.steps[{i}].id"),
                format!("duplicate step id '{}'", step.id),
            ));
        }
    }

    let output = match spec.get("output") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(map)) => {
            check_output(map)?;
            map.clone()
        }
        Some(_) => return Err(TemplateError::at("spec.output", "must be an object")),
    };

    let secrets_schema = match spec.get("secrets") {
        None => None,
        Some(Json::Object(secrets)) => match secrets.get("schema") {
            None => None,
            Some(schema @ Json::Object(_)) => Some(schema.clone()),
            Some(_) => {
                return Err(TemplateError::at(
                    "spec.secrets.schema",
                    "must be an object",
                ));
            }
        },
        Some(_) => return Err(TemplateError::at("spec.secrets", "must be an object")),
    };

    let presentation =
        optional_object(spec, "spec", "presentation")?.map(|m| Json::Object(m.clone()));
    let form_decorators = match spec
        .get("formDecorators")
        .or_else(|| spec.get("EXPERIMENTAL_formDecorators"))
    {
        None => None,
        Some(value @ Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if item.get("id").and_then(Json::as_str).is_none() {
                    return Err(TemplateError::at(
                        child_index("spec.formDecorators", i),
                        "a form decorator needs a string `id`",
                    ));
                }
            }
            Some(value.clone())
        }
        Some(_) => return Err(TemplateError::at("spec.formDecorators", "must be an array")),
    };
    let recovery = match optional_object(spec, "spec", "EXPERIMENTAL_recovery")? {
        None => RecoveryStrategy::None,
        Some(recovery) => match recovery.get("EXPERIMENTAL_strategy").map(|v| v.as_str()) {
            None | Some(Some("none")) => RecoveryStrategy::None,
            Some(Some("startOver")) => RecoveryStrategy::StartOver,
            Some(_) => {
                return Err(TemplateError::at(
                    "spec.EXPERIMENTAL_recovery.EXPERIMENTAL_strategy",
                    "must be 'none' or 'startOver'",
                ));
            }
        },
    };

    Ok(TemplateSpec {
        parameters,
        steps,
        output,
        secrets_schema,
        presentation,
        form_decorators,
        recovery,
    })
}

fn parse_step(index: usize, value: &Json) -> Result<Step, TemplateError> {
    let path = child_index("spec.steps", index);
    let step = value
        .as_object()
        .ok_or_else(|| TemplateError::at(&path, "each step must be an object"))?;
    let action = required_str(step, &path, "action")?;
    if action.is_empty() {
        return Err(TemplateError::at(
            child_key(&path, "action"),
            "must not be empty",
        ));
    }
    let id = optional_str(step, &path, "id")?
        .map(str::to_owned)
        .unwrap_or_else(|| format!("step-{}", index + 1));
    let name = optional_str(step, &path, "name")?
        .map(str::to_owned)
        .unwrap_or_else(|| action.to_owned());
    let input = optional_object(step, &path, "input")?
        .cloned()
        .unwrap_or_default();
    let condition = match step.get("if") {
        None => None,
        Some(v @ (Json::String(_) | Json::Bool(_))) => Some(v.clone()),
        Some(_) => {
            return Err(TemplateError::at(
                child_key(&path, "if"),
                "must be a string or a boolean",
            ));
        }
    };
    let each = match step.get("each") {
        None => None,
        Some(v @ (Json::String(_) | Json::Array(_))) => Some(v.clone()),
        Some(_) => {
            return Err(TemplateError::at(
                child_key(&path, "each"),
                "must be a string or an array",
            ));
        }
    };
    let mut raw = step.clone();
    raw.insert("id".into(), Json::String(id.clone()));
    raw.insert("name".into(), Json::String(name.clone()));
    Ok(Step {
        id,
        name,
        action: action.to_owned(),
        input,
        condition,
        each,
        raw,
    })
}

fn check_output(output: &Map<String, Json>) -> Result<(), TemplateError> {
    for (key, value) in output {
        let path = child_key("spec.output", key);
        match key.as_str() {
            "links" | "text" => {
                let items = value
                    .as_array()
                    .ok_or_else(|| TemplateError::at(&path, "must be an array"))?;
                for (i, item) in items.iter().enumerate() {
                    if !item.is_object() {
                        return Err(TemplateError::at(
                            child_index(&path, i),
                            "must be an object",
                        ));
                    }
                }
            }
            _ if value.is_string() => {}
            _ => return Err(TemplateError::at(path, "must be a string")),
        }
    }
    Ok(())
}

/// Backstage's entity name rule: 1 to 63 characters of `[a-zA-Z0-9]` separated by
/// single `-`, `_` or `.`.
fn check_entity_name(path: &str, name: &str) -> Result<(), TemplateError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .split(['-', '_', '.'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(TemplateError::at(
            path,
            format!(
                "'{name}' is not a valid name: use 1 to 63 letters and digits, separated by single '-', '_' or '.'"
            ),
        ))
    }
}

fn required_str<'a>(
    obj: &'a Map<String, Json>,
    parent: &str,
    key: &str,
) -> Result<&'a str, TemplateError> {
    match obj.get(key) {
        None => Err(TemplateError::at(child_key(parent, key), "required")),
        Some(Json::String(s)) => Ok(s),
        Some(_) => Err(TemplateError::at(
            child_key(parent, key),
            "must be a string",
        )),
    }
}

fn optional_str<'a>(
    obj: &'a Map<String, Json>,
    parent: &str,
    key: &str,
) -> Result<Option<&'a str>, TemplateError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(TemplateError::at(
            child_key(parent, key),
            "must be a string",
        )),
    }
}

fn required_object<'a>(
    obj: &'a Map<String, Json>,
    parent: &str,
    key: &str,
) -> Result<&'a Map<String, Json>, TemplateError> {
    optional_object(obj, parent, key)?
        .ok_or_else(|| TemplateError::at(child_key(parent, key), "required"))
}

fn optional_object<'a>(
    obj: &'a Map<String, Json>,
    parent: &str,
    key: &str,
) -> Result<Option<&'a Map<String, Json>>, TemplateError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Json::Object(m)) => Ok(Some(m)),
        Some(_) => Err(TemplateError::at(
            child_key(parent, key),
            "must be an object",
        )),
    }
}
