//! Compiled components on disk, keyed by the component's content digest and by the
//! engine's compatibility hash (wasmtime version and every setting that changes code),
//! so a changed engine never loads stale machine code.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, Result};

pub(crate) struct ComponentCache {
    dir: PathBuf,
    compatibility: String,
}

impl ComponentCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Cache {
            path: dir.to_owned(),
            source,
        })?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            compatibility: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, digest_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{digest_hex}-{}.cwasm", self.compatibility))
    }

    /// The cached compilation of the component with this digest, if there is a usable one.
    pub(crate) fn load(&self, engine: &Engine, digest_hex: &str) -> Option<Component> {
        let path = self.path(digest_hex);
        if !path.exists() {
            return None;
        }
        match deserialize(engine, &path) {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cached component: {err:#}");
                None
            }
        }
    }

    /// Stores a compilation; failures only cost a recompilation later, so they are logged.
    pub(crate) fn store(&self, digest_hex: &str, component: &Component) {
        let path = self.path(digest_hex);
        let result = component
            .serialize()
            .map_err(|err| std::io::Error::other(format!("{err:#}")))
            .and_then(|bytes| {
                let partial = path.with_extension(format!("partial-{}", std::process::id()));
                std::fs::write(&partial, bytes)?;
                std::fs::rename(&partial, &path)
            });
        if let Err(err) = result {
            tracing::warn!(path = %path.display(), "could not cache compiled component: {err}");
        }
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `ComponentCache::store` from `Component::serialize`
    // into a directory only this host writes, under a name that binds it to the content
    // digest and the engine's compatibility hash; wasmtime checks the header again.
    unsafe { Component::deserialize_file(engine, path) }
}
