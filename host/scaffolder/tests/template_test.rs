//! `scaffolder test` as a template author runs it: every example's cases pass; a template
//! whose files change fails with a unified diff and a non-zero exit until `--update`
//! rewrites its snapshot; an expected failure that does not happen fails; an unknown key
//! in a case file is an error naming the key and the file; a case's secrets are never
//! printed nor written into a snapshot. And `scaffolder dry-run` fills in the parameters'
//! defaults as the portal's form does.

mod common;

use std::path::Path;
use std::process::Output;

use common::{repo, run_scaffolder as scaffolder, text};

/// `scaffolder test <args> --data-dir <data>` in `dir`.
fn test(dir: &Path, data: &Path, args: &[&str]) -> Output {
    let mut all = vec!["test"];
    all.extend(args);
    all.extend(["--data-dir", data.to_str().unwrap()]);
    scaffolder(dir, &all)
}

fn passes(output: &Output) -> String {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

fn fails(output: &Output) -> String {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    format!("{stdout}\n{stderr}")
}

/// Every template in `examples/` has cases, and they all pass: `scaffolder test examples`
/// is what CI runs for the examples.
#[test]
fn every_example_passes_its_cases() {
    let data = tempfile::tempdir().unwrap();
    let stdout = passes(&test(&repo(), data.path(), &["examples"]));
    for example in [
        "backstage-registry",
        "components",
        "docs-site",
        "golden-path",
        "register-existing",
        "rust-service",
        "wasm-plugin",
    ] {
        assert!(
            stdout.contains(&format!("test {example}/tests/")),
            "{example} has no case:\n{stdout}"
        );
    }
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("test result: "))
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    assert!(
        summary.starts_with("test result: ok.") && summary.contains("; 0 failed;"),
        "{summary}"
    );
    // The failure cases are there too, and pass.
    assert!(
        stdout.contains("test rust-service/tests/missing-owner.yaml"),
        "{stdout}"
    );
}

const SECRET: &str = "s3cr3t-value-never-printed";

/// A template whose skeleton greets `name` and writes the task secret into a file.
fn write_template(dir: &Path, greeting: &str) {
    std::fs::create_dir_all(dir.join("skeleton")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("template.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: { name: greet }\n\
         spec:\n  type: service\n  parameters:\n    - required: [name]\n      properties:\n        \
         name: { type: string }\n        shout: { type: boolean, default: true }\n  steps:\n    \
         - id: fetch\n      action: fetch:template\n      input:\n        url: ./skeleton\n        \
         values:\n          name: ${{ parameters.name }}\n          shout: ${{ parameters.shout }}\n          \
         token: ${{ secrets.TOKEN }}\n  output:\n    text:\n      - title: Greeting\n        \
         content: ${{ parameters.name }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("skeleton/README.md"),
        format!("{greeting} ${{{{ values.name }}}}{{% if values.shout %}}!{{% endif %}}\nline two\nline three\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("skeleton/token.txt"),
        "token: ${{ values.token }}\n",
    )
    .unwrap();
}

/// The case: values, a secret, the output and one file checked, and a snapshot.
fn write_case(dir: &Path) {
    std::fs::write(
        dir.join("tests/basic.yaml"),
        format!(
            "name: greets billing\nvalues: {{ name: billing }}\nsecrets: {{ TOKEN: {SECRET} }}\n\
             expect:\n  output: {{ text: [{{ content: billing }}] }}\n  files:\n    \
             README.md: {{ contains: billing! }}\n    missing.txt: absent\n"
        ),
    )
    .unwrap();
}

/// The snapshot life cycle: missing (a failure that says to run `--update`), created by
/// `--update` with the secret redacted, matched, then a template change fails with a
/// unified diff per file and the case's name, until `--update` accepts it.
#[test]
fn a_changed_template_fails_with_a_diff_until_update_rewrites_the_snapshot() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = work.path().join("greet");
    write_template(&dir, "Hello");
    write_case(&dir);

    let out = fails(&test(work.path(), data.path(), &["greet"]));
    assert!(out.contains("no snapshot yet"), "{out}");
    assert!(out.contains("scaffolder test --update"), "{out}");
    assert!(
        out.contains("test result: FAILED. 0 passed; 1 failed;"),
        "{out}"
    );

    let out = passes(&test(work.path(), data.path(), &["greet", "--update"]));
    assert!(out.contains("updated greet/tests/basic.snapshot"), "{out}");
    let snapshot = dir.join("tests/basic.snapshot");
    // The default (shout: true) was applied, as the portal's form would.
    assert_eq!(
        std::fs::read_to_string(snapshot.join("README.md")).unwrap(),
        "Hello billing!\nline two\nline three\n"
    );
    assert_eq!(
        std::fs::read_to_string(snapshot.join("token.txt")).unwrap(),
        "token: ***\n"
    );
    let out = passes(&test(work.path(), data.path(), &["greet"]));
    assert!(
        out.contains("test greet/tests/basic.yaml (greets billing) ... ok"),
        "{out}"
    );
    assert!(
        out.contains("test result: ok. 1 passed; 0 failed;"),
        "{out}"
    );

    // The template changes: the case fails with a diff of the file, and never shows the
    // secret, even though the template writes it into a file.
    write_template(&dir, "Goodbye");
    std::fs::write(dir.join("skeleton/extra.txt"), "new\n").unwrap();
    let out = fails(&test(work.path(), data.path(), &["greet"]));
    assert!(
        out.contains("test greet/tests/basic.yaml (greets billing) ... FAILED"),
        "{out}"
    );
    assert!(
        out.contains("--- snapshot\n      +++ created\n      @@ -1,3 +1,3 @@\n      -Hello billing!\n      +Goodbye billing!\n       line two"),
        "{out}"
    );
    assert!(
        out.contains("created, not in the snapshot: extra.txt"),
        "{out}"
    );
    assert!(
        out.contains("failures:\n    greet/tests/basic.yaml"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");

    passes(&test(work.path(), data.path(), &["greet", "--update"]));
    assert_eq!(
        std::fs::read_to_string(snapshot.join("README.md")).unwrap(),
        "Goodbye billing!\nline two\nline three\n"
    );
    assert!(snapshot.join("extra.txt").is_file());
    passes(&test(work.path(), data.path(), &["greet"]));

    // A per-file assertion or the output that does not hold fails even with --update,
    // which only rewrites snapshots.
    std::fs::write(
        dir.join("tests/basic.yaml"),
        "values: { name: billing }\nsecrets: { TOKEN: x }\nexpect:\n  output: { text: [{ content: ledger }] }\n  \
         files:\n    README.md: { equals: \"Hello billing!\\n\" }\n",
    )
    .unwrap();
    let out = fails(&test(work.path(), data.path(), &["greet", "--update"]));
    assert!(
        out.contains("output.text[0].content: \"billing\", expected \"ledger\""),
        "{out}"
    );
    assert!(
        out.contains("README.md: the contents differ\n      --- expected\n      +++ created"),
        "{out}"
    );
}

/// An expected failure that does not happen fails the case; one that happens at the
/// named step with the named text passes; unknown keys are refused before anything runs.
#[test]
fn expected_failures_must_happen_and_unknown_keys_are_errors() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = work.path().join("greet");
    write_template(&dir, "Hello");
    let case = dir.join("tests/fails.yaml");

    std::fs::write(
        &case,
        "values: { name: billing }\nsecrets: { TOKEN: x }\nexpect:\n  failure: { message: is required }\n",
    )
    .unwrap();
    let out = fails(&test(work.path(), data.path(), &["greet"]));
    assert!(
        out.contains("the run succeeded, but a failure containing \"is required\" was expected"),
        "{out}"
    );

    std::fs::write(
        &case,
        "values: {}\nexpect:\n  failure: { message: \"values.name: is required\" }\n",
    )
    .unwrap();
    passes(&test(work.path(), data.path(), &["greet"]));

    // A step that fails: the step id is checked too.
    std::fs::write(
        dir.join("template.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: { name: greet }\n\
         spec:\n  type: service\n  steps:\n    - id: fetch\n      action: fetch:plain\n      \
         input: { url: ./nowhere }\n",
    )
    .unwrap();
    std::fs::write(&case, "expect:\n  failure: { step: fetch }\n").unwrap();
    passes(&test(work.path(), data.path(), &["greet"]));
    std::fs::write(&case, "expect:\n  failure: { step: publish }\n").unwrap();
    let out = fails(&test(work.path(), data.path(), &["greet"]));
    assert!(
        out.contains("step 'fetch' failed, not step 'publish'"),
        "{out}"
    );

    std::fs::write(&case, "valeus: { name: billing }\n").unwrap();
    let out = fails(&test(work.path(), data.path(), &["greet"]));
    assert!(out.contains("fails.yaml is not a test case"), "{out}");
    assert!(out.contains("unknown field `valeus`"), "{out}");
    assert!(!out.contains("test result"), "nothing ran: {out}");
}

/// `scaffolder dry-run` of `examples/rust-service` with only the required values creates
/// what the portal would: the Dockerfile (`docker` defaults to true) on port 8080.
#[test]
fn dry_run_fills_in_the_parameters_defaults() {
    let work = tempfile::tempdir().unwrap();
    let template = repo().join("examples/rust-service/template.yaml");
    let output = scaffolder(
        work.path(),
        &[
            "dry-run",
            template.to_str().unwrap(),
            "--set",
            "name=billing",
            "--set",
            "owner=group:default/payments",
            "--output",
            "out",
        ],
    );
    passes(&output);
    let dockerfile = std::fs::read_to_string(work.path().join("out/Dockerfile")).unwrap();
    assert!(dockerfile.contains("EXPOSE 8080"), "{dockerfile}");
    let cargo = std::fs::read_to_string(work.path().join("out/Cargo.toml")).unwrap();
    assert!(
        cargo.contains("description = \"A Rust service\""),
        "{cargo}"
    );
}
