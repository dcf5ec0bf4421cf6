//! What `serve` and the local commands (`dry-run`, `plugin new`) share: the data
//! directory, the working directory and the Wasm runtime.

use std::path::{Path, PathBuf};

use anyhow::Context;
use scaffolder_config::Config;
use scaffolder_plugins::private_dir::{create_private_dir, private_subdir};
use scaffolder_runtime::{Runtime, RuntimeConfig};

/// `--data-dir`, else `scaffolder.dataDirectory`, else the XDG data directory; created
/// readable by its owner only (0700), since it holds the task database and workspaces.
pub fn data_dir(flag: Option<&Path>, config: &Config) -> anyhow::Result<PathBuf> {
    let data_dir = flag
        .map(Path::to_path_buf)
        .or_else(|| config.scaffolder.data_directory.clone())
        .unwrap_or_else(default_data_dir);
    create_private_dir(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    Ok(data_dir)
}

/// Where task workspaces are created: `backend.workingDirectory`, else `workspaces/` in
/// the data directory; private to the server's user (0700).
pub fn working_directory(config: &Config, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let (dir, created) = match &config.backend.working_directory {
        Some(dir) => (dir.clone(), create_private_dir(dir)),
        None => {
            let dir = data_dir.join("workspaces");
            let created = private_subdir(&dir);
            (dir, created)
        }
    };
    created.with_context(|| {
        format!(
            "backend.workingDirectory {} must exist and be writable",
            dir.display()
        )
    })?;
    Ok(dir)
}

/// The Wasm runtime, compiling into (and loading from) the data directory's cache.
pub fn runtime(data_dir: &Path) -> anyhow::Result<Runtime> {
    let cache_dir = data_dir.join("cache");
    private_subdir(&cache_dir)
        .with_context(|| format!("cannot create the compile cache {}", cache_dir.display()))?;
    Runtime::new(&RuntimeConfig {
        cache_dir: Some(cache_dir),
        ..RuntimeConfig::default()
    })
    .context("cannot start the WebAssembly runtime")
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("scaffolder");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/scaffolder");
    }
    PathBuf::from(".scaffolder")
}
