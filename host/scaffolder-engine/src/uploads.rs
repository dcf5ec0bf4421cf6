//! The template files a dry run uploads (`directoryContents`), written to a directory
//! once per content and shared by the dry runs that upload the same files.
//!
//! Backstage's frontend uploads the template's whole directory with every dry run, and
//! its preview re-runs the same template as the author edits values; writing those files
//! again each time (a directory per folder, a file per upload) cost a small dry run a
//! twentieth of its time. The directory is the step's read-only `/template`, so a run
//! cannot change what the next one reads.
//!
//! Bounded: at most [`MAX_KEPT`] directories and [`MAX_KEPT_BYTES`] of their contents are
//! kept, the least recently used going first; an upload larger than that is written for
//! its run alone. A directory leaves the disk when it is no longer kept and its last run
//! has ended.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::dry_run::{DryRunUpload, safe_relative_path};
use crate::failure::Failure;

/// How many upload directories are kept between dry runs.
const MAX_KEPT: usize = 16;
/// How many bytes of uploaded contents they may hold together.
const MAX_KEPT_BYTES: u64 = 64 << 20;

/// The upload directories of one working directory.
pub(crate) struct UploadedTemplates {
    root: PathBuf,
    /// Most recently used last.
    kept: Mutex<Vec<Kept>>,
}

struct Kept {
    digest: [u8; 32],
    directory: Arc<UploadDirectory>,
}

/// A directory holding exactly the files of one upload; removed when dropped.
#[derive(Debug)]
pub(crate) struct UploadDirectory {
    path: PathBuf,
    bytes: u64,
}

impl UploadDirectory {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UploadDirectory {
    /// Removes the directory in place: an upload is small (the request body limit), and
    /// this runs only when one is evicted, at the end of a run that outlived its
    /// eviction, and when the engine is dropped.
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove {}: {err}", self.path.display());
        }
    }
}

impl UploadedTemplates {
    /// Directories go under `root`, named `dry-run-content-<uuid>` as Backstage names
    /// them (paths in its error messages point there).
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// A directory holding `uploads`: one kept from an earlier dry run of the same files,
    /// or a new one.
    pub(crate) fn directory(
        &self,
        uploads: &[DryRunUpload],
    ) -> Result<Arc<UploadDirectory>, Failure> {
        let digest = digest(uploads);
        if let Some(directory) = self.reuse(&digest) {
            return Ok(directory);
        }
        let directory = Arc::new(self.write(uploads)?);
        if directory.bytes <= MAX_KEPT_BYTES {
            // Dropped (and removed, unless a run holds them) outside the lock.
            let _evicted = self.keep(digest, directory.clone());
        }
        Ok(directory)
    }

    /// The kept directory of these files, now the most recently used; none when there
    /// is none or it is gone from the disk (somebody cleared the working directory).
    fn reuse(&self, digest: &[u8; 32]) -> Option<Arc<UploadDirectory>> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let at = kept.iter().position(|k| &k.digest == digest)?;
        let entry = kept.remove(at);
        if !entry.directory.path.is_dir() {
            return None;
        }
        let directory = entry.directory.clone();
        kept.push(entry);
        Some(directory)
    }

    /// Keeps `directory` as the most recently used; returns what no longer fits.
    fn keep(&self, digest: [u8; 32], directory: Arc<UploadDirectory>) -> Vec<Kept> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.iter().any(|k| k.digest == digest) {
            // A concurrent dry run of the same files kept its own first.
            return Vec::new();
        }
        kept.push(Kept { digest, directory });
        let mut evicted = Vec::new();
        while kept.len() > MAX_KEPT
            || kept.iter().map(|k| k.directory.bytes).sum::<u64>() > MAX_KEPT_BYTES
        {
            evicted.push(kept.remove(0));
        }
        evicted
    }

    fn write(&self, uploads: &[DryRunUpload]) -> Result<UploadDirectory, Failure> {
        let io = |what: &str, path: &Path, err: std::io::Error| {
            Failure::error(format!("could not {what} {}: {err}", path.display()))
        };
        // Checked before anything is written.
        let targets = uploads
            .iter()
            .map(|file| safe_relative_path(&file.path))
            .collect::<Result<Vec<_>, _>>()?;
        let path = self
            .root
            .join(format!("dry-run-content-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).map_err(|e| io("create", &path, e))?;
        // From here on, a failure removes what was written.
        let mut directory = UploadDirectory { path, bytes: 0 };
        for (file, relative) in uploads.iter().zip(targets) {
            let target = directory.path.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
            }
            std::fs::write(&target, &file.content).map_err(|e| io("write", &target, e))?;
            directory.bytes += file.content.len() as u64;
        }
        Ok(directory)
    }
}

/// SHA-256 of the uploads' paths and contents, in order, each length-prefixed.
fn digest(uploads: &[DryRunUpload]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for file in uploads {
        hash.update((file.path.len() as u64).to_le_bytes());
        hash.update(file.path.as_bytes());
        hash.update((file.content.len() as u64).to_le_bytes());
        hash.update(&file.content);
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(path: &str, content: &str) -> DryRunUpload {
        DryRunUpload {
            path: path.to_owned(),
            content: content.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_same_files_share_one_directory_and_other_files_get_their_own() {
        let root = tempfile::tempdir().unwrap();
        let uploads = UploadedTemplates::new(root.path().to_owned());
        let files = [upload("template.yaml", "a"), upload("skeleton/x.txt", "x")];
        let first = uploads.directory(&files).unwrap();
        assert_eq!(
            std::fs::read_to_string(first.path().join("skeleton/x.txt")).unwrap(),
            "x"
        );
        let again = uploads.directory(&files).unwrap();
        assert_eq!(first.path(), again.path());
        // A path moved between the name and the contents is another upload.
        let other = uploads
            .directory(&[upload("template.yaml", "a"), upload("skeleton/x.tx", "tx")])
            .unwrap();
        assert_ne!(first.path(), other.path());
    }

    #[test]
    fn the_least_recently_used_directory_goes_once_its_last_run_ends() {
        let root = tempfile::tempdir().unwrap();
        let uploads = UploadedTemplates::new(root.path().to_owned());
        let held = uploads.directory(&[upload("t.yaml", "0")]).unwrap();
        for i in 1..=MAX_KEPT {
            uploads
                .directory(&[upload("t.yaml", &i.to_string())])
                .unwrap();
        }
        // No longer kept, but a run still reads it.
        assert!(held.path().exists());
        let path = held.path().to_owned();
        drop(held);
        assert!(!path.exists());
        let count = std::fs::read_dir(root.path()).unwrap().count();
        assert_eq!(count, MAX_KEPT);
    }

    #[test]
    fn a_kept_directory_removed_from_the_disk_is_written_again() {
        let root = tempfile::tempdir().unwrap();
        let uploads = UploadedTemplates::new(root.path().to_owned());
        let files = [upload("template.yaml", "a")];
        let first = uploads.directory(&files).unwrap().path().to_owned();
        std::fs::remove_dir_all(&first).unwrap();
        let again = uploads.directory(&files).unwrap();
        assert_ne!(again.path(), first);
        assert_eq!(
            std::fs::read_to_string(again.path().join("template.yaml")).unwrap(),
            "a"
        );
    }

    #[test]
    fn a_path_that_leaves_the_directory_writes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let uploads = UploadedTemplates::new(root.path().to_owned());
        let failure = uploads
            .directory(&[upload("ok.txt", "x"), upload("../x", "y")])
            .unwrap_err();
        assert_eq!(failure.name, "InputError");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
