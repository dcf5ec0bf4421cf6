//! The files of a local run on disk: an output directory that must be new or empty, the
//! run's files written into it (a link only when its target stays inside), and the tree
//! `dry-run` prints.

use std::path::Path;

use anyhow::{Context, bail};
use scaffolder_engine::DryRunFile;

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

/// `├── src/` style lines for the paths; executables marked with `*`, links with their
/// target.
pub fn file_tree(files: &[DryRunFile]) -> String {
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
