//! Template trees in memory: read from the template's directory, written into the workspace.
//!
//! Symlinks are read and written as links, never followed; dotfiles are included. File
//! modes (which WASI 0.2's filesystem lacks) are read and kept through the host's `files`
//! interface, so an executable script stays executable.

use std::io;
use std::path::Path;

use scaffolder_plugin_sdk::files;
use scaffolder_template::{EntryKind, SkeletonEntry};

/// The mode of a file that did not come from disk (a download).
pub const DEFAULT_MODE: u32 = 0o644;

/// What a fetch URL points at.
pub enum Content {
    /// A directory: every entry below it, breadth first, names sorted.
    Tree(Vec<SkeletonEntry>),
    /// A single file and its mode.
    File(Vec<u8>, u32),
}

/// Reads the directory or file at `path`.
pub fn read(path: &str) -> io::Result<Content> {
    if std::fs::metadata(path)?.is_dir() {
        Ok(Content::Tree(walk(Path::new(path))?))
    } else {
        let mode = files::mode(path).map_err(io::Error::other)?;
        std::fs::read(path).map(|contents| Content::File(contents, mode))
    }
}

/// Every entry below `root` in the order globby lists them: breadth first, each folder's
/// names sorted byte-wise (as Node's `readdir` returns them).
fn walk(root: &Path) -> io::Result<Vec<SkeletonEntry>> {
    let mut out = Vec::new();
    let mut folders = std::collections::VecDeque::from([(root.to_path_buf(), String::new())]);
    while let Some((dir, prefix)) = folders.pop_front() {
        // The listing carries each entry's type (not following links): no `stat` each.
        let mut names = std::fs::read_dir(&dir)?
            .map(|entry| entry.and_then(|e| Ok((e.file_name(), e.file_type()?))))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file_type) in names {
            let path = dir.join(&name);
            let name = name.to_string_lossy();
            let relative = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            if file_type.is_symlink() {
                let target = std::fs::read_link(&path)?;
                out.push(SkeletonEntry {
                    path: relative,
                    kind: EntryKind::Symlink {
                        target: target.to_string_lossy().into_owned(),
                    },
                });
            } else if file_type.is_dir() {
                out.push(SkeletonEntry {
                    path: relative.clone(),
                    kind: EntryKind::Directory,
                });
                folders.push_back((path, relative));
            } else {
                out.push(SkeletonEntry {
                    path: relative,
                    kind: EntryKind::File {
                        contents: std::fs::read(&path)?,
                        mode: files::mode(&path).map_err(io::Error::other)?,
                    },
                });
            }
        }
    }
    Ok(out)
}

/// Writes one entry at `path`, creating parent directories and replacing an existing file
/// or link (a directory stays a directory).
pub fn write(path: &Path, kind: &EntryKind) -> io::Result<()> {
    match kind {
        EntryKind::Directory => std::fs::create_dir_all(path),
        EntryKind::File { contents, mode } => {
            // Most files go where their folder already is: create it only when missing.
            match std::fs::write(path, contents) {
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    create_parent(path)?;
                    std::fs::write(path, contents)?;
                }
                written => written?,
            }
            files::set_mode(path, *mode).map_err(io::Error::other)
        }
        EntryKind::Symlink { target } => {
            create_parent(path)?;
            if let Ok(existing) = std::fs::symlink_metadata(path)
                && !existing.is_dir()
            {
                std::fs::remove_file(path)?;
            }
            // `std::os::wasi::fs::symlink_path` is unstable; `soft_link` is the stable
            // spelling of the same call on WASI.
            #[allow(deprecated)]
            std::fs::soft_link(target, path)
        }
    }
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent),
        _ => Ok(()),
    }
}
