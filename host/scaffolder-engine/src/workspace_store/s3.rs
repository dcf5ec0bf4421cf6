//! The S3 backend's blobs: one object per content, `<prefix>/<task id>/<digest>`, through
//! the `object_store` crate (Apache Arrow's: S3 and every S3-compatible server, path-style
//! requests to a configured endpoint, multipart uploads, instance credentials when no keys
//! are configured). Objects over [`PART`] bytes are uploaded in parts of that size.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::WorkspaceStoreError;
use super::manifest::{hex, valid_digest};

/// A part of a multipart upload, and the size above which an object needs one.
const PART: usize = 8 << 20;

/// `scaffolder.workspaceStore.s3`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct S3Config {
    pub bucket: String,
    /// An S3-compatible server's URL; AWS's endpoint for `region` when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Both keys, or neither (then the instance's or environment's credentials).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Keys start with `<prefix>/`; empty for none.
    pub prefix: String,
    /// Allow an `http://` endpoint.
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "[redacted]"),
            )
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

pub(super) struct S3Blobs {
    client: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
}

impl S3Blobs {
    pub(super) fn new(config: &S3Config) -> Result<Self, WorkspaceStoreError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let client = builder.build().map_err(|source| WorkspaceStoreError::S3 {
            bucket: config.bucket.clone(),
            source,
        })?;
        Ok(Self {
            client: Arc::new(client),
            bucket: config.bucket.clone(),
            prefix: config.prefix.trim_matches('/').to_owned(),
        })
    }

    pub(super) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Uploads what `content` reads (`len` bytes) as the blob `digest` of the task.
    pub(super) async fn put(
        &self,
        task_id: &str,
        digest: &str,
        content: &mut (impl AsyncRead + Unpin),
        len: u64,
    ) -> Result<(), WorkspaceStoreError> {
        let location = self.location(task_id, Some(digest))?;
        let io = |source| WorkspaceStoreError::Io {
            path: location.as_ref().into(),
            source,
        };
        if len <= PART as u64 {
            let mut bytes = Vec::with_capacity(len as usize);
            content.read_to_end(&mut bytes).await.map_err(io)?;
            self.client
                .put(&location, PutPayload::from(bytes))
                .await
                .map_err(|e| self.error(e))?;
            return Ok(());
        }
        let upload = self
            .client
            .put_multipart(&location)
            .await
            .map_err(|e| self.error(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = content.read(&mut buffer).await.map_err(io)?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| self.error(e))?;
            writer.write(&buffer[..n]);
        }
        writer.finish().await.map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Writes the blob `digest` of the task to `out`; returns the digest of what was
    /// written.
    pub(super) async fn get(
        &self,
        task_id: &str,
        digest: &str,
        out: &mut tokio::fs::File,
    ) -> Result<String, WorkspaceStoreError> {
        let location = self.location(task_id, Some(digest))?;
        let mut stream = self
            .client
            .get(&location)
            .await
            .map_err(|e| self.error(e))?
            .into_stream();
        let mut hasher = Sha256::new();
        while let Some(bytes) = stream.next().await {
            let bytes = bytes.map_err(|e| self.error(e))?;
            hasher.update(&bytes);
            out.write_all(&bytes)
                .await
                .map_err(|source| WorkspaceStoreError::Io {
                    path: location.as_ref().into(),
                    source,
                })?;
        }
        out.flush()
            .await
            .map_err(|source| WorkspaceStoreError::Io {
                path: location.as_ref().into(),
                source,
            })?;
        Ok(hex(&hasher.finalize()))
    }

    /// Deletes every blob of the task.
    pub(super) async fn delete_task(&self, task_id: &str) -> Result<(), WorkspaceStoreError> {
        let prefix = self.location(task_id, None)?;
        let locations: Vec<ObjectPath> = self
            .client
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        for location in locations {
            match self.client.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(self.error(err)),
            }
        }
        Ok(())
    }

    /// How many objects the task has.
    #[cfg(test)]
    pub(super) async fn count(&self, task_id: &str) -> usize {
        let prefix = self.location(task_id, None).unwrap();
        self.client.list(Some(&prefix)).count().await
    }

    /// `<prefix>/<task id>[/<digest>]`, from a task id and digest that cannot name
    /// anything else.
    fn location(
        &self,
        task_id: &str,
        digest: Option<&str>,
    ) -> Result<ObjectPath, WorkspaceStoreError> {
        let valid_id = !task_id.is_empty()
            && task_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id || digest.is_some_and(|d| !valid_digest(d)) {
            return Err(WorkspaceStoreError::Corrupt {
                task_id: task_id.to_owned(),
                message: format!("no blob can be named after digest {digest:?}"),
            });
        }
        let mut parts: Vec<&str> = Vec::new();
        if !self.prefix.is_empty() {
            parts.extend(self.prefix.split('/').filter(|p| !p.is_empty()));
        }
        parts.push(task_id);
        parts.extend(digest);
        Ok(ObjectPath::from_iter(parts))
    }

    fn error(&self, source: object_store::Error) -> WorkspaceStoreError {
        WorkspaceStoreError::S3 {
            bucket: self.bucket.clone(),
            source,
        }
    }
}
