//! Reads the directory to publish into a tree of entries, as Backstage's publishers
//! stage it: every file, dotfiles included, except `.git` and what `.gitignore` files
//! in the directory exclude; symbolic links are kept as links; empty directories
//! vanish, as git cannot store them.

use std::path::Path;

use ignore::WalkBuilder;
use scaffolder_plugin_sdk::{ActionError, Result};

use crate::objects::{Directory, Entry};

/// Reads `root`; `mode_of` gives a file's permission bits. Returns the tree and the
/// number of files in it.
pub fn read(root: &Path, mode_of: impl Fn(&Path) -> Result<u32>) -> Result<(Directory, usize)> {
    if !root.is_dir() {
        return Err(ActionError::invalid_input(format!(
            "{} is not a directory in the workspace",
            root.display()
        )));
    }
    // `.gitignore` files as custom ignore files, not `git_ignore(true)`: with that, the
    // `ignore` crate reads the `.gitignore` of every directory above `root` (even with
    // `parents(false)`, which only stops it applying them), and `/.gitignore` is outside
    // the workspace: a sandbox denial at every publish. Custom ignore files have the
    // same syntax and are read only in the directories walked.
    let walk = WalkBuilder::new(root)
        .hidden(false)
        .ignore(false)
        .parents(false)
        .git_global(false)
        .git_exclude(false)
        .git_ignore(false)
        .add_custom_ignore_filename(".gitignore")
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    let mut tree = Directory::new();
    let mut files = 0;
    for entry in walk {
        let entry = entry
            .map_err(|err| ActionError::failed(format!("reading the files to publish: {err}")))?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .expect("the walk stays under its root");
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        let read_error = |err: std::io::Error| {
            ActionError::failed(format!("reading {}: {err}", relative.display()))
        };
        let leaf = if file_type.is_file() {
            let content = std::fs::read(path).map_err(read_error)?;
            let executable = mode_of(path)? & 0o111 != 0;
            Entry::File {
                content,
                executable,
            }
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(path).map_err(read_error)?;
            Entry::Symlink {
                target: target.to_string_lossy().into_owned(),
            }
        } else {
            continue;
        };
        insert(&mut tree, relative, leaf)?;
        files += 1;
    }
    Ok((tree, files))
}

fn insert(tree: &mut Directory, relative: &Path, leaf: Entry) -> Result<()> {
    let names: Vec<String> = relative
        .iter()
        .map(|n| {
            n.to_str().map(str::to_owned).ok_or_else(|| {
                ActionError::invalid_input(format!(
                    "{} is not a UTF-8 file name",
                    relative.display()
                ))
            })
        })
        .collect::<Result<_>>()?;
    let (file_name, directories) = names.split_last().expect("a walked entry has a name");
    let mut current = tree;
    for name in directories {
        let entry = current
            .entry(name.clone())
            .or_insert_with(|| Entry::Directory(Directory::new()));
        let Entry::Directory(children) = entry else {
            unreachable!("the walk lists a directory before what it holds");
        };
        current = children;
    }
    current.insert(file_name.clone(), leaf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_exec(_: &Path) -> Result<u32> {
        Ok(0o644)
    }

    #[test]
    fn honours_gitignore_keeps_dotfiles_and_skips_dot_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join(".git/config"), "x").unwrap();
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        std::fs::write(root.join(".env.example"), "A=1").unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
        std::fs::write(root.join("debug.log"), "noise").unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("target/out"), "noise").unwrap();

        let (tree, files) = read(root, no_exec).unwrap();
        let names: Vec<&String> = tree.keys().collect();
        assert_eq!(names, [".env.example", ".gitignore", "src"]);
        assert_eq!(files, 3);
    }

    #[test]
    fn a_nested_gitignore_applies_below_it_and_one_above_the_root_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "*.md\n").unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("README.md"), "kept").unwrap();
        std::fs::write(root.join("docs/.gitignore"), "*.tmp\n!keep.tmp\n").unwrap();
        std::fs::write(root.join("docs/a.tmp"), "ignored").unwrap();
        std::fs::write(root.join("docs/keep.tmp"), "kept").unwrap();
        std::fs::write(root.join("b.tmp"), "kept: the rule is below").unwrap();

        let (tree, files) = read(&root, no_exec).unwrap();
        let Some(Entry::Directory(docs)) = tree.get("docs") else {
            panic!("docs is a directory: {tree:?}");
        };
        assert_eq!(
            tree.keys().collect::<Vec<_>>(),
            ["README.md", "b.tmp", "docs"]
        );
        assert_eq!(docs.keys().collect::<Vec<_>>(), [".gitignore", "keep.tmp"]);
        assert_eq!(files, 4);
    }
}
