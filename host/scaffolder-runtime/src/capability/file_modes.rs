//! The WIT `files` interface: Unix permission bits of files in the step's two directories,
//! which `wasi:filesystem` 0.2 does not carry.
//!
//! A guest path is resolved against the host directory it names (`/workspace`, or
//! `/template` when granted; a relative path is in the workspace), and the call goes
//! through cap-primitives relative to that directory, so `..` and symlinks cannot leave it.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cap_primitives::fs::{FollowSymlinks, Permissions, PermissionsExt};
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::WasiCtxBuilder;

use super::filesystem::{TEMPLATE_GUEST_PATH, WORKSPACE_GUEST_PATH};
use super::{Capability, StepSetup};
use crate::bindings::scaffolder::action::files;
use crate::step::{StepFailure, StepState, StepUsage};

/// The permission bits a plugin may read and set: no setuid, setgid or sticky bit.
const PERMISSION_BITS: u32 = 0o777;

/// The host directories behind a step's `/workspace` and `/template`.
#[derive(Debug, Default)]
pub struct FileModes {
    workspace: Option<Root>,
    template: Option<Root>,
}

impl Capability for FileModes {
    fn link(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
        files::add_to_linker::<_, HasSelf<FileModes>>(linker, |state| {
            &mut state.capabilities.file_modes
        })
    }

    fn prepare(setup: &StepSetup<'_>, _wasi: &mut WasiCtxBuilder) -> Result<Self, StepFailure> {
        Ok(match &setup.place {
            Some(place) => Self::new(
                place.workspace.to_owned(),
                setup.granted_template().map(Path::to_owned),
            ),
            None => Self::default(),
        })
    }

    /// Setting a mode costs the host nothing it keeps.
    fn account(&self, _usage: &mut StepUsage) {}
}

impl files::Host for FileModes {
    async fn mode(&mut self, path: String) -> wasmtime::Result<Result<u32, String>> {
        Ok(self.read(&path))
    }

    async fn set_mode(&mut self, path: String, mode: u32) -> wasmtime::Result<Result<(), String>> {
        Ok(self.write(&path, mode))
    }
}

/// One of the step's directories, opened at its first use and kept open for the step
/// (a step that sets the modes of many files opens it once).
#[derive(Debug)]
struct Root {
    path: PathBuf,
    dir: OnceLock<File>,
}

impl Root {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            dir: OnceLock::new(),
        }
    }
}

/// A guest path resolved to a host directory and a path relative to it.
struct Resolved<'a> {
    root: &'a Root,
    relative: &'a str,
    writable: bool,
}

impl FileModes {
    /// `template` only when the step was granted the template directory.
    pub fn new(workspace: PathBuf, template: Option<PathBuf>) -> Self {
        Self {
            workspace: Some(Root::new(workspace)),
            template: template.map(Root::new),
        }
    }

    /// The permission bits of `path`.
    pub fn read(&self, path: &str) -> Result<u32, String> {
        let resolved = self.resolve(path)?;
        let dir = resolved.open_root(path)?;
        let metadata = cap_primitives::fs::stat(dir, resolved.relative(), FollowSymlinks::Yes)
            .map_err(|err| describe(path, &err))?;
        Ok(metadata.permissions().mode() & PERMISSION_BITS)
    }

    /// Sets the permission bits of `path` to `mode & 0o777`.
    pub fn write(&self, path: &str, mode: u32) -> Result<(), String> {
        let resolved = self.resolve(path)?;
        if !resolved.writable {
            return Err(format!(
                "'{path}' is in the template directory, which is read-only"
            ));
        }
        let dir = resolved.open_root(path)?;
        cap_primitives::fs::set_permissions(
            dir,
            resolved.relative(),
            Permissions::from_mode(mode & PERMISSION_BITS),
        )
        .map_err(|err| describe(path, &err))
    }

    fn resolve<'a>(&'a self, path: &'a str) -> Result<Resolved<'a>, String> {
        let outside = || {
            format!(
                "'{path}' is outside the workspace{}",
                if self.template.is_some() {
                    " and the template directory"
                } else {
                    ""
                }
            )
        };
        let under = |prefix: &str| -> Option<&'a str> {
            let rest = path.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
        };
        let workspace = self.workspace.as_ref().ok_or_else(outside)?;
        if !path.starts_with('/') {
            return Ok(Resolved {
                root: workspace,
                relative: path,
                writable: true,
            });
        }
        if let Some(relative) = under(WORKSPACE_GUEST_PATH) {
            return Ok(Resolved {
                root: workspace,
                relative,
                writable: true,
            });
        }
        match (self.template.as_ref(), under(TEMPLATE_GUEST_PATH)) {
            (Some(root), Some(relative)) => Ok(Resolved {
                root,
                relative,
                writable: false,
            }),
            _ => Err(outside()),
        }
    }
}

impl Resolved<'_> {
    fn open_root(&self, path: &str) -> Result<&File, String> {
        if let Some(dir) = self.root.dir.get() {
            return Ok(dir);
        }
        let dir = cap_primitives::fs::open_ambient_dir(
            &self.root.path,
            cap_primitives::ambient_authority(),
        )
        .map_err(|err| format!("'{path}': its directory could not be opened: {err}"))?;
        Ok(self.root.dir.get_or_init(|| dir))
    }

    /// The path inside the root; `.` for the root itself.
    fn relative(&self) -> &Path {
        if self.relative.is_empty() {
            Path::new(".")
        } else {
            Path::new(self.relative)
        }
    }
}

fn describe(path: &str, err: &io::Error) -> String {
    // cap-primitives refuses `..` and symlinks that leave the directory with a
    // permission error saying "a path led outside of the filesystem".
    if err.to_string().contains("outside") {
        return format!("'{path}' leads outside its directory");
    }
    match err.kind() {
        io::ErrorKind::NotFound => format!("'{path}' does not exist"),
        _ => format!("'{path}': {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn dirs() -> (tempfile::TempDir, tempfile::TempDir, FileModes) {
        let workspace = tempfile::tempdir().unwrap();
        let template = tempfile::tempdir().unwrap();
        let dirs = FileModes::new(
            workspace.path().to_owned(),
            Some(template.path().to_owned()),
        );
        (workspace, template, dirs)
    }

    #[test]
    fn reads_and_sets_modes_in_the_workspace() {
        let (workspace, _template, dirs) = dirs();
        let script = workspace.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();

        assert_eq!(dirs.read("run.sh"), Ok(0o644));
        dirs.write("/workspace/run.sh", 0o4755).unwrap();
        // The setuid bit is dropped.
        let mode = std::fs::metadata(&script).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);
        assert_eq!(dirs.read("/workspace/run.sh"), Ok(0o755));
    }

    #[test]
    fn reads_but_never_sets_template_modes() {
        let (_workspace, template, dirs) = dirs();
        let file = template.path().join("gradlew");
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o750)).unwrap();

        assert_eq!(dirs.read("/template/gradlew"), Ok(0o750));
        let err = dirs.write("/template/gradlew", 0o777).unwrap_err();
        assert!(err.contains("read-only"), "{err}");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o750);
    }

    #[test]
    fn refuses_paths_outside_the_directories() {
        let (workspace, _template, dirs) = dirs();
        std::os::unix::fs::symlink("/etc/passwd", workspace.path().join("link")).unwrap();

        for path in [
            "/etc/passwd",
            "/workspacefoo",
            "../x",
            "/workspace/../etc",
            "link",
        ] {
            let err = dirs.read(path).unwrap_err();
            assert!(
                err.contains("outside") || err.contains("does not exist"),
                "{path}: {err}"
            );
        }
        assert!(dirs.write("link", 0o777).is_err());
        assert_eq!(dirs.read("missing"), Err("'missing' does not exist".into()));
    }

    #[test]
    fn the_template_directory_is_outside_unless_granted() {
        let workspace = tempfile::tempdir().unwrap();
        let dirs = FileModes::new(workspace.path().to_owned(), None);
        assert_eq!(
            dirs.read("/template/x"),
            Err("'/template/x' is outside the workspace".into())
        );
    }
}
