//! Compiled components on disk, keyed by the component's content digest and by a
//! compatibility hash (wasmtime's, for every setting that changes code, plus this
//! host's version and WIT version, which decide what links), so a changed host never
//! loads stale machine code or stale metadata.
//!
//! Beside each compilation the cache keeps what loading the plugin learnt: its WIT
//! version and the metadata its `describe` returned. A plugin found with both is ready
//! without touching its code; the code is mapped when a step first needs it, so idle
//! plugins cost no memory.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, Result};
use crate::plugin::PluginInfo;

pub(crate) struct ComponentCache {
    dir: PathBuf,
    compatibility: String,
}

/// What a successful load learnt about a component, without running it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Description {
    pub wit_version: String,
    pub info: PluginInfo,
}

impl ComponentCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Cache {
            path: dir.to_owned(),
            source,
        })?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        crate::WIT_VERSION.hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            compatibility: format!("{:016x}", hasher.finish()),
        })
    }

    /// Where the compilation of the component with this digest is (or would be) kept.
    pub(crate) fn code_path(&self, digest_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{digest_hex}-{}.cwasm", self.compatibility))
    }

    fn description_path(&self, digest_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{digest_hex}-{}.json", self.compatibility))
    }

    /// The cached compilation of the component with this digest, if there is a usable one.
    pub(crate) fn load(&self, engine: &Engine, digest_hex: &str) -> Option<Component> {
        let path = self.code_path(digest_hex);
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

    /// The description of a component whose compilation is cached too, if both are there.
    pub(crate) fn description(&self, digest_hex: &str) -> Option<Description> {
        if !self.code_path(digest_hex).exists() {
            return None;
        }
        let path = self.description_path(digest_hex);
        let text = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&text) {
            Ok(description) => Some(description),
            Err(err) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cached plugin metadata: {err}");
                None
            }
        }
    }

    /// Stores a compilation; failures only cost a recompilation later, so they are logged.
    pub(crate) fn store(&self, digest_hex: &str, component: &Component) {
        let path = self.code_path(digest_hex);
        let result = component
            .serialize()
            .map_err(|err| std::io::Error::other(format!("{err:#}")));
        self.write(&path, result);
    }

    /// Stores what a successful load learnt; the compilation must be stored already.
    pub(crate) fn store_description(&self, digest_hex: &str, description: &Description) {
        let path = self.description_path(digest_hex);
        self.write(&path, serde_json::to_vec(description).map_err(Into::into));
    }

    /// Writes a whole file or nothing: a temporary file of its own (other threads and
    /// processes may store the same plugin at once), renamed into place.
    fn write(&self, path: &Path, bytes: std::io::Result<Vec<u8>>) {
        let result = bytes.and_then(|bytes| {
            let mut partial = tempfile::NamedTempFile::new_in(&self.dir)?;
            partial.write_all(&bytes)?;
            partial.persist(path).map(drop).map_err(|err| err.error)
        });
        if let Err(err) = result {
            tracing::warn!(path = %path.display(), "could not write to the compile cache: {err}");
        }
    }
}

/// Maps a compilation written by [`ComponentCache::store`].
#[allow(unsafe_code)]
pub(crate) fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `ComponentCache::store` from `Component::serialize`
    // into a directory only this host writes, under a name that binds it to the content
    // digest and the engine's compatibility hash; wasmtime checks the header again.
    unsafe { Component::deserialize_file(engine, path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_written_at_once_for_one_plugin_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = ComponentCache::open(dir.path(), &engine).unwrap();
        let digest = "ab".repeat(32);
        let code = b"\x7fELF compiled code".to_vec();
        let description = br#"{"witVersion":"0.1.1"}"#.to_vec();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        cache.write(&cache.code_path(&digest), Ok(code.clone()));
                        cache.write(&cache.description_path(&digest), Ok(description.clone()));
                        // Whoever reads at any moment finds whole files.
                        assert_eq!(std::fs::read(cache.code_path(&digest)).unwrap(), code);
                        let read = std::fs::read(cache.description_path(&digest)).unwrap();
                        assert_eq!(read, description);
                    }
                });
            }
        });
        assert_eq!(std::fs::read(cache.code_path(&digest)).unwrap(), code);
        assert_eq!(
            std::fs::read(cache.description_path(&digest)).unwrap(),
            description
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary file is left"
        );
    }
}
