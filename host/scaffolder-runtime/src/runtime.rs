//! The engine, linker and compile cache shared by every plugin and step.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ComponentCache;
use crate::error::{Error, Result};
use crate::plugin::{Plugin, PluginConfig};
use crate::step::{self, StepState};

/// How often the epoch advances; a running guest yields to the executor this often.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Wasm stack a guest may use before it traps with a stack overflow.
pub(crate) const MAX_WASM_STACK: usize = 1 << 20;

/// Engine-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; none compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling instance allocator (fast instantiation) when the machine allows it.
    pub pooling: bool,
    /// Instances that may be live at once with pooling; steps beyond it wait for a slot.
    pub max_instances: u32,
    /// The largest memory cap any plugin may be given, in MiB (sizes the pool's slots).
    pub max_memory_mib: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pooling: true,
            max_instances: 64,
            max_memory_mib: 1024,
        }
    }
}

/// Loads plugins and runs their steps. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    /// The host's interfaces, defined when the first component is linked: a server whose
    /// plugins all come from the compile cache links none until a step runs.
    linker: OnceLock<Result<Linker<StepState>, String>>,
    pub(crate) cache: Option<ComponentCache>,
    /// The empty directory preopened as `/` in every step (see `capability::filesystem`).
    pub(crate) sentinel: tempfile::TempDir,
    pub(crate) pooling: bool,
}

impl Runtime {
    /// Creates the engine. With `pooling` set it tries the pooling allocator first and
    /// falls back to on-demand allocation when the machine cannot reserve the pool (e.g.
    /// a low virtual memory limit), logging which one it uses.
    pub fn new(config: &RuntimeConfig) -> Result<Self> {
        let (engine, pooling) = if config.pooling {
            match Engine::new(&engine_config(config, true)) {
                Ok(engine) => (engine, true),
                Err(err) => {
                    tracing::warn!(
                        "pooling allocator unavailable, using on-demand allocation: {err:#}"
                    );
                    (new_engine(config, false)?, false)
                }
            }
        } else {
            (new_engine(config, false)?, false)
        };
        tracing::debug!(pooling, "wasm engine ready");

        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| ComponentCache::open(dir, &engine))
            .transpose()?;
        let sentinel = tempfile::Builder::new()
            .prefix("scaffolder-sandbox-root-")
            .tempdir()
            .map_err(|source| Error::Cache {
                path: std::env::temp_dir(),
                source,
            })?;
        start_epoch_ticker(&engine);
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker: OnceLock::new(),
                cache,
                sentinel,
                pooling,
            }),
        })
    }

    /// Whether the pooling allocator is in use.
    pub fn uses_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Loads a plugin from a file.
    pub async fn load_file(&self, path: &Path, config: PluginConfig) -> Result<Plugin> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadPlugin {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.load(&name, &bytes, config).await
    }

    /// Loads a plugin: checks it is a component of our WIT world, compiles it (or loads
    /// the cached compilation), pre-instantiates it and reads its metadata. A plugin this
    /// host loaded before is described from the cache and its code mapped at first use.
    pub async fn load(&self, name: &str, bytes: &[u8], config: PluginConfig) -> Result<Plugin> {
        let digest_hex = hex::encode(Sha256::digest(bytes));
        self.load_with_digest(name, bytes, &digest_hex, config)
            .await
    }

    /// As [`Self::load`] for bytes whose SHA-256 is already known (plugins embedded in the
    /// binary, hashed at build time). On a compile-cache hit the bytes are not read at
    /// all, so embedded plugins cost no memory at start-up.
    pub async fn load_with_digest(
        &self,
        name: &str,
        bytes: &[u8],
        digest_hex: &str,
        config: PluginConfig,
    ) -> Result<Plugin> {
        if !wasmparser::Parser::is_component(bytes) {
            return Err(if wasmparser::Parser::is_core_wasm(bytes) {
                Error::CoreModule { name: name.into() }
            } else {
                Error::NotWasm { name: name.into() }
            });
        }
        let digest = format!("sha256:{digest_hex}");
        if let Some(cache) = &self.inner.cache
            && let Some(description) = cache.description(digest_hex)
        {
            let code = cache.code_path(digest_hex);
            return Plugin::described(self.inner.clone(), name, digest, description, code, config);
        }
        let engine = &self.inner.engine;
        let (component, cache_hit) = match self
            .inner
            .cache
            .as_ref()
            .and_then(|c| c.load(engine, digest_hex))
        {
            Some(component) => (component, true),
            None => {
                let component =
                    Component::from_binary(engine, bytes).map_err(|err| Error::Compile {
                        name: name.into(),
                        message: format!("{err:#}"),
                    })?;
                if let Some(cache) = &self.inner.cache {
                    cache.store(digest_hex, &component);
                }
                (component, false)
            }
        };
        let plugin = Plugin::prepare(
            self.inner.clone(),
            name,
            digest,
            component,
            cache_hit,
            config,
        )
        .await?;
        if let Some(cache) = &self.inner.cache {
            cache.store_description(digest_hex, &plugin.description());
        }
        Ok(plugin)
    }
}

impl RuntimeInner {
    pub(crate) fn linker(&self) -> Result<&Linker<StepState>> {
        let link = || {
            step::linker(&self.engine).map_err(|err| format!("linking host interfaces: {err:#}"))
        };
        match self.linker.get_or_init(link) {
            Ok(linker) => Ok(linker),
            Err(message) => Err(Error::Engine {
                message: message.clone(),
            }),
        }
    }
}

fn new_engine(config: &RuntimeConfig, pooling: bool) -> Result<Engine> {
    Engine::new(&engine_config(config, pooling)).map_err(|err| Error::Engine {
        message: format!("{err:#}"),
    })
}

/// Bytes of each pooled linear memory and table reset in place rather than returned to
/// the kernel (see [`engine_config`]).
const KEEP_RESIDENT_MEMORY: usize = 1 << 20;
const KEEP_RESIDENT_TABLE: usize = 64 << 10;

fn engine_config(config: &RuntimeConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(MAX_WASM_STACK + (1 << 20));
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        let slots = config.max_instances.max(1);
        pool.total_component_instances(slots)
            // A Rust component has a few core instances, memories and tables.
            .total_core_instances(slots * 4)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            .total_stacks(slots)
            .max_memory_size(usize::try_from(config.max_memory_mib << 20).unwrap_or(usize::MAX))
            // A step's instance is reset when its store drops: by default with
            // `madvise`, each a flush of the TLB on every CPU the server runs on (an
            // interrupt per CPU, costly in virtual machines), and a page fault for each
            // page the next instance in the slot touches. The pages a step dirtied in the
            // first MiB of its memory and 64 KiB of its tables are found with Linux's
            // `PAGEMAP_SCAN` (6.7 and later; elsewhere the low addresses are assumed
            // dirty) and set back to their initial contents with `memset` instead: a
            // fresh instance all the same, for 19% less CPU per task in the server
            // benchmark and 12% off a dry run.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// Advances the engine's epoch until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("scaffolder-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread at start-up");
}
