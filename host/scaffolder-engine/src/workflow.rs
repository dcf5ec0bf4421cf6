//! The workflow runner: a task's steps in order with `if`, `each`, `always()` and
//! `failure()`, each step's input rendered and validated, then run in the Wasm runtime;
//! the events Backstage's `NunjucksWorkflowRunner` writes, in its order (spec §2.3, §3.6,
//! §5). Tasks and dry runs share it; they differ in their [`Journal`].

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use scaffolder_runtime::{StepContext, StepFailureKind, StepRequest, TemplateInfo, WorkspaceCap};
use scaffolder_template::{
    ParameterError, Renderer, TemplateContext, is_truthy, step_reference_warnings,
};
use serde_json::{Map, Value as Json, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actions::{ActionRegistry, RegisteredAction};
use crate::events::{Journal, log_body};
use crate::failure::Failure;
use crate::input_check::check_step_input;
use crate::redact::Redactor;
use crate::spec::{SpecStep, TaskSpec};
use crate::step_log::{self, ActionHost, LogLines, RunLog};

/// Steps run (dry runs' too), in seconds, by `action`, `plugin_digest` and `outcome`
/// (`completed`, `skipped`, `failed`); `scaffolder serve` exports it on `/metrics`.
pub const STEP_DURATION_METRIC: &str = "scaffolder_step_duration_seconds";

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
    /// Workspace limits tighter than the plugins' (a local run's, which returns its
    /// workspace within `scaffolder.dryRun`'s caps).
    pub workspace_cap: Option<WorkspaceCap>,
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

/// One run of a step's action: the `each` item (key and value), if any, whether its
/// `if` holds, and the rendered input (validated when it runs).
struct Iteration {
    item: Option<(String, Json)>,
    runs: bool,
    input: Json,
}

/// An `each` item: its key (a string, also for arrays) and value.
type EachItem = (String, Json);

/// What a step's `each` resolved to.
enum Each {
    Undefined,
    /// Not an array nor an object (null included).
    Primitive,
    /// `Object.entries` of the value: arrays by string index, holes left out.
    Entries(Vec<(String, Json)>),
}

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
        let (log, writer) = step_log::open(self.journal.clone());
        let run = async {
            let result = self.run(&log).await;
            drop(log);
            result
        };
        // Every event is recorded when the run returns, before its task is completed.
        let (result, ()) = tokio::join!(run, writer.write_all());
        result
    }

    async fn run(&self, log: &RunLog) -> Result<Json, Failure> {
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
        // References that can only render empty (Backstage renders them so, silently):
        // said in the server's log, and on stderr in a local run, whatever the template's
        // source (a directory, the catalog, a dry run's upload).
        for warning in step_reference_warnings(&self.spec.steps, &self.spec.output) {
            tracing::warn!(task_id = %self.task_id, "{warning}");
        }

        log.task(format!(
            "Starting up task with {} steps",
            steps.len() + self.extra_steps
        ));
        let already_completed = steps
            .iter()
            .filter(|s| self.saved_output(&s.id).is_some())
            .count();
        if already_completed > 0 {
            log.task(format!("Task recovered - resuming from last known good state. {already_completed} step(s) already completed."));
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
                log.step_status(
                    &step.id,
                    format!(
                        "Skipping step {} because it was already completed in a previous run",
                        step.id
                    ),
                    "completed",
                );
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
                    log,
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
                log.step_status(&step.id, message, "failed");
                first_failure.get_or_insert(failure);
            }
        }
        if let Some(failure) = first_failure {
            return Err(failure);
        }
        if self.dry_run
            && self.extra_steps > 0
            && let Some(extract_id) = self.task_id.strip_prefix("dry-run-")
        {
            // Backstage's dry run ends with its `dry-run:extract` step, whose id is the
            // run's UUID; `spec.output` sees its (empty) output.
            context.set_output(extract_id, json!({}));
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
        log: &RunLog,
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
                log.step_status(
                    &step.id,
                    format!("Skipping step {} because a previous step failed", step.id),
                    "skipped",
                );
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
        log.record(beginning);
        // The action acts only once its beginning, and the previous step's output saved
        // with it, are recorded, and only while the run holds its task: a replica that
        // stalled and lost the task meanwhile must not act for it.
        log.written().await;
        if !self.journal.confirm_hold().await {
            return Err(Failure::error(
                "this run no longer holds its task (another replica may have taken it over)",
            ));
        }

        // What this step derives from secrets is hidden in its own lines and error only,
        // as Backstage's per-step logger does; the run's secrets everywhere.
        let step_redactor = Arc::new(Redactor::child(redactor.clone()));
        let lines = log.step_lines(&step.id, step_redactor.clone());
        let started = std::time::Instant::now();
        let result = self
            .step_body(
                step,
                context,
                failed_before,
                &lines,
                (redactor, &step_redactor),
                secrets,
            )
            .await;
        self.record_step_duration(step, &result, started.elapsed());

        let end = result.map_err(|failure| Failure {
            name: step_redactor.redact(&failure.name),
            message: step_redactor.redact(&failure.message),
        })?;
        match end {
            StepEnd::Completed(output) => {
                // Later steps of this run see the output as the action returned it;
                // what is recorded has secret values hidden.
                if !self.dry_run {
                    self.journal
                        .step_completed(&step.id, &step_redactor.redact_json(&output))
                        .await
                        .map_err(Failure::error)?;
                    log.save_state();
                }
                context.set_output(&step.id, output);
                log.step_status(
                    &step.id,
                    format!("Finished step {}", step.name),
                    "completed",
                );
            }
            StepEnd::Skipped(message) => {
                log.step_status(&step.id, message, "skipped");
            }
            StepEnd::DryRunSkipped(output) => {
                context.set_output(&step.id, output);
                log.step_status(
                    &step.id,
                    format!("Skipping because {} does not support dry-run", step.action),
                    "skipped",
                );
            }
        }
        Ok(())
    }

    /// Records the step in [`STEP_DURATION_METRIC`] by action, plugin build and outcome.
    fn record_step_duration(
        &self,
        step: &SpecStep,
        result: &Result<StepEnd, Failure>,
        took: std::time::Duration,
    ) {
        let outcome = match result {
            Ok(StepEnd::Completed(_)) => "completed",
            Ok(StepEnd::Skipped(_) | StepEnd::DryRunSkipped(_)) => "skipped",
            Err(_) => "failed",
        };
        // An unknown action has no plugin; its step fails before running.
        let digest = self
            .actions
            .get(&step.action)
            .map(|action| action.plugin.digest().to_owned())
            .unwrap_or_default();
        metrics::histogram!(
            STEP_DURATION_METRIC,
            "action" => step.action.clone(),
            "plugin_digest" => digest,
            "outcome" => outcome,
        )
        .record(took.as_secs_f64());
    }

    async fn step_body(
        &self,
        step: &SpecStep,
        context: &mut TemplateContext,
        failed_before: bool,
        log: &LogLines,
        (redactor, step_redactor): (&Arc<Redactor>, &Arc<Redactor>),
        secrets: &Arc<Mutex<BTreeMap<String, String>>>,
    ) -> Result<StepEnd, Failure> {
        self.check_cancelled(step)?;
        // The step renders a value more than once (a dry run's log line, then the run,
        // once per `each` item): each problem is reported once.
        let mut warnings = RenderWarnings::default();
        match &step.condition {
            Some(Json::Bool(false)) => return Ok(skipped_by_condition(step)),
            Some(condition @ Json::String(_)) if step.each.is_none() => {
                let holds = self
                    .renderer
                    .render_condition(
                        condition,
                        &context.without_secrets(),
                        failed_before,
                        warnings.sink(),
                    )
                    .holds;
                warnings.flush();
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
            // Rendered with every secret's value replaced by `***`, as Backstage does:
            // filters see `***`, never the secret.
            let mut shown = context.clone();
            for value in shown
                .secrets
                .values_mut()
                .chain(shown.environment_secrets.values_mut())
            {
                *value = json!("***");
            }
            let input = self
                .renderer
                .render_value(&step.input, &shown.with_secrets(), warnings.sink())
                .unwrap_or_else(|| json!({}));
            warnings.flush();
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

        let iterations = self.prepare_iterations(
            step,
            action,
            context,
            failed_before,
            step_redactor,
            &mut warnings,
        )?;
        let mut output = Map::new();
        for Iteration { item, runs, input } in iterations {
            if let Some(item) = &item {
                if !runs {
                    log.info(&format!("Skipping step each: {}", describe_each(item)));
                    continue;
                }
                log.info(&format!("Running step each: {}", describe_each(item)));
            }
            let request = StepRequest {
                // The registered id: a step may name it `<plugin id>:<id>`.
                action_id: action.info.id.clone(),
                input,
                context: self.step_context(step),
                workspace: self.workspace.clone(),
                template_directory: self.template_directory.clone(),
                secrets: self.step_secrets(secrets),
                cancel: self.cancel.clone(),
                workspace_cap: self.workspace_cap.clone(),
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

    /// Renders `each` and, per item, `if` and the input, as Backstage: `each` and the
    /// per-item `if` see secrets; what differs from a rendering without secrets is hidden
    /// in the step's lines; the inputs of the items that run are validated before any
    /// runs.
    fn prepare_iterations(
        &self,
        step: &SpecStep,
        action: &RegisteredAction,
        context: &mut TemplateContext,
        failed_before: bool,
        redactor: &Redactor,
        warnings: &mut RenderWarnings,
    ) -> Result<Vec<Iteration>, Failure> {
        let has_secrets = !context.secrets.is_empty() || !context.environment_secrets.is_empty();
        let mut without_secrets = context.clone();
        without_secrets.secrets.clear();
        without_secrets.environment_secrets.clear();

        // Each item with the same item rendered without secrets (`None`: unknown).
        let items: Vec<Option<(EachItem, Option<EachItem>)>> = match &step.each {
            None => vec![None],
            Some(each) => {
                let resolved = render_each(
                    &self.renderer,
                    each,
                    &context.with_secrets(),
                    warnings.sink(),
                );
                warnings.flush();
                let entries = match resolved {
                    Each::Entries(entries) => entries,
                    Each::Undefined => {
                        let each_text = match each {
                            Json::String(s) => s.clone(),
                            other => js_to_string(other),
                        };
                        return Err(Failure::input(format!(
                            "Invalid value on action {}.each parameter, \"{each_text}\" cannot be resolved to a value",
                            step.action
                        )));
                    }
                    Each::Primitive => {
                        return Err(Failure::input(format!(
                            "Invalid value on action {}.each parameter, must resolve to an array or object",
                            step.action
                        )));
                    }
                };
                let mut plain: Vec<Option<(String, Json)>> = vec![None; entries.len()];
                if has_secrets && !entries.is_empty() {
                    let mut ignored = Vec::new();
                    match render_each(
                        &self.renderer,
                        each,
                        &without_secrets.with_secrets(),
                        &mut ignored,
                    ) {
                        Each::Entries(other) => {
                            // Arrays are matched by index, objects by position.
                            let array = each_is_array(&entries);
                            let mut without = Vec::with_capacity(entries.len());
                            for (index, (key, _)) in entries.iter().enumerate() {
                                let found = if array {
                                    other.iter().find(|(k, _)| k == key)
                                } else {
                                    other.get(index)
                                };
                                plain[index] = match (found, array) {
                                    (Some(pair), _) => Some(pair.clone()),
                                    (None, true) => Some((key.clone(), Json::Null)),
                                    (None, false) => None,
                                };
                                without.push(match (found, array) {
                                    (Some((k, v)), _) => json!([k, v]),
                                    (None, true) => json!([key]),
                                    (None, false) => Json::Null,
                                });
                            }
                            let with: Vec<Json> =
                                entries.iter().map(|(k, v)| json!([k, v])).collect();
                            add_secret_redactions(redactor, &json!(with), Some(&json!(without)));
                        }
                        _ => {
                            let mut strings = Vec::new();
                            for (key, value) in &entries {
                                strings.push(key.clone());
                                string_values(value, &mut strings);
                            }
                            strings.iter().for_each(|s| redactor.add(s));
                        }
                    }
                }
                entries
                    .into_iter()
                    .zip(plain)
                    .map(|(item, plain)| Some((item, plain)))
                    .collect()
            }
        };

        let mut prepared = Vec::with_capacity(items.len());
        for entry in items {
            let (item, plain) = match entry {
                Some((item, plain)) => (Some(item), plain),
                None => (None, None),
            };
            context.each = item.clone();
            without_secrets.each = plain.clone();
            if has_secrets && let Some((key, value)) = &item {
                let without = plain.as_ref().map(|(k, v)| json!({ "key": k, "value": v }));
                add_secret_redactions(
                    redactor,
                    &json!({ "key": key, "value": value }),
                    Some(without.as_ref().unwrap_or(&json!({}))),
                );
            }
            // An `if` that is absent or empty lets every item run; `if: false` was
            // handled before `each` was resolved.
            let runs = match (&item, &step.condition) {
                (Some(_), Some(condition)) if is_truthy(condition) => {
                    let holds = self
                        .renderer
                        .render_condition(
                            condition,
                            &context.with_secrets(),
                            failed_before,
                            warnings.sink(),
                        )
                        .holds;
                    warnings.flush();
                    holds
                }
                _ => true,
            };
            let input = self
                .renderer
                .render_value(&step.input, &context.with_secrets(), warnings.sink())
                .unwrap_or_else(|| json!({}));
            warnings.flush();
            if runs {
                if has_secrets {
                    let mut ignored = Vec::new();
                    let plain_input = self.renderer.render_value(
                        &step.input,
                        &without_secrets.with_secrets(),
                        &mut ignored,
                    );
                    add_secret_redactions(redactor, &input, plain_input.as_ref());
                }
                // The check `scaffolder plugin test` makes too; an item's key is named.
                let key = item
                    .as_ref()
                    .map(|(key, _)| format!("[{key}]"))
                    .unwrap_or_default();
                let label = format!("{}{key}", step.action);
                if let Err(message) = check_step_input(&label, &action.info.input_schema, &input) {
                    context.each = None;
                    return Err(Failure::input(message));
                }
            }
            prepared.push(Iteration { item, runs, input });
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

/// A step's rendering problems (an expression kept as written). They go to the server's
/// log only: Backstage keeps such a string silently, so the task's log has no line for
/// it. A step renders its values more than once (a dry run renders the input for its log
/// line and again to run it; `each` renders it per item), so each problem is logged the
/// first time only.
#[derive(Default)]
struct RenderWarnings {
    new: Vec<String>,
    reported: HashSet<String>,
}

impl RenderWarnings {
    /// Where the renderer adds problems; [`Self::flush`] logs them.
    fn sink(&mut self) -> &mut Vec<String> {
        &mut self.new
    }

    fn flush(&mut self) {
        for warning in self.new.drain(..) {
            if !self.reported.contains(&warning) {
                tracing::warn!("{warning}");
                self.reported.insert(warning);
            }
        }
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

/// Backstage's `collectSecretRedactions`: hides every string of a value rendered with
/// secrets that differs from the same place rendered without them (`None`: nothing
/// rendered there). Object entries are paired by key, as Backstage 4.3.0 does (be5074c):
/// 4.2.0 paired them by position, so a key that a secret made disappear shifted the rest
/// and hid key names (the word `token` in every later log line), which never are secrets.
fn add_secret_redactions(redactor: &Redactor, with: &Json, without: Option<&Json>) {
    match with {
        Json::String(text) if without.and_then(Json::as_str) != Some(text.as_str()) => {
            redactor.add(text);
        }
        Json::Array(items) => {
            let other = without.and_then(Json::as_array);
            for (index, item) in items.iter().enumerate() {
                add_secret_redactions(redactor, item, other.and_then(|o| o.get(index)));
            }
        }
        Json::Object(map) => {
            let other = without.and_then(Json::as_object);
            for (key, value) in map {
                add_secret_redactions(redactor, value, other.and_then(|o| o.get(key)));
            }
        }
        _ => {}
    }
}

/// Every string of a value, object keys included (Backstage's `extractStringValues`).
fn string_values(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::String(text) => out.push(text.clone()),
        Json::Array(items) => items.iter().for_each(|item| string_values(item, out)),
        Json::Object(map) => {
            for (key, item) in map {
                out.push(key.clone());
                string_values(item, out);
            }
        }
        _ => {}
    }
}

/// Renders a step's `each` (spec §3.6 step 8). A YAML list keeps its items apart so
/// that one rendering to undefined is a hole, which `Object.entries` skips.
fn render_each(
    renderer: &Renderer,
    each: &Json,
    context: &Json,
    warnings: &mut Vec<String>,
) -> Each {
    if let Json::Array(items) = each {
        return Each::Entries(
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    Some((
                        index.to_string(),
                        renderer.render_value(item, context, warnings)?,
                    ))
                })
                .collect(),
        );
    }
    match renderer.render_value(each, context, warnings) {
        None => Each::Undefined,
        Some(Json::Array(items)) => Each::Entries(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| (index.to_string(), item))
                .collect(),
        ),
        Some(Json::Object(map)) => Each::Entries(js_object_entries(map)),
        Some(_) => Each::Primitive,
    }
}

/// Whether `each` entries came from an array (keys `0`, `1`, ... possibly with holes).
fn each_is_array(entries: &[(String, Json)]) -> bool {
    entries.iter().all(|(key, _)| array_index(key).is_some())
}

/// `Object.entries` order: keys that are array indices first, ascending, then the
/// others in insertion order.
fn js_object_entries(map: Map<String, Json>) -> Vec<(String, Json)> {
    let (mut indices, others): (Vec<_>, Vec<_>) = map
        .into_iter()
        .partition(|(key, _)| array_index(key).is_some());
    indices.sort_by_key(|(key, _)| array_index(key));
    indices.extend(others);
    indices
}

/// A JavaScript array index: the canonical decimal form of an integer below 2³² − 1.
fn array_index(key: &str) -> Option<u32> {
    let n: u32 = key.parse().ok()?;
    (n < u32::MAX && n.to_string() == key).then_some(n)
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
    fn each_over_an_object_follows_javascript_key_order() {
        let map = json!({ "zeta": 1, "10": 2, "alpha": 3, "9": 4, "-1": 5, "01": 6, "2": 7 });
        let Json::Object(map) = map else {
            unreachable!()
        };
        let keys: Vec<String> = js_object_entries(map).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["2", "9", "10", "zeta", "alpha", "-1", "01"]);
    }

    #[test]
    fn each_kinds_and_holes_of_a_yaml_list() {
        let renderer = Renderer::new(Default::default());
        let ctx = json!({ "parameters": { "list": ["a"], "n": 5, "nothing": null } });
        let mut warnings = Vec::new();
        let mut each = |value: Json| render_each(&renderer, &value, &ctx, &mut warnings);
        assert!(matches!(
            each(json!("${{ parameters.missing }}")),
            Each::Undefined
        ));
        assert!(matches!(
            each(json!("${{ parameters.nothing }}")),
            Each::Primitive
        ));
        assert!(matches!(
            each(json!("${{ parameters.n }}")),
            Each::Primitive
        ));
        let Each::Entries(entries) = each(json!([
            "${{ parameters.list[0] }}",
            "${{ parameters.missing }}",
            "x"
        ])) else {
            panic!("a list is entries")
        };
        assert_eq!(
            entries,
            [("0".to_owned(), json!("a")), ("2".to_owned(), json!("x"))]
        );
    }

    #[test]
    fn what_differs_without_secrets_is_hidden_and_keys_stay() {
        let redactor = Redactor::default();
        // Without secrets `token` is gone: the entries after it pair by key, not position.
        add_secret_redactions(
            &redactor,
            &json!({ "message": "token abc123", "token": "t0ken-value", "same": "plain", "gone": "s3cr3t", "list": ["x1", "y2"] }),
            Some(&json!({ "message": "token ", "same": "plain" })),
        );
        assert_eq!(
            redactor.redact("token abc123 t0ken-value plain s3cr3t gone list x1 y2"),
            "*** *** plain *** gone list *** ***"
        );
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
