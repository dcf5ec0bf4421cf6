//! Directories only the server's user may read: the data directory and what the server
//! keeps in it (the plugin cache, compiled code, workspaces).

use std::path::Path;

/// Creates `dir` and its missing parents 0700. An existing directory keeps its mode, since
/// the operator chose it (it may be shared, like /tmp); a warning says when others can
/// read it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mode = create_0700(dir)?;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} is open to other users (mode {mode:o}); `chmod 700` it so that only the \
             server's user can read what the server keeps there",
            dir.display()
        );
    }
    Ok(())
}

/// Creates a directory of the server's own inside the data directory 0700, and narrows an
/// existing one to that (older versions created them 0755).
pub fn private_subdir(dir: &Path) -> std::io::Result<()> {
    let mode = create_0700(dir)?;
    #[cfg(unix)]
    if mode & 0o077 != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

/// Creates `dir` and its missing parents 0700 (where modes exist); its mode afterwards.
fn create_0700(dir: &Path) -> std::io::Result<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(std::fs::metadata(dir)?.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)?;
        Ok(0o700)
    }
}
