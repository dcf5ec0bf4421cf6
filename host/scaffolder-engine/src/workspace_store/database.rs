//! The database backend's blobs: `workspace_blobs` rows of the task database, each file's
//! content in chunks of [`CHUNK`] bytes, each chunk zlib-compressed on its own, so that
//! no value is huge (PostgreSQL caps one at 1 GiB, and a client holds a row whole).

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use scaffolder_store::Store;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::WorkspaceStoreError;
use super::manifest::hex;

/// Bytes of content per row, before compression.
const CHUNK: usize = 4 << 20;

/// Stores everything `content` reads as the blob `digest` of the task.
pub(super) async fn put(
    store: &Store,
    task_id: &str,
    digest: &str,
    content: &mut (impl AsyncRead + Unpin),
) -> Result<(), WorkspaceStoreError> {
    let mut index = 0u32;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        (&mut *content)
            .take(CHUNK as u64)
            .read_to_end(&mut chunk)
            .await
            .map_err(|source| io_error(task_id, source))?;
        // An empty file is one empty chunk; otherwise an empty read is the end.
        if chunk.is_empty() && index > 0 {
            return Ok(());
        }
        let compressed = tokio::task::spawn_blocking(move || {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(&chunk)?;
            encoder.finish()
        })
        .await
        .expect("compressing does not panic")
        .map_err(|source| io_error(task_id, source))?;
        store
            .put_workspace_chunk(task_id, digest, index, &compressed)
            .await?;
        index += 1;
    }
}

/// Writes the blob `digest` of the task to `out` and returns the digest of what was
/// written (the caller compares it with `digest`).
pub(super) async fn get(
    store: &Store,
    task_id: &str,
    digest: &str,
    out: &mut tokio::fs::File,
) -> Result<String, WorkspaceStoreError> {
    let mut hasher = Sha256::new();
    let mut index = 0u32;
    while let Some(compressed) = store.workspace_chunk(task_id, digest, index).await? {
        let chunk = tokio::task::spawn_blocking(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            ZlibDecoder::new(&compressed[..])
                .take(CHUNK as u64 + 1)
                .read_to_end(&mut chunk)
                .map(|_| chunk)
        })
        .await
        .expect("decompressing does not panic")
        .map_err(|source| io_error(task_id, source))?;
        if chunk.len() > CHUNK {
            return Err(WorkspaceStoreError::Corrupt {
                task_id: task_id.to_owned(),
                message: format!("chunk {index} of blob {digest} is too big"),
            });
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|source| io_error(task_id, source))?;
        index += 1;
    }
    if index == 0 {
        return Err(WorkspaceStoreError::Corrupt {
            task_id: task_id.to_owned(),
            message: format!("the blob {digest} is missing"),
        });
    }
    out.flush()
        .await
        .map_err(|source| io_error(task_id, source))?;
    Ok(hex(&hasher.finalize()))
}

fn io_error(task_id: &str, source: std::io::Error) -> WorkspaceStoreError {
    WorkspaceStoreError::Io {
        path: format!("workspace blobs of task {task_id}").into(),
        source,
    }
}
