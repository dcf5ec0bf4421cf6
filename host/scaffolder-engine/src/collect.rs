//! Reads a workspace on the host, for a dry run's `directoryContents`. The workspace is
//! what a guest wrote, so nothing in it is trusted: a link is never followed (it is
//! listed with its target text as content, as Backstage's `serializeDirectoryContents`
//! lists it with `followSymbolicLinks: false`), a linked directory is never entered, a
//! file is opened with `O_NOFOLLOW` (so a file swapped for a link after the directory was
//! listed is not read through it), and fifos, sockets and devices are skipped. What is
//! read is capped in files and bytes ([`DryRunLimits`]); a file's apparent size is
//! charged before it is opened, so a sparse file over the cap is refused unread.
//!
//! Deliberately absent: the descriptor-relative walk (`openat` beneath the root) that
//! would also hold against a directory swapped for a link during the walk. Collection
//! runs after the last step has ended, when no guest can change the workspace.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::dry_run::DryRunFile;
use crate::failure::Failure;

/// What a dry run may return: files (regular files and links) and bytes of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DryRunLimits {
    /// `scaffolder.dryRun.maxFiles`, default 10,000.
    pub max_files: usize,
    /// `scaffolder.dryRun.maxBytes`, default 64 MiB: the sum of the files' sizes (a
    /// sparse file counts at its apparent size) and the links' target lengths.
    pub max_bytes: u64,
}

impl Default for DryRunLimits {
    fn default() -> Self {
        Self {
            max_files: 10_000,
            max_bytes: 64 << 20,
        }
    }
}

/// Why a workspace could not be collected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    #[error(
        "the dry run produced more than {limit} files, the limit set by scaffolder.dryRun.maxFiles; \
         raise it in the server configuration or write fewer files"
    )]
    TooManyFiles { limit: usize },
    #[error(
        "the dry run's files hold more than {limit} bytes, the limit set by scaffolder.dryRun.maxBytes; \
         raise it in the server configuration or write less"
    )]
    TooManyBytes { limit: u64 },
    #[error("could not read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<CollectError> for Failure {
    fn from(err: CollectError) -> Self {
        Failure::error(err.to_string())
    }
}

/// Every regular file and link under `root` except what is under `.git`, sorted by path.
pub(crate) fn collect_files(
    root: &Path,
    limits: &DryRunLimits,
) -> Result<Vec<DryRunFile>, CollectError> {
    let mut budget = Budget {
        limits: *limits,
        files: 0,
        bytes: 0,
    };
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io(&dir))?;
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            if entry.file_name() == ".git" {
                continue;
            }
            let path = entry.path();
            // The entry's own type, from the directory listing or `lstat`: never a link's target.
            let file_type = entry.file_type().map_err(io(&path))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_symlink() {
                let target = std::fs::read_link(&path).map_err(io(&path))?;
                let content = target.into_os_string().into_vec();
                budget.add_file()?;
                budget.add_bytes(content.len() as u64)?;
                out.push(DryRunFile {
                    path: relative(root, &path),
                    executable: false,
                    content,
                    symlink: true,
                });
            } else if file_type.is_file() {
                budget.add_file()?;
                // The apparent size, before anything is read (`DirEntry::metadata` does
                // not follow a link either).
                let size = entry.metadata().map_err(io(&path))?.len();
                budget.fits(size)?;
                let Some((content, metadata)) = read_regular(&path, budget.remaining())? else {
                    continue;
                };
                budget.add_bytes(content.len() as u64)?;
                out.push(DryRunFile {
                    path: relative(root, &path),
                    executable: metadata.permissions().mode() & 0o111 != 0,
                    content,
                    symlink: false,
                });
            }
            // Fifos, sockets and devices: skipped, as Backstage's glob skips them.
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Files and bytes charged so far.
struct Budget {
    limits: DryRunLimits,
    files: usize,
    bytes: u64,
}

impl Budget {
    fn add_file(&mut self) -> Result<(), CollectError> {
        self.files += 1;
        if self.files > self.limits.max_files {
            return Err(CollectError::TooManyFiles {
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    /// Whether `bytes` more stay within the cap.
    fn fits(&self, bytes: u64) -> Result<(), CollectError> {
        if self.bytes.saturating_add(bytes) > self.limits.max_bytes {
            return Err(CollectError::TooManyBytes {
                limit: self.limits.max_bytes,
            });
        }
        Ok(())
    }

    fn add_bytes(&mut self, bytes: u64) -> Result<(), CollectError> {
        self.fits(bytes)?;
        self.bytes += bytes;
        Ok(())
    }

    fn remaining(&self) -> u64 {
        self.limits.max_bytes.saturating_sub(self.bytes)
    }
}

/// The contents of the regular file at `path` and its metadata; `None` when it is no
/// longer a regular file. Opened without following a link, and without blocking on a
/// fifo that replaced the file. At most one byte more than `allowed` is read, which is
/// enough to tell that a file grew past the cap after it was listed.
fn read_regular(path: &Path, allowed: u64) -> Result<Option<(Vec<u8>, Metadata)>, CollectError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(io(path))?;
    let metadata = file.metadata().map_err(io(path))?;
    if !metadata.is_file() {
        return Ok(None);
    }
    let mut content = Vec::with_capacity(metadata.len().min(allowed) as usize);
    file.take(allowed.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(io(path))?;
    Ok(Some((content, metadata)))
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CollectError + '_ {
    move |source| CollectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &str = "outside-the-workspace-7f3a";

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("running mkfifo");
        assert!(status.success());
    }

    /// A workspace with files, a link climbing out to a file holding `MARKER`, a link to
    /// a directory outside, a fifo and a `.git` directory; and the directory outside.
    fn planted() -> (tempfile::TempDir, tempfile::TempDir) {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), MARKER).unwrap();
        let workspace = tempfile::tempdir().unwrap();
        let root = workspace.path();
        std::fs::create_dir_all(root.join("sub/.git")).unwrap();
        std::fs::write(root.join("sub/.git/config"), "ignored").unwrap();
        std::fs::write(root.join("README.md"), "# hello").unwrap();
        std::fs::write(root.join("sub/run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(
            root.join("sub/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let climb = format!(
            "{}{}/secret.txt",
            "../".repeat(20),
            outside.path().display().to_string().trim_start_matches('/')
        );
        std::os::unix::fs::symlink(&climb, root.join("sub/passwd")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("outside")).unwrap();
        mkfifo(&root.join("pipe"));
        (workspace, outside)
    }

    #[test]
    fn links_are_listed_with_their_target_and_never_followed() {
        let (workspace, outside) = planted();
        let files = collect_files(workspace.path(), &DryRunLimits::default()).unwrap();
        let listed: Vec<(&str, String, bool, bool)> = files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    String::from_utf8_lossy(&f.content).into_owned(),
                    f.executable,
                    f.symlink,
                )
            })
            .collect();
        let climb = std::fs::read_link(workspace.path().join("sub/passwd")).unwrap();
        assert_eq!(
            listed,
            [
                ("README.md", "# hello".to_owned(), false, false),
                ("outside", outside.path().display().to_string(), false, true),
                ("sub/passwd", climb.display().to_string(), false, true),
                ("sub/run.sh", "#!/bin/sh".to_owned(), true, false),
            ],
            "no fifo, nothing under .git, nothing read through a link"
        );
        assert!(
            files
                .iter()
                .all(|f| !String::from_utf8_lossy(&f.content).contains(MARKER))
        );
    }

    #[test]
    fn a_file_swapped_for_a_link_is_not_opened_through_it() {
        let (workspace, _outside) = planted();
        let err = read_regular(&workspace.path().join("sub/passwd"), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, CollectError::Io { source, .. } if source.raw_os_error() == Some(libc::ELOOP)),
            "{err}"
        );
        // A fifo in place of a file is not waited on.
        assert!(
            read_regular(&workspace.path().join("pipe"), 1 << 20)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_sparse_file_over_the_byte_cap_is_refused_unread() {
        let workspace = tempfile::tempdir().unwrap();
        std::fs::write(workspace.path().join("small.txt"), "x").unwrap();
        let sparse = File::create(workspace.path().join("sparse.bin")).unwrap();
        sparse.set_len(256 << 20).unwrap();
        let started = std::time::Instant::now();
        let err = collect_files(workspace.path(), &DryRunLimits::default()).unwrap_err();
        assert!(matches!(err, CollectError::TooManyBytes { limit } if limit == 64 << 20));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let failure = Failure::from(err);
        assert_eq!(failure.name, "Error");
        assert_eq!(
            failure.message,
            "the dry run's files hold more than 67108864 bytes, the limit set by scaffolder.dryRun.maxBytes; \
             raise it in the server configuration or write less"
        );
        // At the cap exactly, it is returned.
        sparse.set_len(1 << 20).unwrap();
        let limits = DryRunLimits {
            max_bytes: (1 << 20) + 1,
            ..DryRunLimits::default()
        };
        assert_eq!(collect_files(workspace.path(), &limits).unwrap().len(), 2);
    }

    #[test]
    fn the_file_cap_counts_files_and_links() {
        let (workspace, _outside) = planted();
        let limits = DryRunLimits {
            max_files: 3,
            ..DryRunLimits::default()
        };
        let failure = Failure::from(collect_files(workspace.path(), &limits).unwrap_err());
        assert_eq!(
            failure.message,
            "the dry run produced more than 3 files, the limit set by scaffolder.dryRun.maxFiles; \
             raise it in the server configuration or write fewer files"
        );
        let limits = DryRunLimits {
            max_files: 4,
            ..DryRunLimits::default()
        };
        assert_eq!(collect_files(workspace.path(), &limits).unwrap().len(), 4);
    }
}
