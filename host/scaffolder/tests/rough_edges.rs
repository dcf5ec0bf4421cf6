//! Issue 20, item 9: the small things a newcomer trips over in `scaffolder dry-run`'s
//! output. Each test names the rough edge it keeps away.

mod common;

use common::{Server, post, run_scaffolder, text, wait_for_event};
use serde_json::{Value as Json, json};

/// One step whose input holds an expression that cannot render (an unknown filter).
const TEMPLATE: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: rough
spec:
  type: service
  parameters:
    - properties:
        name: { type: string }
  steps:
    - id: log
      name: Log
      action: debug:log
      input:
        message: "hello ${{ parameters.name | nosuchfilter }}"
"#;

/// A step that reads the output of a step that does not exist.
const UNKNOWN_STEP: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: unknown-step
spec:
  type: service
  steps:
    - id: log
      name: Log
      action: debug:log
      input:
        message: "${{ steps.nosuch.output.x }}"
"#;

fn dry_run(template: &str, extra: &[&str]) -> (String, String) {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("template.yaml"), template).unwrap();
    let mut args = vec!["dry-run", "template.yaml", "--set", "name=a"];
    args.extend_from_slice(extra);
    let output = run_scaffolder(work.path(), &args);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The `log` messages of a `dry-run --json` response.
fn log_messages(stdout: &str) -> Vec<String> {
    let body: Json = serde_json::from_str(stdout).unwrap();
    body["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["body"]["message"].as_str().map(str::to_owned))
        .collect()
}

/// A dry run renders a step's input twice (once with secrets shown as `***` for its log
/// line, once to run it); a value that cannot render is still reported once.
#[test]
fn a_value_that_cannot_render_is_reported_once_per_step() {
    let (_, stderr) = dry_run(TEMPLATE, &[]);
    let reports = stderr.matches("could not render").count();
    assert_eq!(reports, 1, "{stderr}");
    assert!(
        stderr.contains(
            "could not render 'hello ${{ parameters.name | nosuchfilter }}', keeping it as written"
        ),
        "{stderr}"
    );
}

/// `${{ steps.nosuch.output.x }}` renders empty, as in Backstage, but no longer silently.
#[test]
fn a_reference_to_an_unknown_step_id_is_warned_about() {
    let (stdout, stderr) = dry_run(UNKNOWN_STEP, &["--json"]);
    assert!(
        stderr.contains("spec.steps[0].input.message: `steps.nosuch` names no step"),
        "{stderr}"
    );
    // Still rendered as Backstage does: an undefined sole expression drops the key.
    let logged = log_messages(&stdout)
        .iter()
        .any(|m| m.ends_with("in dry-run mode with inputs (secrets redacted): {}"));
    assert!(logged, "{stdout}");
}

#[test]
fn a_template_with_one_step_says_1_step() {
    let (_, stderr) = dry_run(TEMPLATE, &[]);
    assert!(
        stderr.contains("Dry run of template:default/rough: 1 step\n"),
        "{stderr}"
    );
}

/// The server keeps winston's colours in `log` (Backstage's frontend shows them); the
/// command line's `--json` is for programs, so its messages are plain text.
#[test]
fn dry_run_json_log_messages_carry_no_ansi_codes() {
    let (stdout, stderr) = dry_run(TEMPLATE, &["--json"]);
    let messages = log_messages(&stdout);
    assert!(
        messages.contains(&"info: hello ${{ parameters.name | nosuchfilter }}".to_owned()),
        "{messages:#?}"
    );
    assert!(!stdout.contains('\u{1b}'), "ANSI in --json: {stdout}");
    assert!(!stdout.contains("\\u001b"), "ANSI in --json: {stdout}");
    assert!(!stderr.contains('\u{1b}'), "ANSI on a pipe: {stderr}");
}

/// A task's step under `each` renders its input once per item; the server's log says what
/// could not render once. It names the unknown step the template reads when the template
/// loads, at its line, and again when a task runs it.
#[test]
fn the_server_logs_each_render_problem_of_a_step_once() {
    let work = tempfile::tempdir().unwrap();
    let templates = work.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("template.yaml"),
        r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: rough-each
spec:
  type: service
  steps:
    - id: log
      name: Log
      action: debug:log
      each: ["a", "b"]
      input:
        message: "${{ each.value | nosuchfilter }} ${{ steps.nosuch.output.x }}"
"#,
    )
    .unwrap();
    let server = Server::spawn(
        &work.path().join("data"),
        &["--templates", templates.to_str().unwrap()],
        &[],
    );
    let (status, body) = post(
        &server.base,
        "/v2/tasks",
        json!({ "templateRef": "template:default/rough-each", "values": {} }),
    );
    assert_eq!(status, 201, "{body}");
    let task_id = body["id"].as_str().unwrap();
    let events = wait_for_event(&server.base, task_id, |e| e["type"] == "completion");
    assert!(
        events
            .iter()
            .any(|e| e["body"]["message"] == "Run completed with status: completed"),
        "{events:#?}"
    );
    let log = server.output();
    assert_eq!(log.matches("could not render").count(), 1, "{log}");
    // Once when the template loads, at its line, and once when the task runs.
    assert_eq!(
        log.matches("`steps.nosuch` names no step").count(),
        2,
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "template template:default/rough-each: {}:13:18: spec.steps[0].input.message: \
             `steps.nosuch` names no step",
            templates.join("template.yaml").display()
        )),
        "{log}"
    );
}
