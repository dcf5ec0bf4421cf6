//! The manifest of a saved workspace, the walk that makes one, and the writing of a tree
//! from one.
//!
//! A manifest lists every entry of the workspace, sorted by path: its path relative to
//! the workspace (`/`-separated components), its Unix mode bits, and its kind: a
//! directory; a file with its size, modification time (nanoseconds since the epoch) and
//! the SHA-256 of its content (lowercase hex); or a link with its target text.
//!
//! The workspace is written by untrusted plugins, and a save may run while a step is
//! paused in a checkpoint, so the walk is descriptor-relative: every directory is opened
//! from its parent's descriptor with `O_NOFOLLOW | O_DIRECTORY`, every file with
//! `O_NOFOLLOW | O_NONBLOCK` and read once (hashed while it is copied to the spool the
//! upload reads), so an entry swapped for a link is never followed and the uploaded bytes
//! are the hashed ones. Fifos, sockets and devices are skipped. A file whose size and
//! modification time equal the previous manifest's is not read again.
//!
//! A manifest read back from the store is untrusted too: [`Manifest::parse`] refuses `..`,
//! `.`, empty and absolute paths, duplicates, an entry whose parent is not a directory
//! entry listed before it, and digests that are not SHA-256 hex. The tree is written into
//! a fresh staging directory, creating each entry under a directory this code made, with
//! `O_NOFOLLOW | O_EXCL`, and then put in place of the workspace.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{WorkspaceLimits, WorkspaceStoreError};

/// The manifest format's version.
const VERSION: u32 = 1;

/// Every entry of a saved workspace, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub entries: Vec<Entry>,
}

/// One file, directory or link of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the workspace, `/`-separated.
    pub path: String,
    /// The permission bits (`0o7777` at most).
    pub mode: u32,
    #[serde(flatten)]
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EntryKind {
    Dir,
    File {
        size: u64,
        /// Modification time, nanoseconds since the Unix epoch.
        mtime_ns: i64,
        /// SHA-256 of the content, lowercase hex.
        digest: String,
    },
    Symlink {
        target: String,
    },
}

impl Manifest {
    /// The sum of the files' sizes.
    pub fn bytes(&self) -> u64 {
        self.files().map(|(_, size, _)| size).sum()
    }

    /// The digests of the files' contents, each once.
    pub fn digests(&self) -> HashSet<&str> {
        self.files().map(|(_, _, digest)| digest).collect()
    }

    fn files(&self) -> impl Iterator<Item = (&str, u64, &str)> {
        self.entries.iter().filter_map(|e| match &e.kind {
            EntryKind::File { size, digest, .. } => Some((e.path.as_str(), *size, digest.as_str())),
            _ => None,
        })
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a manifest serializes")
    }

    /// A manifest read from the store, checked entry by entry (see the module comment).
    pub(crate) fn parse(text: &str, limits: &WorkspaceLimits) -> Result<Self, String> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|err| err.to_string())?;
        if manifest.version != VERSION {
            return Err(format!("unknown manifest version {}", manifest.version));
        }
        if manifest.entries.len() > limits.max_entries {
            return Err(format!("more than {} entries", limits.max_entries));
        }
        let mut dirs: HashSet<&str> = HashSet::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in &manifest.entries {
            let path = entry.path.as_str();
            if !valid_path(path) {
                return Err(format!("invalid path {path:?}"));
            }
            if !seen.insert(path) {
                return Err(format!("{path:?} is listed twice"));
            }
            if let Some((parent, _)) = path.rsplit_once('/')
                && !dirs.contains(parent)
            {
                return Err(format!(
                    "{path:?} is not under a directory listed before it"
                ));
            }
            if entry.mode & !0o7777 != 0 {
                return Err(format!("{path:?} has mode {:o}", entry.mode));
            }
            match &entry.kind {
                EntryKind::Dir => {
                    dirs.insert(path);
                }
                EntryKind::File { digest, .. } if !valid_digest(digest) => {
                    return Err(format!("{path:?} has digest {digest:?}"));
                }
                EntryKind::Symlink { target } if target.is_empty() || target.contains('\0') => {
                    return Err(format!("{path:?} has link target {target:?}"));
                }
                _ => {}
            }
        }
        if manifest.bytes() > limits.max_bytes {
            return Err(format!("more than {} bytes", limits.max_bytes));
        }
        Ok(manifest)
    }
}

/// SHA-256 in lowercase hex: what blob names are made of.
pub(crate) fn valid_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Relative, `/`-separated, no empty, `.` or `..` component, no NUL.
fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// What a walk found: the new manifest and where the contents of files not stored yet
/// are in the spool.
pub(crate) struct Scan {
    pub manifest: Manifest,
    /// Digest → (offset, length) in the spool, for digests not in `known`.
    pub uploads: Vec<(String, u64, u64)>,
    pub spool: File,
}

/// Walks `root` (see the module comment). Files whose size and modification time equal
/// `previous`'s entry keep its digest unread; contents whose digest is not in `known`
/// are copied to `spool` for the upload. Over `limits`, fails before reading any file.
pub(crate) fn scan(
    root: &Path,
    previous: Option<&Manifest>,
    known: &HashSet<String>,
    limits: &WorkspaceLimits,
    mut spool: File,
) -> Result<Scan, WorkspaceStoreError> {
    let io = |path: &str| {
        let path = root.join(path);
        move |source: std::io::Error| WorkspaceStoreError::Io { path, source }
    };
    let root_fd = open_dir(rustix::fs::CWD, root).map_err(|e| io("")(e.into()))?;
    let mut found = Vec::new();
    walk(root, &root_fd, "", &mut found, limits)?;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let bytes: u64 = found
        .iter()
        .filter_map(|e| match e.kind {
            EntryKind::File { size, .. } => Some(size),
            _ => None,
        })
        .sum();
    if bytes > limits.max_bytes {
        return Err(WorkspaceStoreError::TooLarge {
            bytes,
            limit: limits.max_bytes,
            s3: limits.s3,
        });
    }

    let before: HashMap<&str, (u64, i64, &str)> = previous
        .map(|m| {
            m.entries
                .iter()
                .filter_map(|e| match &e.kind {
                    EntryKind::File {
                        size,
                        mtime_ns,
                        digest,
                    } => Some((e.path.as_str(), (*size, *mtime_ns, digest.as_str()))),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut entries = Vec::with_capacity(found.len());
    let mut uploads = Vec::new();
    let mut spooled: HashSet<String> = HashSet::new();
    let mut read_bytes = 0u64;
    for entry in found {
        let EntryKind::File { size, mtime_ns, .. } = entry.kind else {
            entries.push(entry);
            continue;
        };
        if let Some(&(old_size, old_mtime, digest)) = before.get(entry.path.as_str())
            && old_size == size
            && old_mtime == mtime_ns
        {
            entries.push(Entry {
                kind: EntryKind::File {
                    size,
                    mtime_ns,
                    digest: digest.to_owned(),
                },
                ..entry
            });
            continue;
        }
        let offset = spool.stream_position().map_err(io(""))?;
        let allowed = limits.max_bytes.saturating_sub(read_bytes);
        let Some(read) =
            read_file(&root_fd, &entry.path, &mut spool, allowed).map_err(io(&entry.path))?
        else {
            // Gone, or no longer a regular file: a step changed it meanwhile.
            continue;
        };
        read_bytes += read.size;
        if read.size > allowed {
            return Err(WorkspaceStoreError::TooLarge {
                bytes: bytes.max(read_bytes),
                limit: limits.max_bytes,
                s3: limits.s3,
            });
        }
        if known.contains(&read.digest) || spooled.contains(&read.digest) {
            spool.seek(SeekFrom::Start(offset)).map_err(io(""))?;
            spool.set_len(offset).map_err(io(""))?;
        } else {
            spooled.insert(read.digest.clone());
            uploads.push((read.digest.clone(), offset, read.size));
        }
        entries.push(Entry {
            path: entry.path,
            mode: read.mode,
            kind: EntryKind::File {
                size: read.size,
                mtime_ns: read.mtime_ns,
                digest: read.digest,
            },
        });
    }
    Ok(Scan {
        manifest: Manifest {
            version: VERSION,
            entries,
        },
        uploads,
        spool,
    })
}

/// Lists the directory `dir` (at `prefix`) and everything under it into `out`, sizes and
/// times from `lstat`, files unread. Entries that vanish meanwhile are left out.
fn walk(
    root: &Path,
    dir: &OwnedFd,
    prefix: &str,
    out: &mut Vec<Entry>,
    limits: &WorkspaceLimits,
) -> Result<(), WorkspaceStoreError> {
    let fail = |path: &str| {
        let path = root.join(path);
        move |err: rustix::io::Errno| WorkspaceStoreError::Io {
            path,
            source: err.into(),
        }
    };
    let invalid = |path: &str, message: &str| WorkspaceStoreError::Io {
        path: root.join(path),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned()),
    };
    let listing = rustix::fs::Dir::read_from(dir).map_err(fail(prefix))?;
    for item in listing {
        let item = item.map_err(fail(prefix))?;
        let name = item.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let Ok(name_text) = name.to_str() else {
            let path = format!("{prefix}{}", name.to_string_lossy());
            return Err(invalid(
                &path,
                "the name is not UTF-8, which the workspace store cannot keep",
            ));
        };
        let path = format!("{prefix}{name_text}");
        let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(err) => return Err(fail(&path)(err)),
        };
        let mode = stat.st_mode & 0o7777;
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => EntryKind::Dir,
            FileType::RegularFile => EntryKind::File {
                size: stat.st_size as u64,
                mtime_ns: (stat.st_mtime as i64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(stat.st_mtime_nsec as i64),
                digest: String::new(),
            },
            FileType::Symlink => {
                let target = match rustix::fs::readlinkat(dir, name, Vec::new()) {
                    Ok(target) => target,
                    Err(rustix::io::Errno::NOENT | rustix::io::Errno::INVAL) => continue,
                    Err(err) => return Err(fail(&path)(err)),
                };
                let Ok(target) = target.into_string() else {
                    return Err(invalid(
                        &path,
                        "the link target is not UTF-8, which the workspace store cannot keep",
                    ));
                };
                EntryKind::Symlink { target }
            }
            // Fifos, sockets and devices.
            _ => continue,
        };
        if out.len() >= limits.max_entries {
            return Err(WorkspaceStoreError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let is_dir = matches!(kind, EntryKind::Dir);
        out.push(Entry {
            path: path.clone(),
            mode,
            kind,
        });
        if is_dir {
            let child = match open_dir(dir, name) {
                Ok(child) => child,
                // Swapped for a link or removed since it was listed.
                Err(
                    rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR,
                ) => {
                    out.pop();
                    continue;
                }
                Err(err) => return Err(fail(&path)(err)),
            };
            walk(root, &child, &format!("{path}/"), out, limits)?;
        }
    }
    Ok(())
}

fn open_dir<Fd: std::os::fd::AsFd, P: rustix::path::Arg>(
    dir: Fd,
    name: P,
) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

struct ReadFile {
    size: u64,
    mode: u32,
    mtime_ns: i64,
    digest: String,
}

/// Copies the regular file at `path` (beneath `root`, no link followed on the way) to
/// `spool`, hashing it; `None` when it is gone or no longer a regular file. At most one
/// byte over `allowed` is read.
fn read_file(
    root: &OwnedFd,
    path: &str,
    spool: &mut File,
    allowed: u64,
) -> std::io::Result<Option<ReadFile>> {
    let (parent, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, path),
    };
    let mut dir_holder = None;
    if let Some(parent) = parent {
        let mut current = rustix::io::dup(root)?;
        for component in parent.split('/') {
            current = match open_dir(&current, component) {
                Ok(fd) => fd,
                Err(
                    rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR,
                ) => {
                    return Ok(None);
                }
                Err(err) => return Err(err.into()),
            };
        }
        dir_holder = Some(current);
    }
    let dir = dir_holder.as_ref().unwrap_or(root);
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let file = File::from(fd);
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Ok(None);
    }
    let mtime_ns = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 256 << 10];
    let mut reader = file.take(allowed.saturating_add(1));
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        spool.write_all(&buffer[..n])?;
        size += n as u64;
    }
    Ok(Some(ReadFile {
        size,
        mode: metadata.permissions().mode() & 0o7777,
        mtime_ns,
        digest: hex(&hasher.finalize()),
    }))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes `dir` exactly the tree of `manifest`: written into a fresh staging directory
/// beside it, whose files' contents `content` writes (given the digest), then put in
/// place of `dir` (whatever was there is removed, links in it not followed).
pub(crate) fn write_tree(
    dir: &Path,
    manifest: &Manifest,
    content: &mut dyn FnMut(&str, &mut File) -> Result<(), WorkspaceStoreError>,
) -> Result<(), WorkspaceStoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| WorkspaceStoreError::Io { path, source }
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let base = staging.path();
    for entry in &manifest.entries {
        // Checked by `Manifest::parse`; checked again, as this is what keeps the writes
        // inside the staging directory.
        assert!(valid_path(&entry.path), "a parsed manifest's path");
        let path = base.join(&entry.path);
        if let Some(parent) = path.parent()
            && parent != base
        {
            let meta = std::fs::symlink_metadata(parent).map_err(io(parent))?;
            if !meta.file_type().is_dir() {
                return Err(WorkspaceStoreError::Io {
                    path: parent.to_path_buf(),
                    source: std::io::Error::other("not a directory the restore made"),
                });
            }
        }
        match &entry.kind {
            EntryKind::Dir => std::fs::create_dir(&path).map_err(io(&path))?,
            EntryKind::Symlink { target } => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), &path)
                    .map_err(io(&path))?
            }
            EntryKind::File {
                mtime_ns, digest, ..
            } => {
                let mut file = File::options()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io(&path))?;
                content(digest, &mut file)?;
                file.set_permissions(std::fs::Permissions::from_mode(entry.mode))
                    .map_err(io(&path))?;
                let mtime =
                    UNIX_EPOCH + Duration::from_nanos(u64::try_from(*mtime_ns).unwrap_or(0));
                file.set_modified(mtime).map_err(io(&path))?;
            }
        }
    }
    // Directory modes last, deepest first, so a read-only directory is filled first.
    for entry in manifest.entries.iter().rev() {
        if matches!(entry.kind, EntryKind::Dir) {
            let path = base.join(&entry.path);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))
                .map_err(io(&path))?;
        }
    }
    remove_tree(dir)?;
    let kept = staging.keep();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o700)).map_err(io(&kept))?;
    std::fs::rename(&kept, dir).map_err(io(dir))?;
    Ok(())
}

/// Removes `dir` and everything in it; links are removed, never followed.
/// Directories without write permission are opened up first.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), WorkspaceStoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| WorkspaceStoreError::Io { path, source }
    };
    match std::fs::symlink_metadata(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io(dir)(err)),
        Ok(meta) if !meta.file_type().is_dir() => {
            return std::fs::remove_file(dir).map_err(io(dir));
        }
        Ok(_) => {}
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let meta = std::fs::symlink_metadata(&current).map_err(io(&current))?;
        if meta.file_type().is_dir() && meta.permissions().mode() & 0o700 != 0o700 {
            std::fs::set_permissions(&current, std::fs::Permissions::from_mode(0o700))
                .map_err(io(&current))?;
        }
        for item in std::fs::read_dir(&current).map_err(io(&current))? {
            let item = item.map_err(io(&current))?;
            if item.file_type().map_err(io(&item.path()))?.is_dir() {
                pending.push(item.path());
            }
        }
    }
    std::fs::remove_dir_all(dir).map_err(io(dir))
}
