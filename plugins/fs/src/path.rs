//! Paths written by template authors, resolved inside the workspace the way Backstage's
//! `resolveSafeChildPath` resolves them: relative to the workspace root, `.` and `..`
//! collapsed lexically, absolute paths accepted only when they point into the workspace.
//! The sandbox refuses anything outside the workspace anyway; resolving first turns an
//! escape into a clear input error instead of a denied file operation halfway through.

use std::io;
use std::path::Path;

use scaffolder_plugin_sdk::ActionError;

/// A path inside the workspace: `/`-separated, relative to the workspace root, without
/// empty, `.` or `..` components. The empty path is the workspace itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePath {
    relative: String,
}

impl WorkspacePath {
    /// Resolves `input` inside `workspace` (the workspace's absolute path, as the step
    /// sees it), or fails when it refers to something outside.
    pub fn resolve(workspace: &str, input: &str) -> Result<Self, ActionError> {
        let outside = scaffolder_plugin_sdk::paths::outside;
        let parts = if input.starts_with('/') {
            // As in `path.resolve`, `..` at the root of an absolute path stays at the root.
            let absolute = components(input, true).ok_or_else(outside)?;
            let root = components(workspace, true).ok_or_else(outside)?;
            if !absolute.starts_with(&root) {
                return Err(outside());
            }
            absolute[root.len()..].to_vec()
        } else {
            components(input, false).ok_or_else(outside)?
        };
        Ok(Self {
            relative: parts.join("/"),
        })
    }

    /// The workspace itself.
    pub fn root() -> Self {
        Self {
            relative: String::new(),
        }
    }

    /// Whether this is the workspace itself.
    pub fn is_root(&self) -> bool {
        self.relative.is_empty()
    }

    /// The path relative to the workspace root (`""` for the root).
    pub fn relative(&self) -> &str {
        &self.relative
    }

    /// The path for `std::fs`, whose current directory is the workspace.
    pub fn local(&self) -> &Path {
        Path::new(if self.is_root() { "." } else { &self.relative })
    }

    /// The absolute path in the sandbox, e.g. `/workspace/docs/index.md`.
    pub fn absolute(&self, workspace: &str) -> String {
        let workspace = workspace.trim_end_matches('/');
        if self.is_root() {
            workspace.to_owned()
        } else {
            format!("{workspace}/{}", self.relative)
        }
    }

    /// The entry `name` inside this directory.
    pub fn join(&self, name: &str) -> Self {
        let relative = if self.is_root() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.relative)
        };
        Self { relative }
    }

    /// The directory holding this path; none for the root.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        let parent = self
            .relative
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent);
        Some(Self {
            relative: parent.to_owned(),
        })
    }

    /// Whether this path lies strictly below `ancestor`.
    pub fn is_below(&self, ancestor: &WorkspacePath) -> bool {
        if ancestor.is_root() {
            return !self.is_root();
        }
        self.relative
            .strip_prefix(&ancestor.relative)
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// The normalised components of `path`, or none when `..` climbs above its start
/// (unless `clamp_at_root`, for absolute paths).
fn components(path: &str, clamp_at_root: bool) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !clamp_at_root {
                    return None;
                }
            }
            name => parts.push(name),
        }
    }
    Some(parts)
}

/// The entries directly inside `dir`, sorted by name, with whether each is a directory
/// (a symlink is not, whatever it points to).
pub(crate) fn list(
    workspace: &str,
    dir: &WorkspacePath,
) -> Result<Vec<(WorkspacePath, bool)>, ActionError> {
    let failed = |err: io::Error| read_failed(workspace, dir, &err);
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir.local()).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let is_dir = entry.file_type().map_err(failed)?.is_dir();
        entries.push((dir.join(&entry.file_name().to_string_lossy()), is_dir));
    }
    entries.sort_by(|a, b| a.0.relative().cmp(b.0.relative()));
    Ok(entries)
}

pub(crate) fn read_failed(workspace: &str, dir: &WorkspacePath, err: &io::Error) -> ActionError {
    ActionError::failed(format!(
        "failed to read the directory {}: {}",
        dir.absolute(workspace),
        reason(err)
    ))
}

/// Whether `err` means the path (or one of its parents) does not exist.
pub(crate) fn is_missing(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// A short reason for a failed file operation, without WASI's numeric error codes.
pub(crate) fn reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::NotADirectory => "not a directory".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        io::ErrorKind::AlreadyExists => "already exists".to_owned(),
        io::ErrorKind::DirectoryNotEmpty => "directory not empty".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "/workspace";

    fn resolved(input: &str) -> Option<String> {
        WorkspacePath::resolve(WS, input)
            .ok()
            .map(|p| p.relative().to_owned())
    }

    #[test]
    fn relative_paths_are_normalised() {
        assert_eq!(resolved("a/b.txt").as_deref(), Some("a/b.txt"));
        assert_eq!(resolved("./a//b/./c/").as_deref(), Some("a/b/c"));
        assert_eq!(resolved("a/../b").as_deref(), Some("b"));
        assert_eq!(resolved("*/../x").as_deref(), Some("x"));
        assert_eq!(resolved(".").as_deref(), Some(""));
        assert_eq!(resolved("").as_deref(), Some(""));
    }

    #[test]
    fn escapes_are_refused_when_relative_paths_climb_out() {
        for input in [
            "..",
            "../x",
            "a/../../x",
            "../**/index.js",
            "a/b/../../../x",
        ] {
            let err = WorkspacePath::resolve(WS, input).unwrap_err();
            assert_eq!(err, scaffolder_plugin_sdk::paths::outside(), "{input}");
        }
    }

    #[test]
    fn absolute_paths_must_point_into_the_workspace() {
        assert_eq!(resolved("/workspace/a").as_deref(), Some("a"));
        assert_eq!(resolved("/workspace").as_deref(), Some(""));
        assert_eq!(resolved("/../workspace/a/").as_deref(), Some("a"));
        assert_eq!(resolved("/etc/passwd"), None);
        assert_eq!(resolved("/workspace/../etc"), None);
        assert_eq!(resolved("/workspace-other/a"), None);
        assert_eq!(resolved("/foo/../../../index.js"), None);
        assert_eq!(resolved("/"), None);
    }

    #[test]
    fn joins_parents_and_ancestry() {
        let root = WorkspacePath::root();
        let a = root.join("a");
        let ab = a.join("b");
        assert_eq!(ab.relative(), "a/b");
        assert_eq!(ab.absolute(WS), "/workspace/a/b");
        assert_eq!(root.absolute(WS), "/workspace");
        assert_eq!(root.local(), Path::new("."));
        assert_eq!(ab.parent(), Some(a.clone()));
        assert_eq!(a.parent(), Some(root.clone()));
        assert_eq!(root.parent(), None);
        assert!(ab.is_below(&a) && ab.is_below(&root) && a.is_below(&root));
        assert!(!a.is_below(&a) && !root.is_below(&root));
        assert!(!a.join("bc").is_below(&ab) && !root.join("ab").is_below(&a));
    }
}
