//! The data of a step's store: wasmtime-wasi's context and resource table, the memory
//! limiter, the step's budget, and the state of each capability (`capability/`).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{Checkpoint, LogLevel, StepFailure, StepHost, StepUsage};
use crate::budget::{Meter, StepBudget};
use crate::capability::{EffectiveGrants, StepCapabilities, StepSetup};
use crate::limits::{Limits, StepLimiter};

/// The data of a step's store.
pub(crate) struct StepState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: StepLimiter,
    pub(crate) budget: Arc<StepBudget>,
    pub(crate) capabilities: StepCapabilities,
}

impl StepState {
    /// A step's state: each capability prepared from `setup`, within `limits`.
    pub(crate) fn new(setup: &StepSetup<'_>, limits: &Limits) -> Result<Self, StepFailure> {
        let mut wasi = WasiCtx::builder();
        let capabilities = StepCapabilities::prepare(setup, &mut wasi)?;
        let mut table = ResourceTable::new();
        table.set_max_capacity(usize::try_from(limits.max_open_handles).unwrap_or(usize::MAX));
        Ok(Self {
            wasi: wasi.build(),
            table,
            limiter: StepLimiter::new(limits),
            budget: setup.budget.clone(),
            capabilities,
        })
    }

    /// State for calling `describe`: nothing granted, no directory, nothing logged.
    pub(crate) fn describing() -> Result<Self, StepFailure> {
        let limits = Limits {
            max_log_bytes: 0,
            ..Limits::default()
        };
        let budget = Arc::new(StepBudget::new(&limits));
        let setup = StepSetup {
            place: None,
            grants: Arc::new(EffectiveGrants::default()),
            denials: crate::capability::Denials::new(budget.clone()),
            budget,
            host: Arc::new(DescribingHost),
            secrets: &NO_SECRETS,
            settings: Arc::default(),
            cancel: CancellationToken::new(),
        };
        Self::new(&setup, &limits)
    }

    /// What the step has used of each capability, and the linear memory it held.
    pub(crate) fn usage(&self) -> StepUsage {
        let mut usage = StepUsage {
            linear_memory_bytes: self.limiter.linear_memory_bytes as u64,
            denials: self.budget.used(Meter::Denials),
            ..StepUsage::default()
        };
        self.capabilities.account(&mut usage);
        usage
    }

    pub(crate) fn limiter(&mut self) -> &mut StepLimiter {
        &mut self.limiter
    }
}

static NO_SECRETS: BTreeMap<String, String> = BTreeMap::new();

/// The host interfaces every step is linked against: wasmtime-wasi's, then each
/// capability's, which replace the parts of WASI they guard.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<StepState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    linker.allow_shadowing(true);
    StepCapabilities::link(&mut linker)?;
    linker.allow_shadowing(false);
    Ok(linker)
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Host of a `describe` call: plugins must not use imports while describing themselves.
struct DescribingHost;

#[async_trait::async_trait]
impl StepHost for DescribingHost {
    fn log(&self, _level: LogLevel, _message: &str) {}
    async fn add_secret(&self, _name: &str, _value: &str) -> Result<(), String> {
        Err("not available while describing".into())
    }
    async fn checkpoint_get(&self, _key: &str) -> Result<Option<Checkpoint>, String> {
        Ok(None)
    }
    async fn checkpoint_set(&self, _key: &str, _value: Checkpoint) -> Result<(), String> {
        Err("not available while describing".into())
    }
}
