//! `wasi:filesystem` with every path operation checked and every denial named.
//!
//! The step sees three preopened directories:
//! - `/workspace`, the task workspace, read-write (and the working directory);
//! - `/template`, the template's own directory, read-only, when granted;
//! - `/`, an empty read-only *sentinel* that catches every other absolute path, so that
//!   `open("/etc/passwd")` reaches the host (instead of failing silently inside the
//!   guest's libc) and is denied with a message naming the path.
//!
//! Escapes through `..` or through a symlink pointing out of a preopen are refused by
//! cap-std underneath wasmtime-wasi; this wrapper turns those refusals into named
//! denials. Everything else delegates unchanged to wasmtime-wasi's implementation.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::workspace_quota::{WorkspaceFileStream, WorkspaceQuota, WriteAt};
use super::{Capability, Denials, StepSetup};
use crate::budget::LimitExceeded;
use crate::step::{StepFailure, StepFailureKind, StepState, StepUsage};

/// Guest path of the sentinel preopen.
pub const SENTINEL_GUEST_PATH: &str = "/";
/// Guest path of the workspace preopen.
pub const WORKSPACE_GUEST_PATH: &str = "/workspace";
/// Guest path of the template directory preopen.
pub const TEMPLATE_GUEST_PATH: &str = "/template";

/// Per-step state of the guarded filesystem.
#[derive(Debug)]
pub struct Filesystem {
    denials: Denials,
    /// Guest handles of the sentinel directory (`/`): the preopen, and any the guest
    /// asked for again.
    sentinels: Vec<u32>,
    /// Charged for every write and creation; none while describing a plugin.
    quota: Option<Arc<WorkspaceQuota>>,
}

impl Capability for Filesystem {
    fn link(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
        types::add_to_linker::<_, SandboxedFilesystem>(linker, view)?;
        preopens::add_to_linker::<_, SandboxedFilesystem>(linker, view)
    }

    /// Preopens the sentinel, the workspace and, when granted, the template directory.
    fn prepare(setup: &StepSetup<'_>, wasi: &mut WasiCtxBuilder) -> Result<Self, StepFailure> {
        let quota = match &setup.place {
            Some(place) => {
                // Workspace files are small and local: doing their I/O on the step's own
                // thread costs less than handing each call to tokio's blocking pool and
                // back. Each preopen takes this setting when it is made, so it comes
                // first.
                wasi.allow_blocking_current_thread(true)
                    .initial_cwd(WORKSPACE_GUEST_PATH);
                wasi.preopened_dir(place.sentinel, SENTINEL_GUEST_PATH, FsPerms::ReadOnly)
                    .map_err(|e| host_error("the sandbox root could not be opened", e))?;
                preopen(
                    wasi,
                    "the workspace",
                    place.workspace,
                    WORKSPACE_GUEST_PATH,
                    FsPerms::ReadWrite,
                )?;
                if let Some(dir) = setup.granted_template() {
                    preopen(
                        wasi,
                        "the template directory",
                        dir,
                        TEMPLATE_GUEST_PATH,
                        FsPerms::ReadOnly,
                    )?;
                }
                Some(Arc::new(WorkspaceQuota::new(
                    place.workspace.to_owned(),
                    setup.budget.clone(),
                    place.workspace_cap,
                )))
            }
            None => None,
        };
        Ok(Self {
            denials: setup.denials.clone(),
            sentinels: Vec::new(),
            quota,
        })
    }

    fn account(&self, usage: &mut StepUsage) {
        if let Some(quota) = &self.quota {
            (usage.workspace_bytes_written, usage.workspace_files_created) = quota.charged();
        }
    }
}

fn view(state: &mut StepState) -> SandboxedFilesystemView<'_> {
    SandboxedFilesystemView {
        inner: WasiFilesystemCtxView {
            ctx: state.wasi.filesystem(),
            table: &mut state.table,
        },
        guard: &mut state.capabilities.filesystem,
    }
}

/// Preopens `dir` at `guest_path`; a failure names `what` and the host directory.
fn preopen(
    wasi: &mut WasiCtxBuilder,
    what: &str,
    dir: &Path,
    guest_path: &str,
    perms: FsPerms,
) -> Result<(), StepFailure> {
    wasi.preopened_dir(dir, guest_path, perms)
        .map_err(|e| host_error(&format!("{what} {} could not be opened", dir.display()), e))?;
    Ok(())
}

fn host_error(what: &str, err: wasmtime::Error) -> StepFailure {
    StepFailure::new(StepFailureKind::Host, format!("{what}: {err:#}"))
}

impl Filesystem {
    /// Charges a write or a creation to the workspace quota; the step stops when it is
    /// spent.
    fn charge(&self, bytes: u64, files: u64) -> FsResult<()> {
        match &self.quota {
            Some(quota) => quota.charge(bytes, files).map_err(|LimitExceeded| {
                FsError::trap(wasmtime::format_err!("workspace limit exceeded"))
            }),
            None => Ok(()),
        }
    }
}

/// The `HasData` marker that links the guarded filesystem.
pub struct SandboxedFilesystem;

impl HasData for SandboxedFilesystem {
    type Data<'a> = SandboxedFilesystemView<'a>;
}

/// wasmtime-wasi's filesystem view plus the guard.
pub struct SandboxedFilesystemView<'a> {
    pub inner: WasiFilesystemCtxView<'a>,
    pub guard: &'a mut Filesystem,
}

impl SandboxedFilesystemView<'_> {
    /// Refuses any use of the sentinel directory.
    fn check(&self, fd: &Resource<Descriptor>, path: &str) -> FsResult<()> {
        if self.guard.sentinels.contains(&fd.rep()) {
            let shown = format!("/{}", path.trim_start_matches('/'));
            self.guard
                .denials
                .record(format!("access outside the workspace denied: {shown}"));
            return Err(ErrorCode::Access.into());
        }
        Ok(())
    }

    fn is_read_only(&self, fd: &Resource<Descriptor>) -> bool {
        matches!(self.inner.table.get(fd), Ok(Descriptor::Dir(d)) if d.perms == FsPerms::ReadOnly)
    }

    /// Names a refusal of cap-std (an escape) or of wasmtime-wasi (a write to a
    /// read-only directory); other errors pass through unnamed.
    fn name_refusal<T>(&self, read_only: bool, path: &str, result: FsResult<T>) -> FsResult<T> {
        if let Err(err) = &result
            && let Some(ErrorCode::NotPermitted | ErrorCode::Access) = err.downcast_ref()
        {
            let message = if read_only {
                format!("write to the read-only template directory denied: {path}")
            } else {
                format!("access outside the workspace denied: {path}")
            };
            self.guard.denials.record(message);
        }
        result
    }
}

impl SandboxedFilesystemView<'_> {
    /// With a workspace quota, replaces the output stream wasmtime-wasi made for `fd` (which
    /// checked the descriptor and its permissions) by one that charges its writes and does
    /// them in place ([`WorkspaceFileStream`]).
    fn charged_stream(
        &mut self,
        fd: u32,
        stream: Resource<DynOutputStream>,
        at: WriteAt,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some(quota) = self.guard.quota.clone() else {
            return Ok(stream);
        };
        let file = match self
            .inner
            .table
            .get(&Resource::<Descriptor>::new_borrow(fd))?
        {
            Descriptor::File(file) => file.file.clone(),
            // wasmtime-wasi made a stream, so the descriptor is a file.
            Descriptor::Dir(_) => return Err(ErrorCode::BadDescriptor.into()),
        };
        self.inner.table.delete(stream)?;
        Ok(self
            .inner
            .table
            .push(WorkspaceFileStream::boxed(file, at, quota))?)
    }
}

/// Runs a path operation on `fd`: sentinel check, delegation, naming of refusals.
macro_rules! guarded {
    ($self:ident, $fd:expr, $path:expr, $call:expr) => {{
        $self.check(&$fd, &$path)?;
        let read_only = $self.is_read_only(&$fd);
        let shown = $path.clone();
        let result = $call;
        $self.name_refusal(read_only, &shown, result)
    }};
}

impl preopens::Host for SandboxedFilesystemView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.inner)?;
        // Each call hands out new handles; every one of them is the sentinel.
        self.guard.sentinels.extend(
            dirs.iter()
                .filter(|(_, path)| path == SENTINEL_GUEST_PATH)
                .map(|(fd, _)| fd.rep()),
        );
        Ok(dirs)
    }
}

impl types::Host for SandboxedFilesystemView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

impl HostDescriptor for SandboxedFilesystemView<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.inner, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.inner, fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.inner, fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        HostDescriptor::get_type(&mut self.inner, fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        // Charged whole: what the file may grow to (a sparse file counts whole).
        self.guard.charge(size, 0)?;
        HostDescriptor::set_size(&mut self.inner, fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.inner, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.inner, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        self.guard.charge(buf.len() as u64, 0)?;
        HostDescriptor::write(&mut self.inner, fd, buf, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        self.check(&fd, "")?;
        HostDescriptor::read_directory(&mut self.inner, fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.inner, fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.guard.charge(0, 1)?;
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::create_directory_at(&mut self.inner, fd, path).await
        )
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat(&mut self.inner, fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::stat_at(&mut self.inner, fd, path_flags, path).await
        )
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::set_times_at(&mut self.inner, fd, path_flags, path, atim, mtim).await
        )
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.check(&new_descriptor, &new_path)?;
        // A hard link adds a name, not bytes; the walk counts the bytes once per name.
        self.guard.charge(0, 1)?;
        guarded!(
            self,
            fd,
            old_path,
            HostDescriptor::link_at(
                &mut self.inner,
                fd,
                old_path_flags,
                old_path,
                new_descriptor,
                new_path
            )
            .await
        )
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        if oflags.contains(types::OpenFlags::CREATE) {
            self.guard.charge(0, 1)?;
        }
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::open_at(&mut self.inner, fd, path_flags, path, oflags, flags).await
        )
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::readlink_at(&mut self.inner, fd, path).await
        )
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::remove_directory_at(&mut self.inner, fd, path).await
        )
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.check(&new_fd, &new_path)?;
        guarded!(
            self,
            fd,
            old_path,
            HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path).await
        )
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        self.guard.charge(0, 1)?;
        guarded!(
            self,
            fd,
            dest_path,
            HostDescriptor::symlink_at(&mut self.inner, fd, src_path, dest_path).await
        )
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await
        )
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.inner, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let rep = fd.rep();
        let stream = HostDescriptor::write_via_stream(&mut self.inner, fd, offset)?;
        self.charged_stream(rep, stream, WriteAt::Position(offset))
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let rep = fd.rep();
        let stream = HostDescriptor::append_via_stream(&mut self.inner, fd)?;
        self.charged_stream(rep, stream, WriteAt::End)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.inner, a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash(&mut self.inner, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        guarded!(
            self,
            fd,
            path,
            HostDescriptor::metadata_hash_at(&mut self.inner, fd, path_flags, path).await
        )
    }
}

impl HostDirectoryEntryStream for SandboxedFilesystemView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.inner, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}
