//! Unix permission bits of workspace and template files, which `std::fs` cannot see in a
//! `wasm32-wasip2` guest (WASI 0.2 has no permissions). Paths are as the plugin sees them:
//! absolute (`/workspace/...`, `/template/...`) or relative to the workspace.

use std::path::Path;

use crate::ActionError;
use crate::bindings::scaffolder::action::files;

/// The permission bits (`0o777` and below) of `path`.
pub fn mode(path: impl AsRef<Path>) -> Result<u32, ActionError> {
    files::mode(&guest_path(path.as_ref())?).map_err(ActionError::Failed)
}

/// Sets the permission bits of a workspace file to `mode & 0o777`.
pub fn set_mode(path: impl AsRef<Path>, mode: u32) -> Result<(), ActionError> {
    files::set_mode(&guest_path(path.as_ref())?, mode).map_err(ActionError::Failed)
}

fn guest_path(path: &Path) -> Result<String, ActionError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ActionError::failed(format!("{} is not valid UTF-8", path.display())))
}

/// The message of a failed Node `fs` call, which Backstage's actions surface as they are:
/// `ENOENT: no such file or directory, lstat '/path'`, with ` -> '/dest'` for two-path
/// calls (`copyfile`, `rename`).
pub fn node_error(err: &std::io::Error, syscall: &str, path: &str, dest: Option<&str>) -> String {
    use std::io::ErrorKind;
    let (code, description) = match err.kind() {
        ErrorKind::NotFound => ("ENOENT", "no such file or directory"),
        ErrorKind::AlreadyExists => ("EEXIST", "file already exists"),
        ErrorKind::NotADirectory => ("ENOTDIR", "not a directory"),
        ErrorKind::IsADirectory => ("EISDIR", "illegal operation on a directory"),
        ErrorKind::DirectoryNotEmpty => ("ENOTEMPTY", "directory not empty"),
        ErrorKind::PermissionDenied => ("EACCES", "permission denied"),
        _ => return format!("{}, {syscall} '{path}'", crate::io_error_message(err)),
    };
    match dest {
        Some(dest) => format!("{code}: {description}, {syscall} '{path}' -> '{dest}'"),
        None => format!("{code}: {description}, {syscall} '{path}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_read_as_node_prints_them() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            node_error(&missing, "lstat", "/workspace/a", None),
            "ENOENT: no such file or directory, lstat '/workspace/a'"
        );
        assert_eq!(
            node_error(&missing, "copyfile", "/t/a", Some("/workspace/b")),
            "ENOENT: no such file or directory, copyfile '/t/a' -> '/workspace/b'"
        );
    }
}
