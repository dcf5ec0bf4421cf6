//! Issue 20, a newcomer's first hour with the local commands: `plugin test` checks an
//! action's input as a template step does and speaks one vocabulary of failure kinds;
//! `--plugin` takes a crate directory wherever it takes a component; a plugin's I/O
//! errors read in words, not WASI's error numbers; a second new plugin builds only its own
//! crate; and `--set` keys no parameter declares are warned about.

mod common;

use std::path::Path;

use common::{repo, run_scaffolder as scaffolder, succeeds, text};
use serde_json::Value as Json;

/// The built-in `debug` plugin as a component file in `dir`.
fn debug_component(dir: &Path) -> String {
    let plugin = scaffolder_builtins::plugin("builtin-debug").expect("the debug built-in");
    let file = dir.join("debug.wasm");
    std::fs::write(&file, plugin.bytes).unwrap();
    file.display().to_string()
}

/// Issue 20, item 5: `debug:log`'s schema allows `listWorkspace` only as a boolean or one
/// of two words, but the plugin itself reads any string. A template step with another
/// word fails before the action runs; `plugin test` runs the same check (the engine's
/// function), so it fails there too, with the same message and the kind `invalidInput`,
/// the one spelling its help, its case files and its messages use.
#[test]
fn plugin_test_checks_the_input_as_a_template_step_does() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let component = debug_component(dir);

    std::fs::write(
        dir.join("template.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: { name: t }\n\
         spec:\n  type: service\n  steps:\n    - id: log\n      action: debug:log\n      \
         input: { listWorkspace: with-nothing }\n",
    )
    .unwrap();
    let in_template = scaffolder(dir, &["dry-run", "template.yaml"]);
    assert!(!in_template.status.success());
    let template_stderr = text(&in_template.stderr);
    let expected = "Invalid input passed to action debug:log, instance.listWorkspace";
    assert!(template_stderr.contains(expected), "{template_stderr}");

    let once = scaffolder(
        dir,
        &[
            "plugin",
            "test",
            &component,
            "--action",
            "debug:log",
            "--input",
            r#"{"listWorkspace": "with-nothing"}"#,
        ],
    );
    let stderr = text(&once.stderr);
    assert!(!once.status.success(), "{}\n{stderr}", text(&once.stdout));
    assert!(
        stderr.contains(&format!("debug:log failed (invalidInput): {expected}")),
        "{stderr}"
    );

    // A case expecting that failure passes, with the kind spelt as the help shows it.
    let help = succeeds(dir, &["plugin", "test", "--help"]);
    assert!(help.contains("kind: invalidInput"), "{help}");
    assert!(!help.contains("invalid-input"), "{help}");
    std::fs::write(
        dir.join("enum.yaml"),
        "action: debug:log\ninput: { listWorkspace: with-nothing }\n\
         expect:\n  failure: { kind: invalidInput, message: listWorkspace }\n",
    )
    .unwrap();
    let passed = succeeds(dir, &["plugin", "test", &component, "--case", "enum.yaml"]);
    assert!(passed.contains("1 passed, 0 failed"), "{passed}");

    // Another spelling is refused with the kinds there are, not compared and failed.
    std::fs::write(
        dir.join("kebab.yaml"),
        "action: debug:log\ninput: { listWorkspace: with-nothing }\n\
         expect:\n  failure: { kind: invalid-input }\n",
    )
    .unwrap();
    let refused = scaffolder(dir, &["plugin", "test", &component, "--case", "kebab.yaml"]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("unknown variant `invalid-input`, expected one of `invalidInput`"),
        "{stderr}"
    );
}

/// Issue 20, item 6: `plugin new` prints next steps that work as printed, `--plugin`
/// there naming the crate directory; `dry-run --plugin DIR` builds the crate as
/// `plugin test DIR` does; and a plugin's failed file write reads in words, without the
/// WASI error number (`os error 44`, which on the host would read as another errno).
#[test]
fn plugin_crate_directories_are_accepted_and_io_errors_read_in_words() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let created = succeeds(dir, &["plugin", "new", "hello", "--data-dir", data]);
    let dry_run = created
        .lines()
        .find(|line| line.contains("scaffolder dry-run"))
        .unwrap_or_else(|| panic!("no dry-run step in {created}"));
    assert!(
        !dry_run.contains('<'),
        "a placeholder to fill in: {dry_run}"
    );
    assert!(dry_run.contains("--plugin hello "), "{dry_run}");

    let result: Json = serde_json::from_str(&succeeds(
        dir,
        &[
            "dry-run",
            "hello/example/template.yaml",
            "--plugin",
            "hello",
            "--set",
            "who=World",
            "--json",
            "--data-dir",
            data,
        ],
    ))
    .unwrap();
    assert_eq!(result["output"]["text"][0]["content"], "Hello, World!");

    let failed = scaffolder(
        dir,
        &[
            "plugin",
            "test",
            "hello",
            "--action",
            "hello:greet",
            "--input",
            r#"{"name": "World", "file": "no/such/dir/GREETING.txt"}"#,
        ],
    );
    let stderr = text(&failed.stderr);
    assert!(!failed.status.success());
    assert!(stderr.contains("hello:greet failed (failed)"), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");
}

/// Issue 20, item 8: plugins created beside each other share one target directory, so
/// the second one's build compiles its own crate and none of the dependencies the first
/// one's build compiled (cargo's own lines say which crates it compiled).
#[test]
fn a_second_new_plugin_compiles_only_its_own_crate() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let created = succeeds(dir, &["plugin", "new", "first", "--data-dir", data]);
    assert!(
        created.contains("Builds go to ./target (first/.cargo/config.toml), shared by the plugins"),
        "{created}"
    );
    succeeds(dir, &["plugin", "new", "second", "--data-dir", data]);
    succeeds(dir, &["plugin", "build", "first"]);

    let second = scaffolder(dir, &["plugin", "build", "second"]);
    let stderr = text(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    let compiled: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Compiling "))
        .collect();
    assert!(
        compiled.iter().any(|c| c.starts_with("second ")),
        "{stderr}"
    );
    assert_eq!(compiled.len(), 1, "compiled again: {compiled:?}");
}

/// Issue 20, item 9: a `--set` or `--values` key that no parameter page declares is run
/// (as before) but warned about, naming the key and the parameters there are, since the
/// portal would never send it; declared keys are not.
#[test]
fn undeclared_value_keys_are_warned_about() {
    let work = tempfile::tempdir().unwrap();
    let template = repo().join("examples/docs-site/template.yaml");
    let template = template.to_str().unwrap();
    std::fs::write(work.path().join("values.yaml"), "keepDraft: true\n").unwrap();
    let output = scaffolder(
        work.path(),
        &[
            "dry-run",
            template,
            "--values",
            "values.yaml",
            "--set",
            "name=handbook",
            "--set",
            "nmae=handbook",
        ],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for key in ["nmae", "keepDraft"] {
        assert!(
            stderr.contains(&format!(
                "warning: no parameter is named '{key}' (the portal would not send it); \
                 the parameters are name, keepDrafts"
            )),
            "{stderr}"
        );
    }

    let output = scaffolder(
        work.path(),
        &["dry-run", template, "--set", "name=handbook"],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}
