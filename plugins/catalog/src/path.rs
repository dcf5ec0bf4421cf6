//! Backstage's `resolveSafeChildPath(workspacePath, filePath)`: the path is resolved
//! against the workspace, symbolic links in its existing part are followed, and it must
//! end up in the workspace (the workspace itself counts) or the action refuses it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use scaffolder_plugin_sdk::{ActionError, Result, paths};

/// Symbolic links followed before giving up, as the kernel does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Where `file_path` (relative to `workspace`, or absolute) points, or an input error when
/// that is outside `workspace`. The returned path is the lexical one, as Backstage writes
/// to it; the check is made on the path with links resolved.
pub fn safe_child_path(workspace: &str, file_path: &str) -> Result<PathBuf> {
    let base = components(workspace);
    let target = if file_path.starts_with('/') {
        components(file_path)
    } else {
        components(&format!("{workspace}/{file_path}"))
    };
    let outside = paths::outside;
    let relative = target.strip_prefix(base.as_slice()).ok_or_else(outside)?;
    let real = real_path(Path::new(workspace), &base, relative.to_vec())?.ok_or_else(outside)?;
    // `isChildPath` tests `path.relative(base, target).startsWith('..')`, which also
    // refuses a first component such as `..name`.
    if real.first().is_some_and(|first| first.starts_with("..")) {
        return Err(outside());
    }
    Ok(relative
        .iter()
        .fold(PathBuf::from(workspace), |path, component| {
            path.join(component)
        }))
}

/// `path.resolve`'s normalisation of an absolute path: no `.`, `..` applied, no empty parts.
fn components(path: &str) -> Vec<String> {
    paths::segments(path)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The real path of `workspace/relative`, relative to the workspace (`None` when a link
/// leads out of it): links are followed while the path exists; the missing rest is taken
/// as written, as Backstage's `resolveRealPath` does.
fn real_path(
    workspace: &Path,
    base: &[String],
    relative: Vec<String>,
) -> Result<Option<Vec<String>>> {
    let mut links = 0;
    let mut resolved: Vec<String> = Vec::new();
    let mut rest = VecDeque::from(relative);
    while let Some(component) = rest.pop_front() {
        let candidate = resolved
            .iter()
            .chain([&component])
            .fold(workspace.to_path_buf(), |path, part| path.join(part));
        let Ok(metadata) = std::fs::symlink_metadata(&candidate) else {
            // Missing: the rest cannot contain links.
            resolved.push(component);
            resolved.extend(rest);
            return Ok(Some(resolved));
        };
        if !metadata.file_type().is_symlink() {
            resolved.push(component);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(ActionError::failed(format!(
                "too many levels of symbolic links in {}",
                candidate.display()
            )));
        }
        let link = std::fs::read_link(&candidate).map_err(|err| {
            ActionError::failed(format!(
                "could not read the link {}: {err}",
                candidate.display()
            ))
        })?;
        let link = link.to_string_lossy();
        let absolute = if link.starts_with('/') {
            components(&link)
        } else {
            let parent: Vec<&str> = base.iter().chain(&resolved).map(String::as_str).collect();
            components(&format!("/{}/{link}", parent.join("/")))
        };
        let Some(inside) = absolute.strip_prefix(base) else {
            return Ok(None);
        };
        // Start over from the link's target, followed by what was left.
        rest = inside.iter().cloned().chain(rest).collect();
        resolved.clear();
    }
    Ok(Some(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(workspace: &str, file_path: &str) -> bool {
        safe_child_path(workspace, file_path) == Err(paths::outside())
    }

    #[test]
    fn paths_inside_the_workspace_resolve_lexically() {
        let ws = "/nonexistent-workspace";
        let ok = |p: &str| safe_child_path(ws, p).unwrap();
        assert_eq!(
            ok("catalog-info.yaml"),
            PathBuf::from("/nonexistent-workspace/catalog-info.yaml")
        );
        assert_eq!(
            ok("./a/../b/c.yaml"),
            PathBuf::from("/nonexistent-workspace/b/c.yaml")
        );
        assert_eq!(
            ok("/nonexistent-workspace/x.yaml"),
            PathBuf::from("/nonexistent-workspace/x.yaml")
        );
        assert_eq!(ok("a//b/"), PathBuf::from("/nonexistent-workspace/a/b"));
        assert_eq!(ok("."), PathBuf::from("/nonexistent-workspace"));
        assert_eq!(ok("a/..b"), PathBuf::from("/nonexistent-workspace/a/..b"));
    }

    #[test]
    fn paths_leaving_the_workspace_are_refused() {
        let ws = "/nonexistent-workspace";
        for path in [
            "..",
            "../x.yaml",
            "a/../../x",
            "/etc/passwd",
            "/nonexistent-workspace-2/x",
            "..x.yaml",
        ] {
            assert!(refused(ws, path), "{path}");
        }
    }

    #[test]
    fn links_out_of_the_workspace_are_refused() {
        let root =
            std::env::temp_dir().join(format!("builtin-catalog-path-{}", std::process::id()));
        let ws = root.join("ws");
        std::fs::create_dir_all(ws.join("dir")).unwrap();
        std::os::unix::fs::symlink("..", ws.join("up")).unwrap();
        std::os::unix::fs::symlink("dir", ws.join("inside")).unwrap();
        std::os::unix::fs::symlink("/", ws.join("root")).unwrap();
        let ws_str = ws.to_str().unwrap();
        assert!(refused(ws_str, "up/x.yaml"));
        assert!(refused(ws_str, "root/tmp/x.yaml"));
        assert_eq!(
            safe_child_path(ws_str, "inside/x.yaml").unwrap(),
            ws.join("inside/x.yaml")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
