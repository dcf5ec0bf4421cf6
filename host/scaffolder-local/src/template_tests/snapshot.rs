//! A case's snapshot: `tests/<case>.snapshot/`, the files a run wrote, compared file by
//! file (content as a unified diff, kind, execute bit) and rewritten by `--update`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use scaffolder_engine::DryRunFile;

/// What differs between the snapshot and the run's files, one readable item each.
pub(super) fn compare_snapshot(
    snapshot: &Path,
    files: &[DryRunFile],
) -> anyhow::Result<Vec<String>> {
    let created: Entries = files
        .iter()
        .map(|f| (f.path.clone(), (f.content.clone(), f.executable, f.symlink)))
        .collect();
    if !snapshot.exists() {
        if created.is_empty() {
            return Ok(Vec::new());
        }
        bail!(
            "no snapshot yet: run `scaffolder test --update` to create {} from this run's {}",
            snapshot.display(),
            crate::plural::plural(created.len(), "file", "files")
        );
    }
    let mut stored = Entries::new();
    read_snapshot(snapshot, snapshot, &mut stored)
        .with_context(|| format!("cannot read the snapshot {}", snapshot.display()))?;
    let mut differences = Vec::new();
    for (path, (content, executable, link)) in &created {
        let Some((old, old_executable, old_link)) = stored.get(path) else {
            differences.push(format!("created, not in the snapshot: {path}"));
            continue;
        };
        if link != old_link {
            differences.push(format!(
                "{path}: a {} in the snapshot, a {} now",
                kind(*old_link),
                kind(*link)
            ));
        } else if content != old {
            match (std::str::from_utf8(old), std::str::from_utf8(content)) {
                (Ok(old), Ok(new)) => differences.push(format!(
                    "{path}:\n{}",
                    unified_diff(old, new, "snapshot", "created")
                )),
                _ => differences.push(format!(
                    "{path}: binary contents differ ({} in the snapshot, {} now)",
                    crate::plural::plural(old.len(), "byte", "bytes"),
                    content.len()
                )),
            }
        }
        if executable != old_executable && !link {
            differences.push(format!(
                "{path}: {} in the snapshot, {} now",
                executable_word(*old_executable),
                executable_word(*executable)
            ));
        }
    }
    for path in stored.keys().filter(|p| !created.contains_key(*p)) {
        differences.push(format!("in the snapshot, not created: {path}"));
    }
    Ok(differences)
}

fn kind(link: bool) -> &'static str {
    if link { "link" } else { "file" }
}

fn executable_word(executable: bool) -> &'static str {
    if executable {
        "executable"
    } else {
        "not executable"
    }
}

/// One entry of a snapshot or of a run: contents (a link's target), execute bit, link.
type Entries = BTreeMap<String, (Vec<u8>, bool, bool)>;

/// A snapshot directory's files, links read as links.
fn read_snapshot(root: &Path, dir: &Path, out: &mut Entries) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .into_owned();
        if kind.is_dir() {
            read_snapshot(root, &path, out)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            out.insert(
                relative,
                (target.as_os_str().as_bytes().to_vec(), false, true),
            );
        } else if kind.is_file() {
            let mode = entry.metadata()?.permissions().mode();
            out.insert(relative, (std::fs::read(&path)?, mode & 0o111 != 0, false));
        }
    }
    Ok(())
}

/// Replaces the snapshot directory with the run's files.
pub(super) fn write_snapshot(snapshot: &Path, files: &[DryRunFile]) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(snapshot) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("cannot replace {}", snapshot.display()));
        }
    }
    std::fs::create_dir_all(snapshot)
        .with_context(|| format!("cannot create {}", snapshot.display()))?;
    crate::files::write_files(snapshot, files)
}

/// `git diff`-style hunks between two texts.
pub(super) fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .missing_newline_hint(true)
        .to_string()
}

/// Each line two spaces further in.
pub(super) fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
