//! `scaffolder dry-run TEMPLATE.yaml`: a template run on this machine with the server's
//! engine, plugins and grants, but no server and no database. Values are checked field by
//! field first; progress goes to stderr while it runs; the outputs and a tree of the files
//! follow on stdout, or Backstage's dry-run response with `--json`.

use std::path::Path;

use anyhow::bail;
use scaffolder_engine::{LocalRunRequest, LocalRunResult, TemplateFiles};
use scaffolder_local::files::{ensure_empty_dir, file_tree, write_files};
use scaffolder_local::progress::{Progress, Style};
use scaffolder_local::session::{InputProblem, LocalSession, checked_inputs, read_template};
use scaffolder_local::{plural, values};
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::cli::DryRunArgs;

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
            plural::plural(template.spec.steps.len(), "step", "steps")
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
            serde_json::to_string_pretty(&scaffolder_local::progress::without_log_colours(
                scaffolder_api::dry_run_response_body(result)
            ))?
        );
    } else {
        print!("{}", summary(&result, args.output.as_deref(), args.execute));
    }
    Ok(())
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
