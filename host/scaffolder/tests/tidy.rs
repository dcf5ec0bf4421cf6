//! Checks on the repository itself, run with every `cargo test`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn architecture_names_every_crate() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for group in ["host", "plugins", "tests", "tests/guests"] {
        for entry in std::fs::read_dir(root().join(group)).unwrap().flatten() {
            if !entry.path().join("Cargo.toml").exists() {
                continue;
            }
            let folder = format!("{group}/{}", entry.file_name().to_string_lossy());
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                architecture.contains(&format!("`{folder}/`"))
                    || architecture.contains(&format!("`{name}`")),
                "ARCHITECTURE.md does not mention {folder}"
            );
        }
    }
}

#[test]
fn no_debugging_leftovers_in_shipped_code() {
    let mut files = Vec::new();
    for dir in ["host", "plugins"] {
        rust_files(&root().join(dir), &mut files);
    }
    for file in files {
        if file.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in ["dbg!(", "todo!(", "unimplemented!("] {
            assert!(
                !text.contains(needle),
                "{} contains {needle}",
                file.display()
            );
        }
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run must run `cargo test`"
    );
    assert!(
        readme.contains("```sh\ncargo test\n```"),
        "README must give `cargo test` as the test command"
    );
}
