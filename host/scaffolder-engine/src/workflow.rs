//! The workflow runner: a task's steps in order with `if`, `each`, `always()` and
//! `failure()`, each step's input rendered and validated, then run in the Wasm runtime;
//! the events Backstage's `NunjucksWorkflowRunner` writes, in its order (spec §2.3, §3.6,
//! §5). Tasks and dry runs share it; they differ in their [`Journal`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use scaffolder_runtime::{StepContext, StepFailureKind, StepRequest, TemplateInfo};
use scaffolder_template::{ParameterError, Renderer, TemplateContext, validate_input};
use serde_json::{Map, Value as Json, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actions::{ActionRegistry, RegisteredAction};
use crate::events::{Journal, log_body};
use crate::failure::Failure;
use crate::redact::Redactor;
use crate::spec::{SpecStep, TaskSpec};
use crate::step_log::{ActionHost, LogLines, StepLog};

/// `scaffolder.defaultEnvironment`.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub parameters: Map<String, Json>,
    pub secrets: Map<String, Json>,
}

impl Environment {
    /// What an action may read with `host.get-secret` (each only when granted to its
    /// plugin): the run's `secrets`, and the operator's secrets under names the run does
    /// not use, so the operator can hand a plugin credentials (an admin connection, a git
    /// token) that templates and callers never see.
    pub(crate) fn secrets_for_step(
        &self,
        mut secrets: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        for (name, value) in &self.secrets {
            if let Some(value) = value.as_str() {
                secrets
                    .entry(name.clone())
                    .or_insert_with(|| value.to_owned());
            }
        }
        secrets
    }
}

/// One run of a task's steps.
pub(crate) struct Run {
    pub task_id: String,
    pub spec: TaskSpec,
    pub dry_run: bool,
    /// Steps counted in "Starting up task with N steps" beyond the spec's (the dry-run
    /// extract step).
    pub extra_steps: usize,
    pub workspace: PathBuf,
    pub template_directory: Option<PathBuf>,
    pub cancel: CancellationToken,
    pub journal: Arc<dyn Journal>,
    pub actions: Arc<ActionRegistry>,
    pub renderer: Arc<Renderer>,
    pub environment: Environment,
    pub secrets: Map<String, Json>,
    /// `state.steps` saved by an earlier run of this task.
    pub saved_steps: Map<String, Json>,
}

/// One run of a step's action: the `each` item (key and value), if any, and the
/// rendered, validated input.
type Iteration = (Option<(String, Json)>, Json);

/// How a step that did not fail ended.
enum StepEnd {
    Completed(Json),
    Skipped(String),
    /// Dry run of an action without dry-run support: not run, example output.
    DryRunSkipped(Json),
}

impl Run {
    /// Runs every step and renders `spec.output`. The error is the first step failure,
    /// redacted.
    pub async fn execute(self) -> Result<Json, Failure> {
        let steps = self.spec.steps();
        let redactor = Arc::new(Redactor::new(
            self.secrets
                .values()
                .chain(self.environment.secrets.values())
                .filter_map(Json::as_str),
        ));
        let secrets: BTreeMap<String, String> = self
            .secrets
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        let secrets = Arc::new(Mutex::new(secrets));

        self.task_log(format!(
            "Starting up task with {} steps",
            steps.len() + self.extra_steps
        ))
        .await;
        let already_completed = steps
            .iter()
            .filter(|s| self.saved_output(&s.id).is_some())
            .count();
        if already_completed > 0 {
            self.task_log(format!("Task recovered - resuming from last known good state. {already_completed} step(s) already completed.")).await;
        }

        let mut context = TemplateContext {
            parameters: self.spec.parameters.clone(),
            user_ref: self.spec.user.as_ref().and_then(|u| u.user_ref.clone()),
            user_entity: self.spec.user.as_ref().and_then(|u| u.entity.clone()),
            task_id: self.task_id.clone(),
            environment_parameters: self.environment.parameters.clone(),
            environment_secrets: self.environment.secrets.clone(),
            ..TemplateContext::default()
        };
        let mut first_failure: Option<Failure> = None;
        for step in &steps {
            if let Some(output) = self.saved_output(&step.id) {
                context.set_output(&step.id, output);
                self.step_status(
                    step,
                    format!(
                        "Skipping step {} because it was already completed in a previous run",
                        step.id
                    ),
                    "completed",
                )
                .await;
                continue;
            }
            context.secrets = secrets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let span = tracing::info_span!("step", step_id = %step.id, action = %step.action);
            let result = self
                .run_step(
                    step,
                    &mut context,
                    first_failure.is_some(),
                    &redactor,
                    &secrets,
                )
                .instrument(span)
                .await;
            if let Err(failure) = result {
                let failure = Failure {
                    name: redactor.redact(&failure.name),
                    message: redactor.redact(&failure.message),
                };
                let message = match first_failure {
                    None => failure.to_string(),
                    Some(_) => format!("Additional error occurred: {}\n{failure}", failure.message),
                };
                self.step_status(step, message, "failed").await;
                first_failure.get_or_insert(failure);
            }
        }
        if let Some(failure) = first_failure {
            return Err(failure);
        }
        let mut warnings = Vec::new();
        let output = render_output(
            &self.renderer,
            &self.spec.output,
            &context.without_secrets(),
            &mut warnings,
        );
        for warning in warnings {
            tracing::warn!(task_id = %self.task_id, "spec.output: {warning}");
        }
        Ok(redactor.redact_json(&output))
    }

    /// Records a task-level log event: `{ message }`.
    async fn task_log(&self, message: String) {
        self.journal.log(log_body(message, None, None)).await;
    }

    /// Records a step status event: `{ message, stepId, status }`.
    async fn step_status(&self, step: &SpecStep, message: String, status: &str) {
        self.journal
            .log(log_body(message, Some(&step.id), Some(status)))
            .await;
    }

    /// The task's secrets as they are now, with the operator's (see
    /// [`Environment::secrets_for_step`]).
    fn step_secrets(&self, secrets: &Mutex<BTreeMap<String, String>>) -> BTreeMap<String, String> {
        let task = secrets.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.environment.secrets_for_step(task)
    }

    fn saved_output(&self, step_id: &str) -> Option<Json> {
        let saved = self.saved_steps.get(step_id)?;
        (saved.get("status").and_then(Json::as_str) == Some("completed"))
            .then(|| saved.get("output").cloned().unwrap_or_else(|| json!({})))
    }

    async fn run_step(
        &self,
        step: &SpecStep,
        context: &mut TemplateContext,
        failed_before: bool,
        redactor: &Arc<Redactor>,
        secrets: &Arc<Mutex<BTreeMap<String, String>>>,
    ) -> Result<(), Failure> {
        if failed_before {
            let mut warnings = Vec::new();
            let proceeds = match &step.condition {
                Some(condition @ Json::String(_)) => {
                    self.renderer
                        .render_condition(
                            condition,
                            &context.without_secrets(),
                            true,
                            &mut warnings,
                        )
                        .uses_status_function
                }
                _ => false,
            };
            if !proceeds {
                self.step_status(
                    step,
                    format!("Skipping step {} because a previous step failed", step.id),
                    "skipped",
                )
                .await;
                return Ok(());
            }
        }
        let mut beginning = log_body(
            format!("Beginning step {}", step.name),
            Some(&step.id),
            Some("processing"),
        );
        // Which build runs the step: plugins can be replaced while tasks run, and a task
        // keeps the ones it started with. (Not in dry runs, whose log matches Backstage's.)
        if !self.dry_run
            && let Some(action) = self.actions.get(&step.action)
        {
            beginning["plugin"] = json!({
                "name": action.plugin.name(),
                "digest": action.plugin.digest(),
            });
        }
        self.journal.log(beginning).await;

        let log = StepLog::open(self.journal.clone(), &step.id, redactor.clone());
        let result = self
            .step_body(step, context, failed_before, log.lines(), redactor, secrets)
            .await;
        log.finish().await;

        match result? {
            StepEnd::Completed(output) => {
                // Later steps of this run see the output as the action returned it;
                // what is recorded has secret values hidden.
                if !self.dry_run {
                    self.journal
                        .step_completed(&step.id, &redactor.redact_json(&output))
                        .await
                        .map_err(Failure::error)?;
                }
                context.set_output(&step.id, output);
                self.step_status(step, format!("Finished step {}", step.name), "completed")
                    .await;
            }
            StepEnd::Skipped(message) => {
                self.step_status(step, message, "skipped").await;
            }
            StepEnd::DryRunSkipped(output) => {
                context.set_output(&step.id, output);
                self.step_status(
                    step,
                    format!("Skipping because {} does not support dry-run", step.action),
                    "skipped",
                )
                .await;
            }
        }
        Ok(())
    }

    async fn step_body(
        &self,
        step: &SpecStep,
        context: &mut TemplateContext,
        failed_before: bool,
        log: &LogLines,
        redactor: &Arc<Redactor>,
        secrets: &Arc<Mutex<BTreeMap<String, String>>>,
    ) -> Result<StepEnd, Failure> {
        self.check_cancelled(step)?;
        let mut warnings = Vec::new();
        match &step.condition {
            Some(Json::Bool(false)) => return Ok(skipped_by_condition(step)),
            Some(condition @ Json::String(_)) if step.each.is_none() => {
                let holds = self
                    .renderer
                    .render_condition(
                        condition,
                        &context.without_secrets(),
                        failed_before,
                        &mut warnings,
                    )
                    .holds;
                flush_warnings(log, &mut warnings);
                if !holds {
                    return Ok(skipped_by_condition(step));
                }
            }
            _ => {}
        }
        let Some(action) = self.actions.get(&step.action) else {
            return Err(Failure::not_found(format!(
                "Template action with ID '{}' is not registered. See https://backstage.io/docs/features/software-templates/builtin-actions/ on how to add a new action module.",
                step.action
            )));
        };

        if self.dry_run {
            let input = self
                .renderer
                .render_value(&step.input, &context.with_secrets(), &mut warnings)
                .unwrap_or_else(|| json!({}));
            flush_warnings(log, &mut warnings);
            let pretty = serde_json::to_string_pretty(&input).unwrap_or_default();
            log.info(&format!(
                "Running {} in dry-run mode with inputs (secrets redacted): {pretty}",
                step.action
            ));
            if !action.info.supports_dry_run {
                let example = action
                    .info
                    .output_schema
                    .as_ref()
                    .map(example_of_schema)
                    .unwrap_or_else(|| json!({}));
                return Ok(StepEnd::DryRunSkipped(example));
            }
        }

        let iterations =
            self.prepare_iterations(step, action, context, failed_before, log, redactor)?;
        let mut output = Map::new();
        for (item, input) in iterations {
            if let Some(item) = &item {
                log.info(&format!("Running step each: {}", describe_each(item)));
            }
            let request = StepRequest {
                action_id: step.action.clone(),
                input,
                context: self.step_context(step),
                workspace: self.workspace.clone(),
                template_directory: self.template_directory.clone(),
                secrets: self.step_secrets(secrets),
                cancel: self.cancel.clone(),
            };
            let host = Arc::new(ActionHost {
                log: log.clone(),
                redactor: redactor.clone(),
                journal: self.journal.clone(),
                step_id: step.id.clone(),
                secrets: secrets.clone(),
            });
            let result = action.plugin.execute(request, host).await;
            let produced = match result {
                Ok(produced) => produced,
                Err(failure)
                    if failure.kind == StepFailureKind::Cancelled || self.cancel.is_cancelled() =>
                {
                    return Err(self.cancelled(step));
                }
                Err(failure) => return Err(failure.into()),
            };
            merge_output(&mut output, produced, item.is_some());
        }
        self.check_cancelled(step)?;
        Ok(StepEnd::Completed(Json::Object(output)))
    }

    /// Renders `each` and, per item, `if` and the input; validates every input before
    /// any runs. Items whose `if` is false are left out.
    fn prepare_iterations(
        &self,
        step: &SpecStep,
        action: &RegisteredAction,
        context: &mut TemplateContext,
        failed_before: bool,
        log: &LogLines,
        redactor: &Redactor,
    ) -> Result<Vec<Iteration>, Failure> {
        let mut warnings = Vec::new();
        let items: Vec<Option<(String, Json)>> = match &step.each {
            None => vec![None],
            Some(each) => {
                let rendered =
                    self.renderer
                        .render_value(each, &context.with_secrets(), &mut warnings);
                flush_warnings(log, &mut warnings);
                let each_text = match each {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match rendered {
                    None | Some(Json::Null) => {
                        return Err(Failure::input(format!(
                            "Invalid value on action {}.each parameter, \"{each_text}\" cannot be resolved to a value",
                            step.action
                        )));
                    }
                    Some(Json::Array(items)) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| Some((i.to_string(), v)))
                        .collect(),
                    Some(Json::Object(map)) => map.into_iter().map(Some).collect(),
                    Some(_) => {
                        return Err(Failure::input(format!(
                            "Invalid value on action {}.each parameter, \"{each_text}\" must resolve to an array or object",
                            step.action
                        )));
                    }
                }
            }
        };

        let mut prepared = Vec::with_capacity(items.len());
        for item in items {
            context.each = item.clone();
            if let (Some(each), Some(condition @ Json::String(_))) = (&item, &step.condition) {
                let holds = self
                    .renderer
                    .render_condition(
                        condition,
                        &context.without_secrets(),
                        failed_before,
                        &mut warnings,
                    )
                    .holds;
                flush_warnings(log, &mut warnings);
                if !holds {
                    log.info(&format!("Skipping step each: {}", describe_each(each)));
                    continue;
                }
            }
            let input = self
                .renderer
                .render_value(&step.input, &context.with_secrets(), &mut warnings)
                .unwrap_or_else(|| json!({}));
            flush_warnings(log, &mut warnings);
            hide_values_derived_from_secrets(&step.input, &input, redactor);
            if let Err(errors) = validate_input(&action.info.input_schema, &input) {
                context.each = None;
                let key = item
                    .as_ref()
                    .map(|(key, _)| format!("[{key}]"))
                    .unwrap_or_default();
                return Err(Failure::input(format!(
                    "Invalid input passed to action {}{key}, {}",
                    step.action,
                    describe_errors(&errors)
                )));
            }
            prepared.push((item, input));
        }
        context.each = None;
        Ok(prepared)
    }

    fn step_context(&self, step: &SpecStep) -> StepContext {
        StepContext {
            task_id: self.task_id.clone(),
            step_id: step.id.clone(),
            step_name: step.name.clone(),
            dry_run: self.dry_run,
            user_ref: self.spec.user.as_ref().and_then(|u| u.user_ref.clone()),
            user_entity: self.spec.user.as_ref().and_then(|u| u.entity.clone()),
            template: self.spec.template_info.as_ref().map(|info| TemplateInfo {
                entity_ref: info.entity_ref.clone(),
                base_url: info.base_url.clone(),
                metadata: info
                    .entity
                    .as_ref()
                    .and_then(|e| e.get("metadata"))
                    .cloned(),
            }),
        }
    }

    fn check_cancelled(&self, step: &SpecStep) -> Result<(), Failure> {
        if self.cancel.is_cancelled() {
            return Err(self.cancelled(step));
        }
        Ok(())
    }

    fn cancelled(&self, step: &SpecStep) -> Failure {
        Failure::error(format!(
            "Step {} ({}) of task {} has been cancelled.",
            step.id, step.name, self.task_id
        ))
    }
}

fn skipped_by_condition(step: &SpecStep) -> StepEnd {
    StepEnd::Skipped(format!(
        "Skipping step {} because its if condition was false",
        step.id
    ))
}

fn flush_warnings(log: &LogLines, warnings: &mut Vec<String>) {
    for warning in warnings.drain(..) {
        log.warn(&warning);
    }
}

/// A step's output: the action's object, or under `each` each key's values collected in
/// an array, one item per iteration (Backstage's `ctx.output` appends).
fn merge_output(output: &mut Map<String, Json>, produced: Json, each: bool) {
    let Json::Object(produced) = produced else {
        return;
    };
    for (key, value) in produced {
        if each {
            match output.entry(key).or_insert_with(|| json!([])) {
                Json::Array(items) => items.push(value),
                other => *other = json!([value]),
            }
        } else {
            output.insert(key, value);
        }
    }
}

/// Backstage logs `JSON.stringify(each, (k, v) => k ? v.toString() : v)`: the key and the
/// value as JavaScript strings.
fn describe_each((key, value): &(String, Json)) -> String {
    json!({ "key": key, "value": js_to_string(value) }).to_string()
}

fn js_to_string(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Object(_) => "[object Object]".to_owned(),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::Null => String::new(),
                other => js_to_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// jsonschema's `errors.join(', ')`: `<property> <message>` each.
pub(crate) fn describe_errors(errors: &[ParameterError]) -> String {
    errors
        .iter()
        .map(|e| e.stack.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A rendered string whose template mentions `secrets` is derived from a secret: hide
/// it too (Backstage's "values derived from them during rendering").
fn hide_values_derived_from_secrets(template: &Json, rendered: &Json, redactor: &Redactor) {
    match (template, rendered) {
        (Json::String(source), Json::String(value)) if source.contains("secrets") => {
            redactor.add(value);
        }
        (Json::Object(t), Json::Object(r)) => {
            for (key, t) in t {
                if let Some(r) = r.get(key) {
                    hide_values_derived_from_secrets(t, r, redactor);
                }
            }
        }
        (Json::Array(t), Json::Array(r)) => {
            for (t, r) in t.iter().zip(r) {
                hide_values_derived_from_secrets(t, r, redactor);
            }
        }
        _ => {}
    }
}

/// `spec.output` rendered without secrets; in `links` and `text`, items whose `if` is
/// falsy are dropped and the `if` key is removed from the rest.
pub(crate) fn render_output(
    renderer: &Renderer,
    output: &Map<String, Json>,
    context: &Json,
    warnings: &mut Vec<String>,
) -> Json {
    let mut rendered = renderer
        .render_value(&Json::Object(output.clone()), context, warnings)
        .unwrap_or_else(|| json!({}));
    for key in ["links", "text"] {
        if let Some(Json::Array(items)) = rendered.get_mut(key) {
            items.retain_mut(|item| match item.as_object_mut() {
                Some(object) => match object.remove("if") {
                    Some(condition) => scaffolder_template::is_truthy(&condition),
                    None => true,
                },
                None => true,
            });
        }
    }
    rendered
}

/// The example output of an action that a dry run does not run (spec §5.4).
pub(crate) fn example_of_schema(schema: &Json) -> Json {
    if let Some(first) = schema
        .get("examples")
        .and_then(Json::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let kind = schema.get("type").and_then(Json::as_str);
    match kind {
        Some("object") => Json::Object(
            schema
                .get("properties")
                .and_then(Json::as_object)
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), example_of_schema(v)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("array") => match schema.get("items") {
            Some(items) if items.is_object() => json!([example_of_schema(items)]),
            _ => json!([]),
        },
        Some("string") => json!("<example>"),
        Some("number") | Some("integer") => json!(0),
        Some("boolean") => json!(false),
        _ => json!("<unknown>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_outputs_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "remoteUrl": { "type": "string" },
                "count": { "type": "integer" },
                "ok": { "type": "boolean" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "given": { "type": "string", "examples": ["https://x"] },
                "any": {}
            }
        });
        assert_eq!(
            example_of_schema(&schema),
            json!({
                "remoteUrl": "<example>", "count": 0, "ok": false, "tags": ["<example>"],
                "given": "https://x", "any": "<unknown>"
            })
        );
    }

    #[test]
    fn each_outputs_collect_in_arrays() {
        let mut output = Map::new();
        merge_output(&mut output, json!({ "a": 1 }), true);
        merge_output(&mut output, json!({ "a": 2 }), true);
        assert_eq!(Json::Object(output), json!({ "a": [1, 2] }));
    }

    #[test]
    fn each_items_are_described_as_javascript_strings() {
        assert_eq!(
            describe_each(&("0".into(), json!({ "x": 1 }))),
            r#"{"key":"0","value":"[object Object]"}"#
        );
        assert_eq!(
            describe_each(&("k".into(), json!(["a", 1]))),
            r#"{"key":"k","value":"a,1"}"#
        );
    }
}
