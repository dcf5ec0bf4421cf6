//! Where local runs (`POST /v2/dry-run`, `scaffolder dry-run`) make their workspaces.
//!
//! A dry run's workspace lives for a few milliseconds and goes once the run has answered.
//! On a disk filesystem, creating and removing its directory and files costs more than
//! some of its actions (ext4 without a journal, as on the benchmark's machine, scans past
//! recently deleted inodes for every new one: 15% of a small dry run's CPU), so while the
//! machine has a memory filesystem (`/dev/shm`) with room, a run's workspace goes there,
//! in a private directory of this process. The memory it may take is bounded: at most
//! [`IN_MEMORY_RUNS`] runs at once, each within the dry-run caps (`scaffolder.dryRun`'s
//! `maxBytes` and `maxFiles`, which its steps' workspace quota enforces as
//! [`RunSpace::cap`]), and only while the filesystem has room for all of them at their
//! cap. Any other run makes its workspace in the working directory.
//!
//! The private directory (`/dev/shm/scaffolder-runs-XXXXXX`, 0700, made by `tempfile`)
//! is locked with `flock` while the process lives and removed when the server stops
//! ([`RunSpace::close`]) or the engine goes; one left behind by a process that died
//! (unlocked, and not new) is removed by the next process to make its own.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use scaffolder_runtime::WorkspaceCap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::collect::DryRunLimits;

/// Local runs whose workspaces may be in memory at once.
pub(crate) const IN_MEMORY_RUNS: usize = 4;

const MEMORY_FILESYSTEM: &str = "/dev/shm";
const PREFIX: &str = "scaffolder-runs-";

/// A private directory found unlocked is another process's only once it is this old: a
/// process locks its own right after making it.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

pub(crate) struct RunSpace {
    disk: PathBuf,
    /// Where [`MEMORY_FILESYSTEM`] lives, for tests.
    memory_filesystem: PathBuf,
    limits: DryRunLimits,
    memory: Mutex<Memory>,
    memory_slots: Arc<Semaphore>,
}

/// The private directory on the memory filesystem: made at the first run.
enum Memory {
    Unopened,
    Open(MemoryDirectory),
    /// None could be made, or it was removed ([`RunSpace::close`]).
    Unavailable,
}

/// This process's directory on the memory filesystem.
struct MemoryDirectory {
    /// Dropped (the directory removed) after the lock's file is closed.
    _lock: File,
    directory: tempfile::TempDir,
}

/// A run's workspace: where it goes, and the memory slot it holds until it is removed.
pub(crate) struct Placement {
    pub path: PathBuf,
    memory_slot: Option<OwnedSemaphorePermit>,
}

impl Placement {
    /// Whether the workspace is on the memory filesystem, where removing it is memory
    /// work that never waits on a disk.
    pub(crate) fn in_memory(&self) -> bool {
        self.memory_slot.is_some()
    }
}

impl RunSpace {
    /// Workspaces not in memory go under `disk` (the working directory).
    pub(crate) fn new(disk: PathBuf, limits: DryRunLimits) -> Self {
        Self::with_memory_filesystem(disk, limits, PathBuf::from(MEMORY_FILESYSTEM))
    }

    fn with_memory_filesystem(disk: PathBuf, limits: DryRunLimits, memory: PathBuf) -> Self {
        Self {
            disk,
            memory_filesystem: memory,
            limits,
            memory: Mutex::new(Memory::Unopened),
            memory_slots: Arc::new(Semaphore::new(IN_MEMORY_RUNS)),
        }
    }

    /// Where the workspace named `name` goes (not created yet).
    pub(crate) fn place(&self, name: &str) -> Placement {
        if let Some(memory) = self.memory()
            && let Ok(slot) = self.memory_slots.clone().try_acquire_owned()
        {
            let runs = IN_MEMORY_RUNS - self.memory_slots.available_permits();
            let needed = self.limits.max_bytes.saturating_mul(runs as u64);
            if has_room(&memory, needed) {
                return Placement {
                    path: memory.join(name),
                    memory_slot: Some(slot),
                };
            }
        }
        Placement {
            path: self.disk.join(name),
            memory_slot: None,
        }
    }

    /// What a local run may return (`scaffolder.dryRun`).
    pub(crate) fn limits(&self) -> &DryRunLimits {
        &self.limits
    }

    /// The limits of a local run's workspace: no more than the run may return.
    pub(crate) fn cap(&self) -> WorkspaceCap {
        WorkspaceCap {
            max_bytes: self.limits.max_bytes,
            max_files: u64::try_from(self.limits.max_files).unwrap_or(u64::MAX),
            bytes_setting: "scaffolder.dryRun.maxBytes",
            files_setting: "scaffolder.dryRun.maxFiles",
        }
    }

    /// Removes the private directory (the server stops); later runs go to disk.
    pub(crate) fn close(&self) {
        *self.memory.lock().unwrap_or_else(|e| e.into_inner()) = Memory::Unavailable;
    }

    /// The private directory, made at the first call.
    fn memory(&self) -> Option<PathBuf> {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if let Memory::Unopened = *memory {
            *memory = match MemoryDirectory::create(&self.memory_filesystem) {
                Ok(directory) => Memory::Open(directory),
                Err(err) => {
                    tracing::debug!(
                        "dry runs' workspaces go to the working directory: no private directory in {}: {err}",
                        self.memory_filesystem.display()
                    );
                    Memory::Unavailable
                }
            };
        }
        match &*memory {
            Memory::Open(open) => Some(open.directory.path().to_owned()),
            Memory::Unopened | Memory::Unavailable => None,
        }
    }
}

impl MemoryDirectory {
    fn create(filesystem: &Path) -> std::io::Result<Self> {
        remove_abandoned(filesystem);
        let directory = tempfile::Builder::new()
            .prefix(PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(filesystem)?;
        let lock = File::open(directory.path())?;
        lock.try_lock().map_err(std::io::Error::other)?;
        Ok(Self {
            _lock: lock,
            directory,
        })
    }
}

/// Removes the private directories of processes of this user that ended without
/// removing theirs: unlocked, and older than [`ABANDONED_AFTER`].
fn remove_abandoned(filesystem: &Path) {
    let Ok(entries) = std::fs::read_dir(filesystem) else {
        return;
    };
    let user = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        // Not followed if a link; the filesystem's sticky bit keeps others from
        // replacing an entry of ours.
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let old = metadata
            .modified()
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age >= ABANDONED_AFTER);
        if !metadata.is_dir() || metadata.uid() != user || !old {
            continue;
        }
        let path = entry.path();
        let unlocked = File::open(&path).is_ok_and(|dir| dir.try_lock().is_ok());
        if unlocked && let Err(err) = std::fs::remove_dir_all(&path) {
            tracing::warn!("could not remove {}: {err}", path.display());
        }
    }
}

/// Whether the filesystem of `path` has `bytes` free for this process.
fn has_room(path: &Path, bytes: u64) -> bool {
    rustix::fs::statvfs(path).is_ok_and(|stat| stat.f_bavail.saturating_mul(stat.f_frsize) >= bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk directory, a memory filesystem, and a space over them for runs of up to
    /// `max_bytes`.
    struct Fixture {
        disk: tempfile::TempDir,
        memory: tempfile::TempDir,
        space: RunSpace,
    }

    fn fixture(max_bytes: u64) -> Fixture {
        let (disk, memory) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let space = RunSpace::with_memory_filesystem(
            disk.path().to_owned(),
            limits(max_bytes),
            memory.path().to_owned(),
        );
        Fixture {
            disk,
            memory,
            space,
        }
    }

    fn limits(max_bytes: u64) -> DryRunLimits {
        DryRunLimits {
            max_files: 100,
            max_bytes,
        }
    }

    #[test]
    fn runs_go_to_memory_up_to_the_slots_then_to_disk() {
        let Fixture {
            disk,
            memory,
            space,
        } = fixture(1 << 10);
        let private = |p: &Placement| p.path.parent().unwrap().to_owned();
        let placements: Vec<Placement> = (0..IN_MEMORY_RUNS)
            .map(|i| space.place(&format!("run-{i}")))
            .collect();
        for placement in &placements {
            assert_eq!(private(placement).parent().unwrap(), memory.path());
        }
        let fifth = space.place("run-x");
        assert_eq!(fifth.path, disk.path().join("run-x"));
        drop(placements);
        assert_eq!(
            private(&space.place("run-y")).parent().unwrap(),
            memory.path()
        );
        // The private directory is the process's own, closed to others.
        let mode = std::fs::metadata(private(&space.place("run-z")))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn closing_removes_the_private_directory() {
        let Fixture {
            disk,
            memory: _memory,
            space,
        } = fixture(1 << 10);
        let private = space.place("run").path.parent().unwrap().to_owned();
        assert!(private.is_dir());
        space.close();
        assert!(!private.exists());
        assert_eq!(space.place("run").path, disk.path().join("run"));
    }

    #[test]
    fn without_room_for_every_run_at_its_cap_runs_go_to_disk() {
        let Fixture {
            disk,
            memory: _memory,
            space,
        } = fixture(u64::MAX / 2);
        assert_eq!(space.place("run").path, disk.path().join("run"));
    }

    #[test]
    fn without_a_memory_filesystem_runs_go_to_disk() {
        let disk = tempfile::tempdir().unwrap();
        let space = RunSpace::with_memory_filesystem(
            disk.path().to_owned(),
            limits(1 << 10),
            disk.path().join("missing"),
        );
        assert_eq!(space.place("run").path, disk.path().join("run"));
    }

    #[test]
    fn abandoned_directories_are_removed_and_live_ones_kept() {
        let memory = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - ABANDONED_AFTER * 2;
        let make = |name: &str| {
            let path = memory.path().join(name);
            std::fs::create_dir(&path).unwrap();
            std::fs::write(path.join("file"), "x").unwrap();
            File::open(&path).unwrap().set_modified(old).unwrap();
            path
        };
        let abandoned = make("scaffolder-runs-dead");
        let live = make("scaffolder-runs-live");
        let live_lock = File::open(&live).unwrap();
        live_lock.try_lock().unwrap();
        let other = make("something-else");
        let recent = memory.path().join("scaffolder-runs-new");
        std::fs::create_dir(&recent).unwrap();

        let space = RunSpace::with_memory_filesystem(
            memory.path().join("disk"),
            limits(1 << 10),
            memory.path().to_owned(),
        );
        let placement = space.place("run");
        assert!(placement.path.starts_with(memory.path()));
        assert!(!abandoned.exists());
        assert!(live.exists() && other.exists() && recent.exists());
        drop(live_lock);
    }
}
