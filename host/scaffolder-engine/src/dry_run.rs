//! `POST /v2/dry-run` (spec §5): the uploaded files become the template's directory, the
//! runner runs with `isDryRun`, actions without dry-run support are skipped with example
//! outputs, and the workspace comes back as files. Nothing is persisted.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};
use tokio_util::sync::CancellationToken;

use scaffolder_template::Template;

use crate::Engine;
use crate::events::MemoryJournal;
use crate::failure::Failure;
use crate::spec::{TaskSpec, TaskUser};
use crate::workflow::{Environment, Run};

/// A file produced by a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunFile {
    /// Relative, `/`-separated.
    pub path: String,
    pub executable: bool,
    pub content: Vec<u8>,
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

/// A dry run's input.
#[derive(Debug, Clone)]
pub struct DryRunRequest {
    pub template: Template,
    pub values: Json,
    pub secrets: Map<String, Json>,
    pub directory_contents: Vec<DryRunUpload>,
    pub user: Option<TaskUser>,
}

/// A dry run's result, in Backstage's response order.
#[derive(Debug, Clone)]
pub struct DryRunResult {
    /// Event bodies.
    pub log: Vec<Json>,
    pub directory_contents: Vec<DryRunFile>,
    pub output: Json,
    /// The template's steps with their defaulted ids and names.
    pub steps: Vec<Map<String, Json>>,
}

impl Engine {
    /// Runs a template without a task. Any step failure fails the whole dry run.
    pub async fn dry_run(&self, request: DryRunRequest) -> Result<DryRunResult, Failure> {
        let root = &self.config().working_directory;
        let content_dir = root.join(format!("dry-run-content-{}", uuid::Uuid::new_v4()));
        let task_id = format!("dry-run-{}", uuid::Uuid::new_v4());
        let workspace = root.join(&task_id);
        let result = self
            .dry_run_in(request, &content_dir, &task_id, &workspace)
            .await;
        for dir in [&content_dir, &workspace] {
            if let Err(err) = std::fs::remove_dir_all(dir)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("could not remove {}: {err}", dir.display());
            }
        }
        result
    }

    async fn dry_run_in(
        &self,
        request: DryRunRequest,
        content_dir: &Path,
        task_id: &str,
        workspace: &Path,
    ) -> Result<DryRunResult, Failure> {
        let io = |what: &str, path: &Path, err: std::io::Error| {
            Failure::error(format!("could not {what} {}: {err}", path.display()))
        };
        std::fs::create_dir_all(content_dir).map_err(|e| io("create", content_dir, e))?;
        std::fs::create_dir_all(workspace).map_err(|e| io("create", workspace, e))?;
        for file in &request.directory_contents {
            let target = content_dir.join(safe_relative_path(&file.path)?);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
            }
            std::fs::write(&target, &file.content).map_err(|e| io("write", &target, e))?;
        }

        let mut spec = TaskSpec::with_base_url(
            &request.template,
            request.values,
            request.user,
            Some(format!("file://{}/template.yaml", content_dir.display())),
        );
        if let Some(info) = spec.template_info.as_mut() {
            info.entity_ref = "template:default/dry-run".to_owned();
        }
        let steps = spec.steps.clone();
        let journal = Arc::new(MemoryJournal::default());
        let environment = Environment {
            parameters: self.config().environment.parameters.clone(),
            secrets: Map::new(),
        };
        let result = Run {
            task_id: task_id.to_owned(),
            spec,
            dry_run: true,
            extra_steps: 1,
            workspace: workspace.to_path_buf(),
            template_directory: Some(content_dir.to_path_buf()),
            cancel: CancellationToken::new(),
            journal: journal.clone(),
            actions: self.actions(),
            renderer: self.renderer(),
            environment,
            secrets: request.secrets,
            saved_steps: Map::new(),
        }
        .execute()
        .await;
        let output = result?;
        let mut directory_contents = Vec::new();
        collect_files(workspace, workspace, &mut directory_contents)
            .map_err(|e| io("read", workspace, e))?;
        directory_contents.sort_by(|a, b| a.path.cmp(&b.path));
        let log = journal
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .map(|body| json!({ "body": body }))
            .collect();
        Ok(DryRunResult {
            log,
            directory_contents,
            output,
            steps,
        })
    }
}

/// An uploaded path as a relative path that stays inside the content directory.
fn safe_relative_path(path: &str) -> Result<PathBuf, Failure> {
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

/// Every file under `dir` except `.git`, symlinks followed (a broken one is an empty file).
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<DryRunFile>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name() == ".git" {
            continue;
        }
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(_) => std::fs::symlink_metadata(&path)?,
        };
        if metadata.is_dir() {
            collect_files(root, &path, out)?;
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let content = if metadata.is_file() {
            std::fs::read(&path)?
        } else {
            Vec::new()
        };
        out.push(DryRunFile {
            path: relative,
            executable: is_executable(&metadata),
            content,
        });
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &std::fs::Metadata) -> bool {
    false
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
