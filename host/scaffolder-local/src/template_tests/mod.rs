//! `scaffolder test [DIR]`: regression tests for templates. Every `template.yaml` with a
//! `tests/` folder beside it is a template under test, and every `tests/*.yaml` there is a
//! case: values and secrets in, and what must come out (a snapshot of the files, per-file
//! assertions, the rendered `spec.output`, or a failure). Each case runs exactly as
//! `scaffolder dry-run` runs a template (`session::checked_inputs`, then the engine's
//! `LocalRunner` in one `LocalSession`), so a case's files are the dry run's files.
//!
//! The case format, one YAML file per case (unknown keys are refused with their name):
//!
//! ```yaml
//! name: a service with the defaults     # optional, shown beside the file name
//! description: only the required values # optional, for the reader
//! values: { name: billing, owner: group:default/payments }
//! secrets: { GIT_TOKEN: test-token }    # never printed, `***` in snapshots
//! expect:
//!   snapshot: true        # default for a case that must succeed: tests/<case>.snapshot/
//!   files:                # per-file assertions, by path in the workspace
//!     Dockerfile: { contains: EXPOSE 8080, executable: false }
//!     LICENSE: { equals: "MIT License\n" }
//!     .env: absent
//!   output:               # a subset of the rendered spec.output
//!     links: [{ title: Repository, url: https://example.com/billing }]
//!   failure:              # the run must fail (no snapshot then)
//!     message: is required
//!     step: fetch         # optional: the step that failed
//! ```
//!
//! Deliberately absent: running actions for real (a case is always a dry run, so
//! `publish:*` and the like are skipped with example outputs, as in Backstage's dry run),
//! and parallel cases (each run is short; output stays in order).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use scaffolder_engine::{DryRunFile, LocalRunRequest, Redactor, TemplateFiles};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use tokio_util::sync::CancellationToken;

use crate::session::{self, LocalSession};
use crate::values;

mod snapshot;

use snapshot::{compare_snapshot, indent, unified_diff, write_snapshot};

/// One case file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: Option<String>,
    #[allow(dead_code, reason = "for the reader of the case file")]
    description: Option<String>,
    /// Parameter values, as the portal's form would hold them before its defaults.
    #[serde(default)]
    values: Map<String, Json>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    expect: ExpectFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    /// Compare the files with `tests/<case>.snapshot/`; default: when no failure is expected.
    snapshot: Option<bool>,
    /// Path → `absent`, or `{ equals, contains, executable, link }`.
    #[serde(default)]
    files: Map<String, Json>,
    /// A subset of `spec.output`.
    output: Option<Json>,
    failure: Option<ExpectedFailure>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFailure {
    /// Text the error message must contain.
    message: Option<String>,
    /// The id of the step that must have failed.
    step: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAssertion {
    /// The whole text, exactly.
    equals: Option<String>,
    /// Texts the file must contain: one, or a list.
    contains: Option<OneOrMore>,
    /// The execute bit.
    executable: Option<bool>,
    /// The file is a link with this target.
    link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl OneOrMore {
    fn texts(&self) -> &[String] {
        match self {
            Self::One(text) => std::slice::from_ref(text),
            Self::More(texts) => texts,
        }
    }
}

/// A case ready to run.
#[derive(Debug)]
pub struct Case {
    file: PathBuf,
    name: Option<String>,
    values: Json,
    secrets: Map<String, Json>,
    snapshot: Option<PathBuf>,
    files: Vec<(String, FileExpectation)>,
    output: Option<Json>,
    failure: Option<ExpectedFailure>,
}

#[derive(Debug)]
enum FileExpectation {
    Absent,
    Present(FileAssertion),
}

/// `tests/*.yaml` (and `.yml`) in file-name order, each checked.
pub fn read_cases(tests: &Path) -> anyhow::Result<Vec<Case>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tests)
        .with_context(|| format!("cannot read {}", tests.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "{} holds no case files; add one (tests/<case>.yaml with `values` and `expect`)",
            tests.display()
        );
    }
    files.iter().map(|file| read_case(file)).collect()
}

fn read_case(file: &Path) -> anyhow::Result<Case> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {shown}"))?;
    let value = match values::parse_yaml(&text, &shown)? {
        Json::Null => Json::Object(Map::new()),
        value => value,
    };
    let parsed: CaseFile = serde_path_to_error::deserialize(value).map_err(|err| {
        let at = err.path().to_string();
        let place = if at == "." {
            String::new()
        } else {
            format!(" at `{at}`")
        };
        anyhow::anyhow!("{shown} is not a test case{place}: {}", err.inner())
    })?;
    let expect = parsed.expect;
    let snapshot = expect
        .snapshot
        .unwrap_or(expect.failure.is_none())
        .then(|| snapshot_dir(file));
    if snapshot.is_some() && expect.failure.is_some() {
        bail!("{shown}: a case that expects a failure has no snapshot; drop `expect.snapshot`");
    }
    let mut files = Vec::new();
    for (path, expectation) in expect.files {
        let expectation = match expectation {
            Json::String(word) if word == "absent" => FileExpectation::Absent,
            Json::Object(_) => {
                FileExpectation::Present(serde_path_to_error::deserialize(expectation).map_err(
                    |err| anyhow::anyhow!("{shown} at `expect.files.{path}`: {}", err.inner()),
                )?)
            }
            other => bail!(
                "{shown} at `expect.files.{path}`: expected `absent` or an object of \
                 `equals`, `contains`, `executable`, `link`, not {other}"
            ),
        };
        files.push((path, expectation));
    }
    Ok(Case {
        file: file.to_path_buf(),
        name: parsed.name,
        values: Json::Object(parsed.values),
        secrets: parsed
            .secrets
            .into_iter()
            .map(|(k, v)| (k, Json::String(v)))
            .collect(),
        snapshot,
        files,
        output: expect.output,
        failure: expect.failure,
    })
}

/// `tests/<case>.snapshot/` beside `tests/<case>.yaml`.
fn snapshot_dir(case_file: &Path) -> PathBuf {
    let stem = case_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    case_file.with_file_name(format!("{stem}.snapshot"))
}

/// `DIR` itself when it holds `template.yaml`, else every directory under it that holds
/// a `template.yaml` and a `tests/` folder (a template's own directory is not searched
/// further, so its skeletons are never taken for templates).
pub fn find_templates(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir.join("template.yaml").is_file() {
        if !dir.join("tests").is_dir() {
            bail!(
                "{} has no tests/ folder beside template.yaml; add tests/<case>.yaml files",
                dir.display()
            );
        }
        return Ok(vec![dir.to_path_buf()]);
    }
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; give a template's directory or a directory of them",
            dir.display()
        );
    }
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        if next.join("template.yaml").is_file() {
            if next.join("tests").is_dir() {
                found.push(next);
            }
            continue;
        }
        let entries =
            std::fs::read_dir(&next).with_context(|| format!("cannot read {}", next.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let hidden = name.to_string_lossy().starts_with('.');
            let skipped = matches!(name.to_str(), Some("node_modules" | "target"));
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !hidden && !skipped {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    if found.is_empty() {
        bail!(
            "no template with tests under {}: a template under test is a template.yaml with a \
             tests/ folder of case files beside it",
            dir.display()
        );
    }
    Ok(found)
}

/// `rust-service/tests/defaults.yaml (a service with the defaults)`.
pub fn case_label(root: &Path, case: &Case) -> String {
    let path = case.file.strip_prefix(root).unwrap_or(&case.file);
    match &case.name {
        Some(name) => format!("{} ({name})", path.display()),
        None => path.display().to_string(),
    }
}

/// What a case found wrong (empty: it passed), and the snapshot it rewrote.
pub struct Outcome {
    /// What differed from the expectations; empty when the case passed.
    pub problems: Vec<String>,
    /// The snapshot directory `--update` rewrote.
    pub updated: Option<PathBuf>,
}

/// How a run ended.
enum Ran {
    Succeeded {
        files: Vec<DryRunFile>,
        output: Json,
    },
    Failed {
        message: String,
        step: Option<String>,
        log: Vec<String>,
    },
}

pub async fn run_case(
    session: &LocalSession,
    template_file: &Path,
    template: &scaffolder_template::Template,
    case: &Case,
    update: bool,
) -> Outcome {
    let redactor = Redactor::new(case.secrets.values().filter_map(Json::as_str));
    let ran = run_once(session, template_file, template, case).await;
    let mut problems = Vec::new();
    let mut updated = None;
    match (&ran, &case.failure) {
        (Ran::Failed { message, step, .. }, Some(expected)) => {
            if let Some(text) = &expected.message
                && !message.contains(text.as_str())
            {
                problems.push(format!(
                    "the run failed, but not with {text:?}:\n{}",
                    indent(message)
                ));
            }
            if let Some(expected_step) = &expected.step
                && step.as_deref() != Some(expected_step.as_str())
            {
                problems.push(match step {
                    Some(step) => format!(
                        "step '{step}' failed, not step '{expected_step}':\n{}",
                        indent(message)
                    ),
                    None => format!(
                        "the run failed before any step ran, not at step '{expected_step}':\n{}",
                        indent(message)
                    ),
                });
            }
        }
        (Ran::Failed { message, step, log }, None) => {
            let at = step
                .as_ref()
                .map(|s| format!(" at step '{s}'"))
                .unwrap_or_default();
            let mut problem = format!("the run failed{at}:\n{}", indent(message));
            if !log.is_empty() {
                problem.push_str("\n  the step's log:\n");
                problem.push_str(&indent(&log.join("\n")));
            }
            problems.push(problem);
        }
        (Ran::Succeeded { .. }, Some(expected)) => problems.push(format!(
            "the run succeeded, but a failure{}{} was expected",
            expected
                .message
                .as_ref()
                .map(|m| format!(" containing {m:?}"))
                .unwrap_or_default(),
            expected
                .step
                .as_ref()
                .map(|s| format!(" at step '{s}'"))
                .unwrap_or_default(),
        )),
        (Ran::Succeeded { files, output }, None) => {
            if let Some(expected) = &case.output {
                let mut differences = Vec::new();
                subset(expected, output, "output", &mut differences);
                if !differences.is_empty() {
                    problems.push(format!(
                        "spec.output differs:\n{}\n  the rendered output:\n{}",
                        indent(&differences.join("\n")),
                        indent(&serde_json::to_string_pretty(output).unwrap_or_default())
                    ));
                }
            }
            for (path, expectation) in &case.files {
                problems.extend(check_file(files, path, expectation));
            }
            if let Some(snapshot) = &case.snapshot {
                let redacted = redacted_files(files, &redactor);
                match compare_snapshot(snapshot, &redacted) {
                    Ok(differences) if differences.is_empty() => {}
                    Ok(_) | Err(_) if update => match write_snapshot(snapshot, &redacted) {
                        Ok(()) => updated = Some(snapshot.clone()),
                        Err(err) => problems.push(format!("{err:#}")),
                    },
                    Ok(differences) => problems.push(format!(
                        "the files differ from the snapshot {}:\n{}\n  run `scaffolder test --update` to accept the new files",
                        snapshot.display(),
                        indent(&differences.join("\n"))
                    )),
                    Err(err) => problems.push(format!("{err:#}")),
                }
            }
        }
    }
    // Nothing printed carries a value of the case's secrets.
    Outcome {
        problems: problems.iter().map(|p| redactor.redact(p)).collect(),
        updated,
    }
}

/// The case run as `scaffolder dry-run` runs a template.
async fn run_once(
    session: &LocalSession,
    template_file: &Path,
    template: &scaffolder_template::Template,
    case: &Case,
) -> Ran {
    let failed = |message: String| Ran::Failed {
        message,
        step: None,
        log: Vec::new(),
    };
    let values = match session::checked_inputs(
        template_file,
        template,
        case.values.clone(),
        &case.secrets,
    ) {
        Ok(values) => values,
        Err(problem) => return failed(problem.to_string()),
    };
    if let Err(err) = session.check_actions(template) {
        return failed(format!("{err:#}"));
    }
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let result = session
        .runner
        .run(LocalRunRequest {
            template: template.clone(),
            values,
            secrets: case.secrets.clone(),
            files: TemplateFiles::File(template_file.to_path_buf()),
            user: None,
            execute: false,
            events: Some(sender),
            cancel: CancellationToken::new(),
        })
        .await;
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    match result {
        Ok(result) => Ran::Succeeded {
            files: result.directory_contents,
            output: result.output,
        },
        Err(failure) => {
            let step = events
                .iter()
                .find(|e| e["status"] == "failed")
                .and_then(|e| e["stepId"].as_str())
                .map(str::to_owned);
            let log = events
                .iter()
                .filter(|e| step.is_some() && e["stepId"].as_str() == step.as_deref())
                .filter(|e| e.get("status").is_none())
                .filter_map(|e| e["message"].as_str())
                .map(|line| console::strip_ansi_codes(line).into_owned())
                .collect();
            Ran::Failed {
                message: failure.to_string(),
                step,
                log,
            }
        }
    }
}

/// The problems of one per-file assertion.
fn check_file(files: &[DryRunFile], path: &str, expectation: &FileExpectation) -> Vec<String> {
    let file = files.iter().find(|f| f.path == path);
    let assertion = match (expectation, file) {
        (FileExpectation::Absent, None) => return Vec::new(),
        (FileExpectation::Absent, Some(_)) => {
            return vec![format!("{path}: created, but expected absent")];
        }
        (FileExpectation::Present(_), None) => {
            return vec![format!(
                "{path}: not created (created: {})",
                files
                    .iter()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )];
        }
        (FileExpectation::Present(assertion), Some(_)) => assertion,
    };
    let file = file.expect("matched above");
    let text = String::from_utf8_lossy(&file.content);
    let mut problems = Vec::new();
    if let Some(target) = &assertion.link {
        if !file.symlink {
            problems.push(format!("{path}: not a link"));
        } else if text != *target {
            problems.push(format!("{path}: links to {text:?}, not {target:?}"));
        }
    } else if file.symlink {
        problems.push(format!("{path}: a link to {text:?}, not a file"));
    }
    if let Some(expected) = &assertion.equals
        && text != *expected
    {
        problems.push(format!(
            "{path}: the contents differ\n{}",
            indent(&unified_diff(expected, &text, "expected", "created"))
        ));
    }
    for needle in assertion.contains.iter().flat_map(OneOrMore::texts) {
        if !text.contains(needle.as_str()) {
            problems.push(format!(
                "{path}: does not contain {needle:?}; it holds:\n{}",
                indent(&text)
            ));
        }
    }
    if let Some(executable) = assertion.executable
        && file.executable != executable
    {
        problems.push(format!(
            "{path}: {}executable, expected {}",
            if file.executable { "" } else { "not " },
            if executable {
                "executable"
            } else {
                "not executable"
            }
        ));
    }
    problems
}

/// The files with the case's secret values replaced by `***`, as a snapshot holds them.
fn redacted_files(files: &[DryRunFile], redactor: &Redactor) -> Vec<DryRunFile> {
    files
        .iter()
        .map(|file| {
            let mut file = file.clone();
            if let Ok(text) = std::str::from_utf8(&file.content) {
                file.content = redactor.redact(text).into_bytes();
            }
            file
        })
        .collect()
}

/// Where `actual` does not hold `expected`: objects may have more keys, arrays must have
/// the same length, anything else must be equal (numbers by value).
fn subset(expected: &Json, actual: &Json, at: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Json::Object(expected), Json::Object(actual)) => {
            for (key, value) in expected {
                let here = format!("{at}.{key}");
                match actual.get(key) {
                    Some(got) => subset(value, got, &here, out),
                    None => out.push(format!("{here}: missing, expected {value}")),
                }
            }
        }
        (Json::Array(expected), Json::Array(actual)) => {
            if expected.len() != actual.len() {
                out.push(format!(
                    "{at}: {}, expected {}",
                    crate::plural::plural(actual.len(), "item", "items"),
                    expected.len()
                ));
                return;
            }
            for (index, (value, got)) in expected.iter().zip(actual).enumerate() {
                subset(value, got, &format!("{at}[{index}]"), out);
            }
        }
        (Json::Number(a), Json::Number(b)) if a.as_f64() == b.as_f64() => {}
        _ if expected == actual => {}
        _ => out.push(format!("{at}: {actual}, expected {expected}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(expected: Json, actual: Json) -> Vec<String> {
        let mut out = Vec::new();
        subset(&expected, &actual, "output", &mut out);
        out
    }

    #[test]
    fn output_is_compared_as_a_subset_with_arrays_of_the_same_length() {
        let actual = json!({ "links": [{ "title": "Repo", "url": "u", "icon": "git" }], "n": 3 });
        assert!(problems(json!({ "links": [{ "title": "Repo" }] }), actual.clone()).is_empty());
        assert!(problems(json!({ "n": 3.0 }), actual.clone()).is_empty());
        assert_eq!(
            problems(json!({ "links": [{ "title": "Other" }] }), actual.clone()),
            ["output.links[0].title: \"Repo\", expected \"Other\""]
        );
        assert_eq!(
            problems(json!({ "links": [] }), actual.clone()),
            ["output.links: 1 item, expected 0"]
        );
        assert_eq!(
            problems(json!({ "text": [] }), actual),
            ["output.text: missing, expected []"]
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("case.yaml");
        std::fs::write(&file, "values: {}\nexpect:\n  outputs: {}\n").unwrap();
        let err = read_case(&file).unwrap_err().to_string();
        assert!(
            err.contains("case.yaml is not a test case at `expect.outputs`"),
            "{err}"
        );
        assert!(err.contains("unknown field `outputs`"), "{err}");
        std::fs::write(&file, "expect:\n  files:\n    a.txt: { contain: x }\n").unwrap();
        let err = read_case(&file).unwrap_err().to_string();
        assert!(err.contains("at `expect.files.a.txt`"), "{err}");
        assert!(err.contains("unknown field `contain`"), "{err}");
        std::fs::write(&file, "expect:\n  files:\n    a.txt: gone\n").unwrap();
        let err = read_case(&file).unwrap_err().to_string();
        assert!(err.contains("expected `absent` or an object"), "{err}");
    }

    #[test]
    fn a_case_that_must_succeed_has_a_snapshot_unless_it_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("basic.yaml");
        std::fs::write(&file, "values: { name: x }\n").unwrap();
        let case = read_case(&file).unwrap();
        assert_eq!(case.snapshot, Some(dir.path().join("basic.snapshot")));
        std::fs::write(&file, "expect: { snapshot: false }\n").unwrap();
        assert_eq!(read_case(&file).unwrap().snapshot, None);
        std::fs::write(&file, "expect: { failure: { message: x } }\n").unwrap();
        assert_eq!(read_case(&file).unwrap().snapshot, None);
    }

    fn file(path: &str, content: &str, executable: bool) -> DryRunFile {
        DryRunFile {
            path: path.into(),
            executable,
            content: content.as_bytes().to_vec(),
            symlink: false,
        }
    }

    #[test]
    fn a_snapshot_is_compared_exactly_and_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("case.snapshot");
        let files = [
            file("README.md", "one\ntwo\n", false),
            file("run.sh", "#!/bin/sh\n", true),
        ];
        write_snapshot(&snapshot, &files).unwrap();
        assert!(compare_snapshot(&snapshot, &files).unwrap().is_empty());
        let changed = [
            file("README.md", "one\nthree\n", false),
            file("run.sh", "#!/bin/sh\n", false),
            file("new.txt", "", false),
        ];
        let differences = compare_snapshot(&snapshot, &changed).unwrap();
        assert_eq!(
            differences,
            [
                "README.md:\n--- snapshot\n+++ created\n@@ -1,2 +1,2 @@\n one\n-two\n+three\n",
                "created, not in the snapshot: new.txt",
                "run.sh: executable in the snapshot, not executable now",
            ]
        );
        let fewer = [file("README.md", "one\ntwo\n", false)];
        assert_eq!(
            compare_snapshot(&snapshot, &fewer).unwrap(),
            ["in the snapshot, not created: run.sh"]
        );
        let err = compare_snapshot(&dir.path().join("none.snapshot"), &files).unwrap_err();
        assert!(err.to_string().contains("no snapshot yet"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_snapshots() {
        let redactor = Redactor::new(["s3cr3t"]);
        let files = redacted_files(&[file("a.txt", "token: s3cr3t\n", false)], &redactor);
        assert_eq!(files[0].content, b"token: ***\n");
    }
}
