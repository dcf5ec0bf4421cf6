//! The task workspace's size and file count against the step's limits
//! (`maxWorkspaceBytes`, `maxWorkspaceFiles`), or the host's tighter [`WorkspaceCap`].
//!
//! Every write and every creation through `wasi:filesystem` is charged before it happens.
//! Charges are an upper bound of the growth (a rewrite is charged like an append), so the
//! workspace is only measured (a walk that follows no link) when the charges since the
//! last measurement no longer fit; then the real usage decides. A step that writes little
//! costs one walk of the workspace at its first write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::budget::{LimitExceeded, StepBudget, limit_message};
use crate::limits::human_bytes;

/// Workspace limits tighter than the plugin's, set by the host for one step, with the
/// settings that raise them (a dry run's workspace holds no more than the run may return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceCap {
    pub max_bytes: u64,
    pub max_files: u64,
    /// Named in the failure when `max_bytes` is the limit reached.
    pub bytes_setting: &'static str,
    /// Named in the failure when `max_files` is the limit reached.
    pub files_setting: &'static str,
}

/// The quota of one step's workspace.
#[derive(Debug)]
pub(crate) struct WorkspaceQuota {
    root: PathBuf,
    bytes: Limit,
    files: Limit,
    budget: Arc<StepBudget>,
    usage: Mutex<Usage>,
}

/// One of the quota's two limits, and who may raise it (named in the failure).
#[derive(Debug, Clone, Copy)]
struct Limit {
    max: u64,
    raised_by: RaisedBy,
}

#[derive(Debug, Clone, Copy)]
enum RaisedBy {
    /// The plugin's `limits.<key>`.
    Plugin(&'static str),
    /// A server setting, the source of a [`WorkspaceCap`].
    Operator(&'static str),
}

impl Limit {
    /// The plugin's limit, or the host's cap where that is tighter.
    fn tighter(plugin: u64, key: &'static str, cap: Option<(u64, &'static str)>) -> Self {
        match cap {
            Some((max, setting)) if max < plugin => Self {
                max,
                raised_by: RaisedBy::Operator(setting),
            },
            _ => Self {
                max: plugin,
                raised_by: RaisedBy::Plugin(key),
            },
        }
    }

    /// The failure, `what` being the limit as a phrase.
    fn exceeded(self, what: &str) -> String {
        match self.raised_by {
            RaisedBy::Plugin(key) => limit_message(what, key),
            RaisedBy::Operator(setting) => {
                format!("{what} exceeded (the operator can raise {setting})")
            }
        }
    }
}

#[derive(Debug, Default)]
struct Usage {
    /// What the last walk found, once there was one.
    measured: Option<Measured>,
    /// Charged since that walk.
    bytes_since: u64,
    files_since: u64,
    /// Charged during the whole step: bytes written and files created.
    bytes_charged: u64,
    files_charged: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Measured {
    bytes: u64,
    files: u64,
}

impl WorkspaceQuota {
    pub(crate) fn new(root: PathBuf, budget: Arc<StepBudget>, cap: Option<&WorkspaceCap>) -> Self {
        let limits = budget.limits();
        Self {
            root,
            bytes: Limit::tighter(
                limits.max_workspace_bytes,
                "maxWorkspaceBytes",
                cap.map(|cap| (cap.max_bytes, cap.bytes_setting)),
            ),
            files: Limit::tighter(
                limits.max_workspace_files,
                "maxWorkspaceFiles",
                cap.map(|cap| (cap.max_files, cap.files_setting)),
            ),
            budget,
            usage: Mutex::default(),
        }
    }

    /// Charges `bytes` about to be written and `files` about to be created.
    pub(crate) fn charge(&self, bytes: u64, files: u64) -> Result<(), LimitExceeded> {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let base = match usage.measured {
            Some(measured) => measured,
            None => *usage.measured.insert(self.measure()),
        };
        let fits = |base: Measured, bytes_since: u64, files_since: u64| {
            base.bytes.saturating_add(bytes_since).saturating_add(bytes) <= self.bytes.max
                && base.files.saturating_add(files_since).saturating_add(files) <= self.files.max
        };
        if fits(base, usage.bytes_since, usage.files_since) {
            usage.bytes_since += bytes;
            usage.files_since += files;
            usage.bytes_charged += bytes;
            usage.files_charged += files;
            return Ok(());
        }
        let measured = self.measure();
        usage.measured = Some(measured);
        usage.bytes_since = bytes;
        usage.files_since = files;
        if measured.bytes.saturating_add(bytes) > self.bytes.max {
            self.budget.exceed(self.bytes.exceeded(&format!(
                "workspace size limit of {}",
                human_bytes(self.bytes.max)
            )));
            return Err(LimitExceeded);
        }
        if measured.files.saturating_add(files) > self.files.max {
            self.budget.exceed(
                self.files
                    .exceeded(&format!("workspace file limit of {} files", self.files.max)),
            );
            return Err(LimitExceeded);
        }
        usage.bytes_charged += bytes;
        usage.files_charged += files;
        Ok(())
    }

    /// Bytes written and files created through this quota so far, as charged (a
    /// rewrite counts like an append).
    pub(crate) fn charged(&self) -> (u64, u64) {
        let usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        (usage.bytes_charged, usage.files_charged)
    }

    /// Walks the workspace; stops counting once both limits are passed.
    fn measure(&self) -> Measured {
        let mut measured = Measured::default();
        let mut pending = vec![self.root.clone()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // `DirEntry::metadata` does not follow a link.
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                measured.files += 1;
                if metadata.is_file() {
                    measured.bytes = measured.bytes.saturating_add(metadata.len());
                } else if metadata.is_dir() {
                    pending.push(entry.path());
                }
                if measured.bytes > self.bytes.max && measured.files > self.files.max {
                    return measured;
                }
            }
        }
        measured
    }
}

/// Where a workspace file stream writes: from a position on, or at the end.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WriteAt {
    Position(u64),
    End,
}

/// A workspace file's output stream (`write-via-stream`, `append-via-stream`): every
/// write charged to the workspace quota first, then done in place on the step's thread.
///
/// It replaces wasmtime-wasi's file stream, whose non-blocking `write` (the one
/// wasi-libc's `write` uses) hands every chunk to tokio's blocking pool and the guest's
/// flush then waits for that thread: two thread switches per write, which cost more than
/// the small writes of a workspace. (`allow_blocking_current_thread` covers wasmtime-wasi's
/// other file calls, not that one.)
pub(crate) struct WorkspaceFileStream {
    file: Arc<std::fs::File>,
    at: WriteAt,
    quota: Arc<WorkspaceQuota>,
    state: StreamState,
}

enum StreamState {
    Ready,
    /// The last write failed; reported by the next `check-write` or flush.
    Failed(std::io::Error),
    Closed,
}

/// What `check-write` allows at once, as wasmtime-wasi's file stream.
const WRITE_CAPACITY: usize = 1024 * 1024;

impl WorkspaceFileStream {
    /// The stream, boxed as the resource table holds output streams.
    pub(crate) fn boxed(
        file: Arc<std::fs::File>,
        at: WriteAt,
        quota: Arc<WorkspaceQuota>,
    ) -> DynOutputStream {
        Box::new(Self {
            file,
            at,
            quota,
            state: StreamState::Ready,
        })
    }

    fn charge(&self, bytes: usize) -> StreamResult<()> {
        self.quota
            .charge(bytes as u64, 0)
            .map_err(|LimitExceeded| StreamError::trap("workspace limit exceeded"))
    }

    /// The pending failure, once; `Closed` after it.
    fn take_failure(&mut self) -> StreamResult<()> {
        match std::mem::replace(&mut self.state, StreamState::Closed) {
            StreamState::Ready => {
                self.state = StreamState::Ready;
                Ok(())
            }
            StreamState::Failed(err) => Err(StreamError::LastOperationFailed(err.into())),
            StreamState::Closed => Err(StreamError::Closed),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        match &mut self.at {
            WriteAt::Position(position) => {
                self.file.write_all_at(bytes, *position)?;
                *position += bytes.len() as u64;
            }
            WriteAt::End => {
                // O_APPEND for this write only: the descriptor is shared with the guest's
                // other handles and streams.
                let mut rest = bytes;
                while !rest.is_empty() {
                    let written = rustix::io::pwritev2(
                        &*self.file,
                        &[std::io::IoSlice::new(rest)],
                        0,
                        rustix::io::ReadWriteFlags::APPEND,
                    )?;
                    rest = &rest[written..];
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Pollable for WorkspaceFileStream {
    /// Always ready: writes are done before `write` returns.
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for WorkspaceFileStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take_failure()?;
        self.charge(bytes.len())?;
        if let Err(err) = self.write_all(&bytes) {
            self.state = StreamState::Failed(err);
        }
        Ok(())
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take_failure()?;
        self.charge(bytes.len())?;
        self.write_all(&bytes).map_err(|err| {
            self.state = StreamState::Closed;
            StreamError::LastOperationFailed(err.into())
        })
    }

    fn flush(&mut self) -> StreamResult<()> {
        match self.state {
            StreamState::Closed => Err(StreamError::Closed),
            // Reported by the `check-write` that follows the flush, as WASI says.
            StreamState::Ready | StreamState::Failed(_) => Ok(()),
        }
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.take_failure().map(|()| WRITE_CAPACITY)
    }

    fn write_zeroes(&mut self, nelem: usize) -> StreamResult<()> {
        self.write(Bytes::from(vec![0; nelem]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use std::path::Path;

    fn quota(dir: &Path, max_bytes: u64, max_files: u64) -> (WorkspaceQuota, Arc<StepBudget>) {
        let budget = Arc::new(StepBudget::new(&Limits {
            max_workspace_bytes: max_bytes,
            max_workspace_files: max_files,
            ..Limits::default()
        }));
        (
            WorkspaceQuota::new(dir.to_owned(), budget.clone(), None),
            budget,
        )
    }

    #[test]
    fn a_tighter_cap_is_the_limit_and_names_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(StepBudget::new(&Limits {
            max_workspace_bytes: 1000,
            max_workspace_files: 10,
            ..Limits::default()
        }));
        let cap = WorkspaceCap {
            max_bytes: 100,
            max_files: 50,
            bytes_setting: "scaffolder.dryRun.maxBytes",
            files_setting: "scaffolder.dryRun.maxFiles",
        };
        let quota = WorkspaceQuota::new(dir.path().to_owned(), budget.clone(), Some(&cap));
        assert_eq!(quota.charge(100, 1), Ok(()));
        std::fs::write(dir.path().join("a"), vec![0; 100]).unwrap();
        assert_eq!(quota.charge(1, 0), Err(LimitExceeded));
        assert_eq!(
            budget.exceeded().unwrap(),
            "workspace size limit of 100 bytes exceeded (the operator can raise scaffolder.dryRun.maxBytes)"
        );
        // The plugin's file limit (10) is the tighter one: it stays, with its own advice.
        let budget = Arc::new(StepBudget::new(&Limits {
            max_workspace_files: 10,
            ..Limits::default()
        }));
        let quota = WorkspaceQuota::new(dir.path().to_owned(), budget.clone(), Some(&cap));
        assert_eq!(quota.charge(0, 11), Err(LimitExceeded));
        assert_eq!(
            budget.exceeded().unwrap(),
            "workspace file limit of 10 files exceeded (the operator can raise limits.maxWorkspaceFiles for this plugin)"
        );
    }

    #[test]
    fn charges_fit_until_the_measured_usage_does_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![0; 600]).unwrap();
        let (quota, budget) = quota(dir.path(), 1000, 10);
        assert_eq!(quota.charge(300, 1), Ok(()));
        // 600 on disk + 300 charged + 200 > 1000: measured again (still 600), so it fits.
        assert_eq!(quota.charge(200, 0), Ok(()));
        // The 200 bytes land on disk, with 100 more: 900 measured + 300 > 1000.
        std::fs::write(dir.path().join("b"), vec![0; 300]).unwrap();
        assert_eq!(quota.charge(300, 0), Err(LimitExceeded));
        assert!(
            budget
                .exceeded()
                .unwrap()
                .starts_with("workspace size limit of 1000 bytes exceeded")
        );
    }

    #[test]
    fn sparse_files_count_whole_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![0; 4096]).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(1 << 20).unwrap();
        let (quota, _) = quota(dir.path(), u64::MAX, u64::MAX);
        assert_eq!(
            quota.measure(),
            Measured {
                bytes: 1 << 20,
                files: 2
            }
        );
    }

    #[test]
    fn files_are_counted_against_their_own_limit() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let (quota, budget) = quota(dir.path(), u64::MAX, 3);
        assert_eq!(quota.charge(0, 1), Err(LimitExceeded));
        assert!(
            budget
                .exceeded()
                .unwrap()
                .starts_with("workspace file limit of 3 files exceeded")
        );
    }
}
