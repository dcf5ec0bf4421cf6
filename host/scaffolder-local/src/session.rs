//! A local run's session: the plugins and engine settings a server with the same
//! configuration has (no store, a temporary working directory), a template file read, and
//! the values and secrets checked as the server checks them, after the defaults the
//! frontend would fill in.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use scaffolder_engine::{
    ActionRegistry, LocalRunRequest, LocalRunResult, LocalRunner, TemplateFiles,
};
use scaffolder_template::defaults::apply_defaults;
use scaffolder_template::{Template, validate_secrets};
use serde_json::{Map, Value as Json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::{setup, values};

/// Why a run's inputs were refused before anything ran.
#[derive(Debug)]
pub enum InputProblem {
    /// The values do not fit the parameters: the message and one line per refused field.
    Values(String),
    /// The secrets schema refuses the secrets: the message and one line per problem
    /// (never a secret's value).
    Secrets(String),
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Values(message) | Self::Secrets(message) => f.write_str(message),
        }
    }
}

/// The values a local run gets, as the portal would submit them: each parameter page's
/// schema `default`s filled in (`scaffolder_template::defaults`), then checked field by
/// field on every page; and the secrets checked against `spec.secrets.schema`. Shared by
/// `dry-run` and `test`, so a test case runs exactly what a dry run would.
pub fn checked_inputs(
    template_file: &Path,
    template: &Template,
    values: Json,
    secrets: &Map<String, Json>,
) -> Result<Json, InputProblem> {
    let values = apply_defaults(&template.spec.parameters, &values);
    // Hidden pages (a false `when`) are not checked and their values are removed.
    let checked = values::check(template, &values);
    for warning in &checked.warnings {
        eprintln!("warning: {warning}");
    }
    let (values, problems) = (checked.values, checked.problems);
    if !problems.is_empty() {
        let mut message = format!(
            "the values do not fit the parameters of {}; nothing was run:",
            template_file.display()
        );
        for problem in &problems {
            message.push_str("\n  ");
            message.push_str(problem);
        }
        return Err(InputProblem::Values(message));
    }
    if let Some(schema) = &template.spec.secrets_schema
        && let Err(errors) = validate_secrets(schema, &Json::Object(secrets.clone()))
    {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {}", e.message)).collect();
        return Err(InputProblem::Secrets(format!(
            "the template's secrets schema refuses the secrets:\n{}",
            lines.join("\n")
        )));
    }
    Ok(values)
}

/// The template file, with its line and column in any error.
pub fn read_template(path: &Path) -> anyhow::Result<Template> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the template {}", path.display()))?;
    Template::from_yaml(&text, Some(&path.display().to_string()))
        .map_err(|err| anyhow::anyhow!(err))
}

/// The plugins a server with the same configuration would load, and a runner whose
/// workspaces live in a temporary directory removed when the session ends.
pub struct LocalSession {
    pub runner: LocalRunner,
    _working_directory: TempDir,
}

impl LocalSession {
    pub async fn open(
        configs: &[PathBuf],
        extra_plugins: &[PathBuf],
        data_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let config = scaffolder_config::load(configs)?;
        let data_dir = setup::data_dir(data_dir, &config)?;
        let runtime = setup::runtime(&data_dir)?;
        let plugin_set = config.plugin_set(extra_plugins);
        let plugins = scaffolder_plugins::load_plugins(&runtime, &plugin_set, &data_dir).await?;
        let actions = ActionRegistry::with_origins(plugins)?;
        let working_directory = tempfile::Builder::new()
            .prefix("scaffolder-local-")
            .tempdir()
            .context("cannot create a temporary directory for the workspace")?;
        let engine_config = config.engine_config(working_directory.path().to_path_buf());
        Ok(Self {
            runner: LocalRunner::new(actions, &engine_config),
            _working_directory: working_directory,
        })
    }

    /// Every step's action is loaded, or an error that lists what is.
    pub fn check_actions(&self, template: &Template) -> anyhow::Result<()> {
        let actions = self.runner.actions();
        for step in &template.spec.steps {
            if actions.get(&step.action).is_none() {
                let known: Vec<&str> = actions.iter().map(|a| a.info.id.as_str()).collect();
                bail!(
                    "step '{}' uses the action '{}', which no loaded plugin provides; load its plugin with \
                     --plugin FILE.wasm or a scaffolder.plugins entry in --config (loaded: {})",
                    step.id,
                    step.action,
                    known.join(", ")
                );
            }
        }
        Ok(())
    }

    /// Runs a template held in memory (its files as uploads), without progress.
    pub async fn run_quietly(
        &self,
        template: Template,
        values: Json,
        files: TemplateFiles,
    ) -> anyhow::Result<LocalRunResult> {
        self.check_actions(&template)?;
        self.runner
            .run(LocalRunRequest {
                template,
                values,
                secrets: Map::new(),
                files,
                user: None,
                execute: true,
                events: None,
                cancel: CancellationToken::new(),
            })
            .await
            .map_err(|failure| anyhow::anyhow!("{failure}"))
    }
}
