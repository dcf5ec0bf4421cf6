//! `scaffolder dry-run TEMPLATE.yaml`: a template run on this machine with the server's
//! engine, plugins and grants, but no server and no database. Values are checked field by
//! field first; progress goes to stderr while it runs; the outputs and a tree of the files
//! follow on stdout, or Backstage's dry-run response with `--json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use scaffolder_engine::{
    ActionRegistry, DryRunFile, LocalRunRequest, LocalRunResult, LocalRunner, TemplateFiles,
};
use scaffolder_template::defaults::apply_defaults;
use scaffolder_template::{Template, validate_secrets};
use serde_json::{Map, Value as Json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::cli::DryRunArgs;
use crate::progress::{Progress, Style};
use crate::{setup, values};

pub async fn run(args: DryRunArgs) -> anyhow::Result<()> {
    let template = read_template(&args.template)?;
    let values = values::read_values(args.values.as_deref(), &args.sets, &template)?;
    let secrets = values::parse_secrets(&args.secrets)?;
    let values = checked_inputs(&args.template, &template, values, &secrets).map_err(|err| {
        anyhow::anyhow!(
            "{err}\n{}",
            match err {
                InputProblem::Values(_) => "fix them in the values file or with --set KEY=VALUE",
                InputProblem::Secrets(_) => "give them with --secret NAME=VALUE",
            }
        )
    })?;
    if let Some(output) = &args.output {
        ensure_empty_dir(output)?;
    }

    let session = LocalSession::open(
        &args.local.configs,
        &args.local.plugins,
        args.local.data_dir.as_deref(),
    )
    .await?;
    session.check_actions(&template)?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    if !args.json {
        let style = Style::stderr();
        let mode = if args.execute {
            "Running"
        } else {
            "Dry run of"
        };
        eprintln!(
            "{} {}: {}",
            style.bold(mode),
            template.entity_ref(),
            crate::plural::plural(template.spec.steps.len(), "step", "steps")
        );
    }
    let progress = (!args.json).then(|| {
        let steps = template
            .spec
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect();
        tokio::spawn(Progress::new(Style::stderr(), steps).follow(receiver))
    });
    // Ctrl-c stops the running step and still removes the temporary workspace.
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    let result = session
        .runner
        .run(LocalRunRequest {
            template,
            values,
            secrets,
            files: TemplateFiles::File(args.template.clone()),
            user: None,
            execute: args.execute,
            events: Some(sender),
            cancel: cancel.clone(),
        })
        .await;
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    if cancel.is_cancelled() {
        bail!("interrupted; nothing was written");
    }
    let result = result.map_err(|failure| anyhow::anyhow!("the template failed: {failure}"))?;

    if let Some(output) = &args.output {
        write_files(output, &result.directory_contents)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::progress::without_log_colours(
                scaffolder_api::dry_run_response_body(result)
            ))?
        );
    } else {
        print!("{}", summary(&result, args.output.as_deref(), args.execute));
    }
    Ok(())
}

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
        let plugins = setup::load_plugins(&runtime, &config, &data_dir, extra_plugins).await?;
        let actions = ActionRegistry::with_origins(plugins)?;
        let working_directory = tempfile::Builder::new()
            .prefix("scaffolder-local-")
            .tempdir()
            .context("cannot create a temporary directory for the workspace")?;
        let engine_config = setup::engine_config(&config, working_directory.path().to_path_buf());
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

/// `dir` does not exist or is an empty directory, so writing into it loses nothing.
pub fn ensure_empty_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; give a new or empty directory so nothing in it is overwritten",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("{} is a file; give a directory", dir.display())
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Writes the files under `dir`, executable ones with mode 0755. A link is written as a
/// link when it stays inside `dir` (`link_stays_inside`); any other is left out with a
/// warning on stderr, so nothing written points at the rest of the machine.
pub fn write_files(dir: &Path, files: &[DryRunFile]) -> anyhow::Result<()> {
    for file in files {
        if file.symlink && !link_stays_inside(&file.path, &file.content) {
            eprintln!(
                "warning: skipped link {} -> {}: it points outside the output directory",
                file.path,
                String::from_utf8_lossy(&file.content)
            );
            continue;
        }
        let target = dir.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if file.symlink {
            use std::os::unix::ffi::OsStrExt;
            let link = std::ffi::OsStr::from_bytes(&file.content);
            std::os::unix::fs::symlink(link, &target)
                .with_context(|| format!("cannot create the link {}", target.display()))?;
            continue;
        }
        std::fs::write(&target, &file.content)
            .with_context(|| format!("cannot write {}", target.display()))?;
        #[cfg(unix)]
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", target.display()))?;
        }
    }
    Ok(())
}

/// Whether the link at `path` (relative to the output directory, `/`-separated) with
/// this target points inside the output directory, read lexically from the link's own
/// directory: a relative target whose leading `..` climb no higher than the output
/// directory. A `..` after a name is refused too: the name may be a link, and `..` from a
/// link's target climbs from there, not where the text says.
fn link_stays_inside(path: &str, target: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::path::Component;
    let target = Path::new(std::ffi::OsStr::from_bytes(target));
    let mut depth = path.split('/').count() - 1;
    let mut named = false;
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if !named && depth > 0 => depth -= 1,
            Component::Normal(_) => named = true,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The outputs and the tree of files, for people.
fn summary(result: &LocalRunResult, output_dir: Option<&Path>, executed: bool) -> String {
    let style = Style::stdout();
    let mut out = String::new();
    let outputs = result.output.as_object().filter(|o| !o.is_empty());
    if let Some(outputs) = outputs {
        out.push_str(&format!("\n{}\n", style.bold("Output")));
        for (key, value) in outputs {
            out.push_str(&describe_output(key, value));
        }
    }
    let files = &result.directory_contents;
    let heading = match (output_dir, executed) {
        (Some(dir), _) => format!("Files written to {}", dir.display()),
        (None, true) => "Files created".to_owned(),
        (None, false) => "Files it would create".to_owned(),
    };
    out.push_str(&format!("\n{} ({})\n", style.bold(&heading), files.len()));
    out.push_str(&file_tree(files));
    if output_dir.is_none() && !files.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            style.dim("write them somewhere with --output DIR")
        ));
    }
    out
}

/// One key of `spec.output`: Backstage's `links` and `text` as the frontend shows them,
/// anything else as JSON.
fn describe_output(key: &str, value: &Json) -> String {
    let field = |item: &Json, name: &str| item.get(name).and_then(Json::as_str).map(str::to_owned);
    match (key, value) {
        ("links", Json::Array(links)) => links
            .iter()
            .map(|link| {
                let title = field(link, "title").unwrap_or_else(|| "link".into());
                let target = field(link, "url")
                    .or_else(|| field(link, "entityRef"))
                    .unwrap_or_default();
                format!("  link  {title}: {target}\n")
            })
            .collect(),
        ("text", Json::Array(texts)) => texts
            .iter()
            .map(|text| {
                let title = field(text, "title").unwrap_or_default();
                let content = field(text, "content").unwrap_or_default();
                format!(
                    "  {title}\n    {}\n",
                    content.trim_end().replace('\n', "\n    ")
                )
            })
            .collect(),
        _ => {
            let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
            format!("  {key}: {}\n", pretty.replace('\n', "\n  "))
        }
    }
}

/// `├── src/` style lines for the paths; executables marked with `*`, links with their
/// target.
fn file_tree(files: &[DryRunFile]) -> String {
    #[derive(Default)]
    struct Node {
        children: std::collections::BTreeMap<String, Node>,
        executable: bool,
        is_file: bool,
        /// A link's target.
        link: Option<String>,
    }
    fn render(node: &Node, prefix: &str, out: &mut String) {
        let count = node.children.len();
        for (index, (name, child)) in node.children.iter().enumerate() {
            let last = index + 1 == count;
            let branch = if last { "└── " } else { "├── " };
            let suffix = match (&child.link, child.is_file, child.executable) {
                (Some(target), _, _) => format!(" -> {target}"),
                (None, false, _) => "/".to_owned(),
                (None, true, true) => "*".to_owned(),
                (None, true, false) => String::new(),
            };
            out.push_str(&format!("{prefix}{branch}{name}{suffix}\n"));
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            render(child, &deeper, out);
        }
    }
    let mut root = Node::default();
    for file in files {
        let mut node = &mut root;
        for part in file.path.split('/') {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.is_file = true;
        node.executable = file.executable;
        node.link = file
            .symlink
            .then(|| String::from_utf8_lossy(&file.content).into_owned());
    }
    let mut out = String::new();
    render(&root, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, executable: bool) -> DryRunFile {
        DryRunFile {
            path: path.into(),
            executable,
            content: Vec::new(),
            symlink: false,
        }
    }

    fn link(path: &str, target: &str) -> DryRunFile {
        DryRunFile {
            path: path.into(),
            executable: false,
            content: target.as_bytes().to_vec(),
            symlink: true,
        }
    }

    #[test]
    fn the_tree_nests_directories_and_marks_executables_and_links() {
        let tree = file_tree(&[
            file("README.md", false),
            file("scripts/run.sh", true),
            link("src/current", "lib.rs"),
            file("src/lib.rs", false),
            file("src/main.rs", false),
        ]);
        assert_eq!(
            tree,
            "├── README.md\n├── scripts/\n│   └── run.sh*\n└── src/\n    ├── current -> lib.rs\n    ├── lib.rs\n    └── main.rs\n"
        );
    }

    #[test]
    fn links_are_written_only_when_they_stay_inside() {
        for (path, target) in [
            ("a", "b"),
            ("a", "./b/c"),
            ("d/a", "../b"),
            ("d/e/a", "../../b/c"),
            ("d/a", ".."),
        ] {
            assert!(
                link_stays_inside(path, target.as_bytes()),
                "{path} -> {target}"
            );
        }
        for (path, target) in [
            ("a", ".."),
            ("a", "../a"),
            ("d/a", "../../etc/passwd"),
            ("a/passwd", "../../../../etc/passwd"),
            ("a", "/etc/passwd"),
            // `b` could be a link to `d/e`, from which `../..` is outside.
            ("a", "b/../../x"),
            ("d/a", "b/../x"),
        ] {
            assert!(
                !link_stays_inside(path, target.as_bytes()),
                "{path} -> {target}"
            );
        }

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write_files(
            &out,
            &[
                file("d/real.txt", false),
                link("d/inside", "real.txt"),
                link("d/passwd", "../../../../etc/passwd"),
            ],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(out.join("d/inside")).unwrap(),
            Path::new("real.txt")
        );
        assert!(std::fs::symlink_metadata(out.join("d/passwd")).is_err());
    }

    #[test]
    fn output_directories_must_be_new_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        ensure_empty_dir(&dir.path().join("new")).unwrap();
        ensure_empty_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = ensure_empty_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is not empty"), "{err}");
        let err = ensure_empty_dir(&dir.path().join("keep.txt")).unwrap_err();
        assert!(err.to_string().contains("is a file"), "{err}");
    }
}
