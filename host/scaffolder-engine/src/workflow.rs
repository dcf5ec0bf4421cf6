//! The workflow runner: a task's steps in order with `if`, `each`, `always()` and
//! `failure()`, each step's input rendered and validated, then run in the Wasm runtime;
//! the events Backstage's `NunjucksWorkflowRunner` writes, in its order (spec §2.3, §3.6,
//! §5). Tasks and dry runs share it; they differ in their [`Journal`].
//!
//! A step's `each` items and their inputs are prepared in `iterations`; `spec.output` and a
//! dry run's example outputs are in `output`.

mod iterations;
mod output;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use scaffolder_runtime::{StepContext, StepFailureKind, StepRequest, TemplateInfo, WorkspaceCap};
use scaffolder_template::{ParameterError, Renderer, TemplateContext, step_reference_warnings};
use serde_json::{Map, Value as Json, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actions::ActionRegistry;
use crate::events::{Journal, log_body};
use crate::failure::Failure;
use crate::redact::Redactor;
use crate::step_log::{self, ActionHost, LogLines, RunLog};
use iterations::{Iteration, describe_each};
use output::{example_of_schema, render_output};
use scaffolder_store::{SpecStep, StepState, TaskSpec};

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
    pub saved_steps: BTreeMap<String, StepState>,
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
        match self.saved_steps.get(step_id)? {
            StepState::Completed { output } => Some(output.clone()),
        }
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

/// jsonschema's `errors.join(', ')`: `<property> <message>` each.
pub(crate) fn describe_errors(errors: &[ParameterError]) -> String {
    errors
        .iter()
        .map(|e| e.stack.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
