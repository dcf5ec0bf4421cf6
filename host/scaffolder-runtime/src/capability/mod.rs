//! What a step may reach beyond its own memory, one module per capability.
//!
//! Every capability has the same life cycle, the [`Capability`] trait (the shape Spin
//! calls *factors*):
//! 1. **link**: once per runtime, it adds the host interfaces it serves to the linker,
//!    replacing wasmtime-wasi's defaults where it guards them;
//! 2. **prepare**: for each step, it checks what the step was granted ([`StepSetup`]) and
//!    builds its per-step state, configuring the step's WASI context where it serves
//!    through it;
//! 3. **account**: once the step has ended, it reports what the step used of it
//!    ([`StepUsage`]).
//!
//! The capabilities are listed once, in [`step_capabilities!`] below: a new capability
//! is a new module and a line there. What the step may reach at all is decided by
//! [`EffectiveGrants`] (`grants.rs`); every refusal goes to the step's [`Denials`].

mod denials;
pub mod file_modes;
pub mod filesystem;
mod grants;
pub(crate) mod host_calls;
pub(crate) mod http;
pub(crate) mod logs;
pub(crate) mod name_lookup;
mod network;
mod pattern;
pub(crate) mod sockets;
pub(crate) mod workspace_quota;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;

pub use denials::{DENIALS_METRIC, Denials};
pub use grants::{Capabilities, EffectiveGrants, Grants};
pub use network::{IpNet, is_internal_address};
pub use pattern::{OriginPattern, PeerPattern};
pub use workspace_quota::WorkspaceCap;

use crate::budget::StepBudget;
use crate::step::{StepFailure, StepHost, StepState, StepUsage};

/// Why a connection is not opened for a run that may have lost its task
/// ([`crate::StepHost::holds_task`]).
pub(crate) const TASK_NOT_HELD: &str = "this replica may no longer hold the task (no heartbeat recorded for nearly the stale timeout): another replica may have taken it over";

/// One thing a step may reach beyond its own memory, with its per-step state as `Self`.
pub(crate) trait Capability: Sized + Send + 'static {
    /// Adds the host interfaces this capability serves to the linker. Runs once per
    /// runtime, after wasmtime-wasi's defaults, which it may shadow.
    fn link(linker: &mut Linker<StepState>) -> wasmtime::Result<()>;

    /// Checks what the step was granted and builds the capability's state for it. What
    /// the capability serves through wasmtime-wasi's context it configures in `wasi`.
    fn prepare(setup: &StepSetup<'_>, wasi: &mut WasiCtxBuilder) -> Result<Self, StepFailure>;

    /// Adds what the step used of the capability to `usage`, once the step has ended.
    fn account(&self, usage: &mut StepUsage);
}

/// What one step is given, from which each capability prepares its state.
pub(crate) struct StepSetup<'a> {
    /// The step's directories; `None` while a plugin describes itself, when it has no
    /// directory and nothing it writes is kept.
    pub place: Option<StepPlace<'a>>,
    /// Request ∩ grant of the action.
    pub grants: Arc<EffectiveGrants>,
    /// What the step has cost so far, against its limits.
    pub budget: Arc<StepBudget>,
    pub denials: Denials,
    pub host: Arc<dyn StepHost>,
    /// Every task secret; the step sees only the granted ones.
    pub secrets: &'a BTreeMap<String, String>,
    /// What `host.get-config` answers.
    pub settings: Arc<BTreeMap<String, String>>,
    pub cancel: CancellationToken,
}

/// Where a step runs on the host.
pub(crate) struct StepPlace<'a> {
    /// The empty read-only directory preopened as the guest's `/`.
    pub sentinel: &'a Path,
    pub workspace: &'a Path,
    /// The template's directory, if it has one, granted or not.
    pub template: Option<&'a Path>,
    /// Workspace limits tighter than the plugin's, if the host sets any for this step.
    pub workspace_cap: Option<&'a WorkspaceCap>,
}

impl StepSetup<'_> {
    /// The template's directory when the step has one and is granted it.
    pub(crate) fn granted_template(&self) -> Option<&Path> {
        self.place
            .as_ref()
            .and_then(|place| place.template)
            .filter(|_| self.grants.allows_template_directory())
    }
}

/// Declares the step's capabilities once: the state each step holds of them, and their
/// life cycle run over all of them in the order listed.
macro_rules! step_capabilities {
    ($($field:ident: $capability:ty,)*) => {
        /// The per-step state of every capability.
        pub(crate) struct StepCapabilities {
            $(pub(crate) $field: $capability,)*
        }

        impl StepCapabilities {
            pub(crate) fn link(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
                $(<$capability as Capability>::link(linker)?;)*
                Ok(())
            }

            pub(crate) fn prepare(
                setup: &StepSetup<'_>,
                wasi: &mut WasiCtxBuilder,
            ) -> Result<Self, StepFailure> {
                Ok(Self {
                    $($field: <$capability as Capability>::prepare(setup, wasi)?,)*
                })
            }

            pub(crate) fn account(&self, usage: &mut StepUsage) {
                $(Capability::account(&self.$field, usage);)*
            }
        }
    };
}

step_capabilities! {
    filesystem: filesystem::Filesystem,
    file_modes: file_modes::FileModes,
    sockets: sockets::Sockets,
    http: http::Http,
    logs: logs::Logs,
    host_calls: host_calls::HostCalls,
}
