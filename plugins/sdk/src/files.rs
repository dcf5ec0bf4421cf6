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
