//! `scaffolder test [DIR]`: regression tests for templates (the case format and how a case
//! runs are in `scaffolder_local::template_tests`); one line per case, then a summary.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use scaffolder_local::plural;
use scaffolder_local::progress::Style;
use scaffolder_local::session::{LocalSession, read_template};
use scaffolder_local::template_tests::{case_label, find_templates, read_cases, run_case};

use crate::cli::TestArgs;

pub async fn run(args: TestArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let templates = find_templates(&args.dir)?;
    // Every case file is read before anything runs, so a typo fails fast.
    let mut suites = Vec::new();
    for template in &templates {
        let cases = read_cases(&template.join("tests"))?;
        suites.push((template, cases));
    }
    // Cases are named from the directory holding the templates: `rust-service/tests/x.yaml`.
    let label_root = if templates == [args.dir.clone()] {
        args.dir.parent().unwrap_or(Path::new("")).to_path_buf()
    } else {
        args.dir.clone()
    };
    let session = LocalSession::open(
        &args.local.configs,
        &args.local.plugins,
        args.local.data_dir.as_deref(),
    )
    .await?;
    let style = Style::stdout();
    let total: usize = suites.iter().map(|(_, cases)| cases.len()).sum();
    println!(
        "\nrunning {}",
        plural::plural(total, "template test case", "template test cases")
    );
    let mut failed = Vec::new();
    let mut updated = Vec::new();
    for (template_dir, cases) in &suites {
        let template_file = template_dir.join("template.yaml");
        let template = read_template(&template_file)?;
        for case in cases {
            let label = case_label(&label_root, case);
            let outcome = run_case(&session, &template_file, &template, case, args.update).await;
            if let Some(snapshot) = &outcome.updated {
                updated.push(snapshot.clone());
            }
            if outcome.problems.is_empty() {
                println!("test {label} ... {}", style.bold("ok"));
            } else {
                println!("test {label} ... {}", style.bold("FAILED"));
                for problem in &outcome.problems {
                    println!("    {}", problem.trim_end().replace('\n', "\n    "));
                }
                failed.push(label);
            }
        }
    }
    for snapshot in &updated {
        println!("updated {}", snapshot.display());
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for label in &failed {
            println!("    {label}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.2}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        total - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        bail!(
            "{} of {} failed",
            failed.len(),
            plural::plural(total, "template test case", "template test cases")
        );
    }
    Ok(())
}
