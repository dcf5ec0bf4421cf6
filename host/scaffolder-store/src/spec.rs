//! `TaskSpec`, the JSON stored with a task (spec §2.2), read once where a task row is read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// What a task runs: the template's steps and output, the submitted values and who asked.
/// Serialises exactly as Backstage stores and returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Steps as written in the template plus their defaulted `id` and `name`.
    pub steps: Vec<Map<String, Json>>,
    #[serde(default)]
    pub output: Map<String, Json>,
    /// The submitted values, unmodified.
    #[serde(default)]
    pub parameters: Json,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<TaskUser>,
    #[serde(
        rename = "templateInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub template_info: Option<TaskTemplateInfo>,
    #[serde(
        rename = "EXPERIMENTAL_recovery",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub recovery: Option<Json>,
}

/// `spec.user`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<Json>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub user_ref: Option<String>,
}

/// `spec.templateInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskTemplateInfo {
    pub entity_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// `{ metadata }` of the template entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<Json>,
}

/// One step of a stored spec, read for running.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecStep {
    pub id: String,
    pub name: String,
    pub action: String,
    pub input: Json,
    pub condition: Option<Json>,
    pub each: Option<Json>,
}

impl TaskSpec {
    /// `EXPERIMENTAL_recovery.EXPERIMENTAL_strategy`, `none` when unset.
    pub fn recover_strategy(&self) -> &str {
        self.recovery
            .as_ref()
            .and_then(|recovery| recovery.get("EXPERIMENTAL_strategy"))
            .and_then(Json::as_str)
            .unwrap_or("none")
    }

    /// The steps, with Backstage's defaults for anything a stored spec lacks.
    pub fn steps(&self) -> Vec<SpecStep> {
        self.steps
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let action = raw
                    .get("action")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned();
                SpecStep {
                    id: raw
                        .get("id")
                        .and_then(Json::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("step-{}", index + 1)),
                    name: raw
                        .get("name")
                        .and_then(Json::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| action.clone()),
                    action,
                    input: raw
                        .get("input")
                        .cloned()
                        .unwrap_or(Json::Object(Map::new())),
                    condition: raw.get("if").cloned(),
                    each: raw.get("each").cloned(),
                }
            })
            .collect()
    }

    /// Where the template's files are on this machine, when its base URL is a `file://`
    /// URL: the directory of the template file.
    pub fn template_directory(&self) -> Option<std::path::PathBuf> {
        let base = self.template_info.as_ref()?.base_url.as_deref()?;
        let path = std::path::Path::new(base.strip_prefix("file://")?);
        let dir = if path.extension().is_some() {
            path.parent()?
        } else {
            path
        };
        Some(dir.to_path_buf())
    }
}
