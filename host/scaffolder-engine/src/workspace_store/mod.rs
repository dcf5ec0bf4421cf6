//! Workspaces that travel between replicas (`scaffolder.workspaceStore`). A task's
//! workspace is a directory on the replica running it; when that replica dies, another
//! one recovers the task and re-runs it from after its last completed step. The running
//! replica saves the workspace after each completed step (and at checkpoints), and the
//! replica that takes the task over restores it before its next step.
//!
//! A save walks the workspace into a [`Manifest`] (`manifest.rs`), uploads the contents
//! it has not stored yet (incremental against the previous manifest the caller keeps),
//! and writes the manifest to the task database under the run's [`Lease`], so a run that
//! lost its task cannot overwrite the new holder's. Contents are content-addressed blobs
//! per task, in the task database (`database.rs`, zlib-compressed chunks) or in an S3
//! bucket (`s3.rs`), and immutable: writing them needs no lease. A restore makes the
//! workspace exactly the saved tree.
//!
//! Blobs a new manifest no longer names are deleted after that manifest was written, in
//! the database under the lease (in the same statement). In S3 they stay until the task's
//! saved workspace is removed ([`WorkspaceStore::remove`], [`WorkspaceStore::sweep`]):
//! S3 has no conditional delete, and a run that lost its task between a check and a
//! delete would remove a blob the new holder had just uploaded again.

mod database;
mod manifest;
mod s3;

use std::collections::HashSet;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use scaffolder_store::{Lease, Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub use manifest::{Entry, EntryKind, Manifest};
pub use s3::S3Config;

/// The default `maxBytes` with the database backend: a PostgreSQL row per 4 MiB chunk.
pub const DEFAULT_DATABASE_MAX_BYTES: u64 = 256 << 20;
/// The default `maxBytes` with S3.
pub const DEFAULT_S3_MAX_BYTES: u64 = 4 << 30;
/// The default cap on entries, as the sandbox's `maxWorkspaceFiles`.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// `scaffolder.workspaceStore`: where saved workspaces go, and how big they may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceStoreConfig {
    pub backend: WorkspaceBackend,
    /// `maxBytes`: the sum of the files' sizes a save accepts.
    pub max_bytes: u64,
    /// Files, directories and links a save accepts.
    pub max_entries: usize,
}

/// Where the files' contents are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceBackend {
    /// The task database (`workspace_blobs`).
    Database,
    S3(S3Config),
}

impl WorkspaceStoreConfig {
    /// The database backend with its default limits.
    pub fn database() -> Self {
        Self {
            backend: WorkspaceBackend::Database,
            max_bytes: DEFAULT_DATABASE_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    /// An S3 bucket with the default limits.
    pub fn s3(config: S3Config) -> Self {
        Self {
            backend: WorkspaceBackend::S3(config),
            max_bytes: DEFAULT_S3_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Why a workspace could not be saved, restored or removed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceStoreError {
    #[error("{}", too_large(*bytes, *limit, *s3))]
    TooLarge { bytes: u64, limit: u64, s3: bool },
    #[error(
        "the task workspace holds more than {limit} files, directories and links, the workspace store's limit"
    )]
    TooManyEntries { limit: usize },
    /// Includes [`StoreError::LeaseLost`]: the run no longer holds the task.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the saved workspace of task '{task_id}' is not usable: {message}")]
    Corrupt { task_id: String, message: String },
    #[error("workspace store at {bucket}: {source}")]
    S3 {
        bucket: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl WorkspaceStoreError {
    /// Whether the run lost its task (recovered elsewhere or ended): not a failure of the
    /// task, the run just stops.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::Store(StoreError::LeaseLost { .. }))
    }
}

fn too_large(bytes: u64, limit: u64, s3: bool) -> String {
    let advice = match s3 {
        true => "raise it",
        false => "raise it, or store workspaces in S3 (scaffolder.workspaceStore.type: s3)",
    };
    format!(
        "the task workspace holds {}, over the workspace store's limit of {} (scaffolder.workspaceStore.maxBytes): {advice}",
        size(bytes),
        size(limit)
    )
}

/// `300 MiB`, `1.5 GiB`, `812 bytes`: one decimal, none when it is 0.
fn size(bytes: u64) -> String {
    let units = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in units {
        if bytes >= unit {
            let value = format!("{:.1}", bytes as f64 / unit as f64);
            let value = value.strip_suffix(".0").unwrap_or(&value);
            return format!("{value} {name}");
        }
    }
    format!("{bytes} bytes")
}

/// The limits a save and a restore apply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkspaceLimits {
    pub max_bytes: u64,
    pub max_entries: usize,
    /// For the advice in [`WorkspaceStoreError::TooLarge`].
    pub s3: bool,
}

/// Saves, restores and removes task workspaces. Cheap to clone.
#[derive(Clone)]
pub struct WorkspaceStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    blobs: Blobs,
    limits: WorkspaceLimits,
    uploads: AtomicU64,
}

enum Blobs {
    Database,
    S3(s3::S3Blobs),
}

impl std::fmt::Debug for WorkspaceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.inner.blobs {
            Blobs::Database => "database".to_owned(),
            Blobs::S3(s3) => format!("s3 ({})", s3.bucket()),
        };
        f.debug_struct("WorkspaceStore")
            .field("backend", &backend)
            .field("max_bytes", &self.inner.limits.max_bytes)
            .field("max_entries", &self.inner.limits.max_entries)
            .finish()
    }
}

impl WorkspaceStore {
    /// A workspace store whose manifests go to `store`, and its blobs where `config` says.
    /// An S3 client is only built here (no request is made).
    pub fn new(store: Store, config: &WorkspaceStoreConfig) -> Result<Self, WorkspaceStoreError> {
        let blobs = match &config.backend {
            WorkspaceBackend::Database => Blobs::Database,
            WorkspaceBackend::S3(s3) => Blobs::S3(s3::S3Blobs::new(s3)?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                limits: WorkspaceLimits {
                    max_bytes: config.max_bytes,
                    max_entries: config.max_entries,
                    s3: matches!(blobs, Blobs::S3(_)),
                },
                blobs,
                uploads: AtomicU64::new(0),
            }),
        })
    }

    /// Saves the workspace `dir` of the task `lease` holds and returns its manifest, to
    /// pass as `previous` to the next save of the same run (or the one [`restore`]
    /// returned): only contents not in `previous` are uploaded, and files whose size and
    /// modification time are unchanged are not read. Fails with
    /// [`WorkspaceStoreError::is_lease_lost`] when the run no longer holds the task
    /// (nothing is uploaded then, or the manifest is not written), and with
    /// [`WorkspaceStoreError::TooLarge`] before uploading anything when over `maxBytes`.
    ///
    /// [`restore`]: Self::restore
    pub async fn save(
        &self,
        lease: &Lease,
        dir: &Path,
        previous: Option<&Manifest>,
    ) -> Result<Manifest, WorkspaceStoreError> {
        let inner = &self.inner;
        inner.store.begin_workspace_save(lease).await?;
        let known: HashSet<String> = previous
            .map(|m| m.digests().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        let spool =
            tempfile::tempfile_in(spool_dir(dir)).map_err(|source| WorkspaceStoreError::Io {
                path: spool_dir(dir).to_path_buf(),
                source,
            })?;
        let scan = {
            let dir = dir.to_path_buf();
            let previous = previous.cloned();
            let limits = inner.limits;
            tokio::task::spawn_blocking(move || {
                manifest::scan(&dir, previous.as_ref(), &known, &limits, spool)
            })
            .await
            .expect("the workspace walk does not panic")?
        };
        let mut spool = tokio::fs::File::from_std(scan.spool);
        for (digest, offset, len) in &scan.uploads {
            let io = |source| WorkspaceStoreError::Io {
                path: dir.to_path_buf(),
                source,
            };
            spool.seek(SeekFrom::Start(*offset)).await.map_err(io)?;
            let mut content = (&mut spool).take(*len);
            match &inner.blobs {
                Blobs::Database => {
                    database::put(&inner.store, &lease.task_id, digest, &mut content).await?
                }
                Blobs::S3(s3) => s3.put(&lease.task_id, digest, &mut content, *len).await?,
            }
            inner.uploads.fetch_add(1, Ordering::Relaxed);
        }
        let manifest = scan.manifest;
        inner
            .store
            .write_workspace_manifest(lease, &manifest.to_json(), manifest.bytes())
            .await?;
        if let (Blobs::Database, Some(previous)) = (&inner.blobs, previous) {
            let current = manifest.digests();
            let gone: Vec<String> = previous
                .digests()
                .into_iter()
                .filter(|d| !current.contains(d))
                .map(str::to_owned)
                .collect();
            if !gone.is_empty() {
                inner.store.delete_workspace_blobs(lease, &gone).await?;
            }
        }
        Ok(manifest)
    }

    /// Makes `dir` exactly the task's saved workspace (files, directories, links with
    /// their target text, modes and files' modification times; whatever else was there
    /// is removed) and returns its manifest; `None`, leaving `dir` alone, when nothing
    /// was saved.
    pub async fn restore(
        &self,
        task_id: &str,
        dir: &Path,
    ) -> Result<Option<Manifest>, WorkspaceStoreError> {
        let inner = &self.inner;
        let Some(text) = inner.store.workspace_manifest(task_id).await? else {
            return Ok(None);
        };
        let corrupt = |message: String| WorkspaceStoreError::Corrupt {
            task_id: task_id.to_owned(),
            message,
        };
        let manifest = Manifest::parse(&text, &inner.limits).map_err(corrupt)?;
        let parent = spool_dir(dir);
        std::fs::create_dir_all(parent).map_err(|source| WorkspaceStoreError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
        let downloads = tempfile::Builder::new()
            .prefix(".restore-blobs-")
            .tempdir_in(parent)
            .map_err(|source| WorkspaceStoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        for digest in manifest.digests() {
            let path = downloads.path().join(digest);
            let io = |source| WorkspaceStoreError::Io {
                path: path.clone(),
                source,
            };
            let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
            let got = match &inner.blobs {
                Blobs::Database => database::get(&inner.store, task_id, digest, &mut file).await?,
                Blobs::S3(s3) => s3.get(task_id, digest, &mut file).await?,
            };
            if got != digest {
                return Err(corrupt(format!(
                    "the blob {digest} holds content whose digest is {got}"
                )));
            }
        }
        let manifest = {
            let dir = dir.to_path_buf();
            let blobs = downloads.path().to_path_buf();
            tokio::task::spawn_blocking(move || {
                manifest::write_tree(&dir, &manifest, &mut |digest, file| {
                    let path = blobs.join(digest);
                    let mut blob =
                        std::fs::File::open(&path).map_err(|source| WorkspaceStoreError::Io {
                            path: path.clone(),
                            source,
                        })?;
                    std::io::copy(&mut blob, file)
                        .map(drop)
                        .map_err(|source| WorkspaceStoreError::Io { path, source })
                })
                .map(|()| manifest)
            })
            .await
            .expect("writing the workspace does not panic")?
        };
        Ok(Some(manifest))
    }

    /// Removes the task's saved workspace (its blobs, then its manifest). Nothing saved
    /// is no error.
    pub async fn remove(&self, task_id: &str) -> Result<(), WorkspaceStoreError> {
        if let Blobs::S3(s3) = &self.inner.blobs {
            s3.delete_task(task_id).await?;
        }
        self.inner.store.delete_workspace(task_id).await?;
        Ok(())
    }

    /// Removes the saved workspaces of tasks that have ended and were last saved more
    /// than `retention` ago (`scaffolder.workspaceRetention`, as for local workspaces: a
    /// failed task keeps its own for a retry, which may run on another replica). Returns
    /// the tasks whose workspaces were removed.
    pub async fn sweep(&self, retention: Duration) -> Result<Vec<String>, WorkspaceStoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let before = now.saturating_sub(retention).as_millis() as i64;
        let ids = self.inner.store.workspaces_of_ended_tasks(before).await?;
        for id in &ids {
            self.remove(id).await?;
        }
        Ok(ids)
    }

    /// How many blobs this store has uploaded since it was made.
    pub fn uploads(&self) -> u64 {
        self.inner.uploads.load(Ordering::Relaxed)
    }
}

/// Where a save spools contents and a restore stages the tree: the working directory
/// holding the workspace (the same file system, sized by the operator for workspaces).
fn spool_dir(dir: &Path) -> &Path {
    dir.parent().unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests;
