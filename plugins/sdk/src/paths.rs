//! Paths chosen by templates, kept inside their parent directory (the workspace, or the
//! template directory).
//!
//! Backstage passes every such path through `resolveSafeChildPath`: it is resolved the way
//! Node's `path.resolve` does, and refused when it leaves the parent. Here the resolution
//! is lexical, on the guest's `/`-separated paths; the sandbox refuses escapes through
//! symlinks underneath, so a link cannot take a resolved path out either.

use crate::{ActionError, Context, Result};

/// Resolves `path` against the directory `parent` (absolute) like `path.resolve`, and
/// returns the result when it is `parent` or inside it.
pub fn resolve_child(parent: &str, path: &str) -> Option<String> {
    let parent = normalize(parent);
    let resolved = if path.starts_with('/') {
        normalize(path)
    } else {
        normalize(&format!("{parent}/{path}"))
    };
    let inside = resolved == parent
        || parent == "/"
        || resolved
            .strip_prefix(parent.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
    inside.then_some(resolved)
}

/// Resolves `path` inside the workspace, or Backstage's refusal.
pub fn workspace_child(ctx: &Context, path: &str) -> Result<String> {
    resolve_child(ctx.workspace(), path).ok_or_else(outside)
}

/// Backstage's message when `resolveSafeChildPath` refuses a path that leaves its parent.
pub const OUTSIDE: &str = "Relative path is not allowed to refer to a directory outside its parent";

/// Backstage's refusal of a path that leaves its parent (a `NotAllowedError`), worded as
/// Backstage words it, without naming the path.
pub fn outside() -> ActionError {
    ActionError::Denied(OUTSIDE.to_owned())
}

/// `/`-separated absolute form: `.` and empty segments dropped, `..` applied (never above `/`).
pub fn normalize(path: &str) -> String {
    format!("/{}", segments(path).join("/"))
}

/// The segments of `path` as Node's `path.resolve` leaves them: `.` and empty segments
/// dropped, `..` removing the previous one (never going above the root).
pub fn segments(path: &str) -> Vec<&str> {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_resolve_and_escapes_do_not() {
        let check = |path: &str, expected: Option<&str>| {
            assert_eq!(
                resolve_child("/workspace", path).as_deref(),
                expected,
                "{path}"
            );
        };
        check("./", Some("/workspace"));
        check(".", Some("/workspace"));
        check("target/./a//b", Some("/workspace/target/a/b"));
        check("a/../b", Some("/workspace/b"));
        check("../x", None);
        check("a/../../x", None);
        check("../workspace2", None);
        check("/etc/passwd", None);
        check("/workspace/inside", Some("/workspace/inside"));
    }
}
