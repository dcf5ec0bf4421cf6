//! A task's spec built from a template (`TaskSpec` itself is the store's: the JSON stored
//! with a task, spec §2.2).

use scaffolder_store::{TaskSpec, TaskTemplateInfo, TaskUser};
use scaffolder_template::{API_VERSION, Template};
use serde_json::Value as Json;

/// The spec of a task created from `template` with `values`. `base_url` is where the
/// template was read from (`templateInfo.baseUrl`): its file, its catalog location, or
/// the uploaded content of a dry run.
pub fn task_spec(
    template: &Template,
    values: Json,
    user: Option<TaskUser>,
    base_url: Option<String>,
) -> TaskSpec {
    let recovery = template
        .entity
        .pointer("/spec/EXPERIMENTAL_recovery")
        .cloned();
    TaskSpec {
        api_version: API_VERSION.to_owned(),
        steps: template.spec.steps.iter().map(|s| s.raw.clone()).collect(),
        output: template.spec.output.clone(),
        parameters: values,
        user,
        template_info: Some(TaskTemplateInfo {
            entity_ref: template.entity_ref(),
            base_url,
            entity: Some(serde_json::json!({
                "metadata": template.entity.get("metadata").cloned().unwrap_or_default()
            })),
        }),
        recovery,
    }
}
