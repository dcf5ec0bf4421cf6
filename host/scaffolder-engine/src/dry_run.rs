//! Runs without a task: `POST /v2/dry-run` (spec §5: the uploaded files become the
//! template's directory, the runner runs with `isDryRun`, actions without dry-run support
//! are skipped with example outputs, and the workspace comes back as files) and the
//! command line's `scaffolder dry-run` (a template file on disk, optionally `--execute`d
//! for real). Nothing is persisted. The workspace is read back by `collect`: links
//! listed as links and never followed, within `scaffolder.dryRun` caps.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use scaffolder_template::{Renderer, RendererOptions, Template};
use serde_json::{Map, Value as Json, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::actions::ActionRegistry;
use crate::collect::collect_files;
use crate::events::MemoryJournal;
use crate::failure::Failure;
use crate::run_space::{Placement, RunSpace};
use scaffolder_store::TaskUser;

use crate::spec::task_spec;
use crate::uploads::UploadedTemplates;
use crate::workflow::{Environment, Run};
use crate::{Engine, EngineConfig};

/// A file produced by a local run: a regular file, or a link (never what it points at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunFile {
    /// Relative, `/`-separated.
    pub path: String,
    pub executable: bool,
    /// A file's bytes, or a link's target as written in the link.
    pub content: Vec<u8>,
    /// A link, whose `content` is its target. Backstage's dry run marks links so and its
    /// response drops the mark; ours too (`response_body`), and `scaffolder dry-run
    /// --output` uses it to write a link as a link.
    pub symlink: bool,
}

/// A file of the template's directory uploaded with a dry run. It has no mode: Backstage
/// writes uploads with the default one (an `executable` flag in the request is dropped),
/// so a skeleton's scripts come out of a dry run non-executable there and here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunUpload {
    /// Relative, `/`-separated.
    pub path: String,
    pub content: Vec<u8>,
}

/// Where a local run finds the template's own files (its skeletons).
#[derive(Debug, Clone)]
pub enum TemplateFiles {
    /// Sent with the request (`POST /v2/dry-run`: the frontend uploads the template's
    /// directory); written to a temporary directory for the run.
    Uploaded(Vec<DryRunUpload>),
    /// A template file on this machine (the command line); its directory is read in
    /// place, modes included.
    File(PathBuf),
}

/// A local run's input.
#[derive(Debug, Clone)]
pub struct LocalRunRequest {
    pub template: Template,
    pub values: Json,
    pub secrets: Map<String, Json>,
    pub files: TemplateFiles,
    pub user: Option<TaskUser>,
    /// Run every action for real, with the operator's `defaultEnvironment` secrets,
    /// instead of Backstage's dry-run semantics (`scaffolder dry-run --execute`).
    pub execute: bool,
    /// Receives each event body as it is recorded, for live progress.
    pub events: Option<UnboundedSender<Json>>,
    /// Stops the run (the running step at once), as cancelling a task does.
    pub cancel: CancellationToken,
}

/// A local run's result, in Backstage's dry-run response order.
#[derive(Debug, Clone)]
pub struct LocalRunResult {
    /// Event bodies.
    pub log: Vec<Json>,
    pub directory_contents: Vec<DryRunFile>,
    pub output: Json,
    /// The template's steps with their defaulted ids and names.
    pub steps: Vec<Map<String, Json>>,
}

/// Runs templates without a task and without a store, with the same runner, actions and
/// sandbox as tasks: the server's dry runs and the command line's `scaffolder dry-run`.
pub struct LocalRunner {
    actions: Arc<ActionRegistry>,
    renderer: Arc<Renderer>,
    space: Arc<RunSpace>,
    environment: Environment,
    uploads: Arc<UploadedTemplates>,
}

/// A local run's workspace, to be removed once the run has answered.
struct RunWorkspace(Placement);

impl RunWorkspace {
    fn remove(self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove {}: {err}", self.0.path.display());
        }
    }

    /// Removes the workspace in the background. On disk (a third of a small dry run's
    /// time on ext4) that is blocking work, for the blocking pool, which the runtime
    /// finishes before it shuts down; in memory it is microseconds of CPU, cheaper on
    /// this worker than a hop to the pool, and what a stop leaves goes with the whole
    /// memory directory (`Engine::close_dry_runs`).
    fn remove_later(self) {
        if self.0.in_memory() {
            tokio::spawn(async move { self.remove() });
        } else {
            tokio::task::spawn_blocking(move || self.remove());
        }
    }
}

impl Engine {
    /// `POST /v2/dry-run`. Any step failure fails the whole dry run.
    pub async fn dry_run(&self, request: LocalRunRequest) -> Result<LocalRunResult, Failure> {
        let config = self.config();
        let (result, workspace) = LocalRunner {
            actions: self.actions(),
            renderer: self.renderer(),
            space: self.run_space(),
            environment: config.environment.clone(),
            uploads: self.uploaded_templates(),
        }
        .run_keeping_workspace(request)
        .await;
        // The caller has its answer; removing the run's workspace need not delay it.
        workspace.remove_later();
        result
    }
}

impl LocalRunner {
    /// Workspaces go to memory when they can (`run_space.rs`), else under
    /// `config.working_directory`.
    pub fn new(actions: ActionRegistry, config: &EngineConfig) -> Self {
        Self {
            actions: Arc::new(actions.answering_as(config.actions_registry_plugin_id.clone())),
            renderer: Arc::new(Renderer::new(RendererOptions {
                integrations: config.integrations.clone(),
                ..RendererOptions::default()
            })),
            space: Arc::new(RunSpace::new(
                config.working_directory.clone(),
                config.dry_run_limits,
            )),
            environment: config.environment.clone(),
            uploads: Arc::new(UploadedTemplates::new(config.working_directory.clone())),
        }
    }

    pub fn actions(&self) -> &ActionRegistry {
        &self.actions
    }

    /// Runs a template in a temporary workspace and returns what it produced. Any step
    /// failure fails the whole run; the workspace is removed either way.
    pub async fn run(&self, request: LocalRunRequest) -> Result<LocalRunResult, Failure> {
        let (result, workspace) = self.run_keeping_workspace(request).await;
        workspace.remove();
        result
    }

    /// [`LocalRunner::run`], leaving the removal of its workspace to the caller.
    async fn run_keeping_workspace(
        &self,
        request: LocalRunRequest,
    ) -> (Result<LocalRunResult, Failure>, RunWorkspace) {
        let prefix = if request.execute { "local" } else { "dry-run" };
        let task_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        let workspace = self.space.place(&task_id);
        let result = self.run_in(request, &task_id, &workspace.path).await;
        (result, RunWorkspace(workspace))
    }

    async fn run_in(
        &self,
        request: LocalRunRequest,
        task_id: &str,
        workspace: &Path,
    ) -> Result<LocalRunResult, Failure> {
        let io = |what: &str, path: &Path, err: std::io::Error| {
            Failure::error(format!("could not {what} {}: {err}", path.display()))
        };
        std::fs::create_dir_all(workspace).map_err(|e| io("create", workspace, e))?;
        // Held until the run ends: the directory goes when no run reads it and it is no
        // longer kept for the next dry run of the same files.
        let uploaded;
        let template_file = match &request.files {
            TemplateFiles::Uploaded(uploads) => {
                uploaded = self.uploads.directory(uploads)?;
                uploaded.path().join("template.yaml")
            }
            TemplateFiles::File(file) => {
                std::path::absolute(file).map_err(|e| io("find", file, e))?
            }
        };
        let template_directory = template_file.parent().map(Path::to_path_buf);

        let mut spec = task_spec(
            &request.template,
            request.values,
            request.user,
            Some(format!("file://{}", template_file.display())),
        );
        if !request.execute
            && let Some(info) = spec.template_info.as_mut()
        {
            info.entity_ref = "template:default/dry-run".to_owned();
        }
        let steps = spec.steps.clone();
        let journal = Arc::new(MemoryJournal::new(request.events));
        let environment = Environment {
            parameters: self.environment.parameters.clone(),
            // Operator credentials are for real runs only.
            secrets: if request.execute {
                self.environment.secrets.clone()
            } else {
                Map::new()
            },
        };
        let result = Run {
            task_id: task_id.to_owned(),
            spec,
            dry_run: !request.execute,
            // Backstage counts the step that extracts the uploaded files.
            extra_steps: usize::from(!request.execute),
            workspace: workspace.to_path_buf(),
            workspace_cap: Some(self.space.cap()),
            template_directory,
            cancel: request.cancel,
            journal: journal.clone(),
            actions: self.actions.clone(),
            renderer: self.renderer.clone(),
            environment,
            secrets: request.secrets,
            saved_steps: BTreeMap::new(),
        }
        .execute()
        .await;
        let output = result?;
        let directory_contents = collect_files(workspace, self.space.limits())?;
        let log = journal
            .take_events()
            .into_iter()
            .map(|body| json!({ "body": body }))
            .collect();
        Ok(LocalRunResult {
            log,
            directory_contents,
            output,
            steps,
        })
    }
}

/// An uploaded path as a relative path that stays inside the content directory.
pub(crate) fn safe_relative_path(path: &str) -> Result<PathBuf, Failure> {
    let relative = Path::new(path);
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            _ => {
                return Err(Failure::input(format!(
                    "Malformed request: directoryContents path '{path}' must be relative and stay inside the template directory"
                )));
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(Failure::input(
            "Malformed request: directoryContents has an entry with an empty path",
        ));
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_paths_stay_inside() {
        assert_eq!(
            safe_relative_path("./skeleton/a.txt").unwrap(),
            PathBuf::from("skeleton/a.txt")
        );
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert_eq!(
                safe_relative_path(bad).unwrap_err().name,
                "InputError",
                "{bad}"
            );
        }
    }
}
