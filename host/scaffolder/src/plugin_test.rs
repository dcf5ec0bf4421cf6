//! `scaffolder plugin test`: runs a plugin's actions in the production sandbox (the same
//! runtime, grants and default limits as a server), each case in a fresh temporary
//! workspace, and checks what came out: the output, the files, the log, or the failure.
//! Before the action runs, its input is checked against its schema by the engine's own
//! check (`scaffolder_engine::check_step_input`), so an input a template step would
//! refuse is refused here too, with the same message. Failure kinds are spelt as
//! `StepFailureKind` serialises them (`invalidInput`), in case files and in messages.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use scaffolder_local::plugin_tests::{
    Case, Ran, check, kind_name, read_cases, read_input, run_case,
};
use scaffolder_local::plural;
use scaffolder_local::progress::Style;
use scaffolder_local::values;
use scaffolder_plugins::directory;
use scaffolder_runtime::{Grants, PluginConfig, Runtime, RuntimeConfig};

use crate::cli::PluginTestArgs;

pub async fn run(args: PluginTestArgs) -> anyhow::Result<()> {
    let component = directory::component(&args.plugin)?;
    let mut secrets: BTreeMap<String, String> = values::parse_secrets(&args.secrets)?
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
        .collect();

    let cases: Vec<(String, Case)> = match (&args.action, &args.input) {
        (Some(action), Some(input)) => vec![(
            action.clone(),
            Case {
                action: action.clone(),
                input: read_input(input)?,
                dry_run: args.dry_run,
                workspace: args.workspace.clone(),
                ..Case::default()
            },
        )],
        _ => read_cases(&args.plugin, &args.cases)?,
    };
    // A case's own secrets are granted too, so the plugin can read them.
    for (_, case) in &cases {
        secrets.extend(case.secrets.clone());
    }
    let runtime = Runtime::new(&RuntimeConfig::default()).context("starting the wasm runtime")?;
    let plugin = runtime
        .load_file(
            &component,
            PluginConfig {
                grants: Grants {
                    outbound_http: args.allow_hosts.clone(),
                    secrets: secrets.keys().cloned().collect(),
                    tcp: args.allow_tcp.clone(),
                    template_directory: false,
                    internal_networks: Vec::new(),
                },
                ..PluginConfig::default()
            },
        )
        .await
        .with_context(|| format!("{} is not a usable plugin", component.display()))?;

    let single = args.action.is_some();
    let style = Style::stdout();
    let mut failed = 0;
    for (name, case) in &cases {
        let ran = run_case(&plugin, case, &secrets).await?;
        if single {
            print_run(&ran);
            if let Err(failure) = &ran.result {
                bail!(
                    "{} failed ({}): {}",
                    case.action,
                    kind_name(failure.kind),
                    failure.message
                );
            }
            return Ok(());
        }
        let problems = check(case, &ran);
        if problems.is_empty() {
            println!("{} {name}", style.bold("ok    "));
        } else {
            failed += 1;
            println!("{} {name}", style.bold("FAILED"));
            for problem in problems {
                println!("    {}", problem.replace('\n', "\n    "));
            }
            for line in &ran.logs {
                println!("    {}", style.dim(&format!("log: {line}")));
            }
        }
    }
    println!("\n{} passed, {failed} failed", cases.len() - failed);
    if failed > 0 {
        bail!(
            "{failed} of {} failed",
            plural::plural(cases.len(), "case", "cases")
        );
    }
    Ok(())
}

/// One ad-hoc run: the log, then the output or failure, then the files.
fn print_run(ran: &Ran) {
    let style = Style::stdout();
    for line in &ran.logs {
        println!("{}", style.dim(line));
    }
    if let Ok(output) = &ran.result {
        println!(
            "{}\n{}",
            style.bold("Output"),
            serde_json::to_string_pretty(output).unwrap_or_default()
        );
    }
    if !ran.files.is_empty() {
        println!("{}", style.bold("Workspace"));
        for (path, content) in &ran.files {
            println!(
                "  {path} ({})",
                plural::plural(content.len(), "byte", "bytes")
            );
        }
    }
}
