//! `wasi:sockets`: TCP connections only to granted peers, and name lookups only of
//! granted names (`name_lookup.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup;
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

use super::name_lookup::{NameLookupGuard, NameLookupView, ResolvedPeers, SandboxedNameLookup};
use super::{Capability, Denials, EffectiveGrants, StepSetup, TASK_NOT_HELD};
use crate::StepHost;
use crate::step::{StepFailure, StepState, StepUsage};

/// Per-step state of the sockets: the lookups in progress, the peers granted names
/// resolved to, and the connections opened.
pub(crate) struct Sockets {
    lookups: NameLookupGuard,
    peers: ResolvedPeers,
    grants: Arc<EffectiveGrants>,
    denials: Denials,
    connections: Arc<AtomicU64>,
}

impl Capability for Sockets {
    /// wasmtime-wasi's TCP sockets stay (their every address goes through
    /// [`address_check`]); its name lookups are replaced by the guarded ones.
    fn link(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
        ip_name_lookup::add_to_linker::<_, SandboxedNameLookup>(linker, view)
    }

    /// TCP sockets are always available so that every connect reaches the address check
    /// and a refused one is named; name lookups (a channel out) only when TCP is granted,
    /// and then only of granted names.
    fn prepare(setup: &StepSetup<'_>, wasi: &mut WasiCtxBuilder) -> Result<Self, StepFailure> {
        let peers = ResolvedPeers::default();
        let connections = Arc::new(AtomicU64::new(0));
        wasi.allow_tcp(true)
            .allow_ip_name_lookup(setup.grants.allows_any_tcp())
            .allow_udp(false)
            .socket_addr_check(address_check(
                setup.grants.clone(),
                setup.denials.clone(),
                peers.clone(),
                setup.host.clone(),
                connections.clone(),
            ));
        Ok(Self {
            lookups: NameLookupGuard::default(),
            peers,
            grants: setup.grants.clone(),
            denials: setup.denials.clone(),
            connections,
        })
    }

    fn account(&self, usage: &mut StepUsage) {
        usage.tcp_connections = self.connections.load(Ordering::Relaxed);
    }
}

fn view(state: &mut StepState) -> NameLookupView<'_> {
    let sockets = &mut state.capabilities.sockets;
    NameLookupView {
        inner: WasiSocketsCtxView {
            ctx: state.wasi.sockets(),
            table: &mut state.table,
        },
        guard: &mut sockets.lookups,
        grants: &sockets.grants,
        denials: &sockets.denials,
        peers: &sockets.peers,
    }
}

/// The check wasmtime-wasi runs before every bind, listen, connect and UDP use. A peer
/// is granted by an address pattern, or by a name pattern whose name resolved to it.
///
/// Connecting a TCP socket first binds it implicitly to the wildcard address with port
/// 0; that bind is allowed so a granted connect can proceed. Explicit binds, listening
/// and UDP are never allowed: an action is a client, not a server.
fn address_check(
    grants: Arc<EffectiveGrants>,
    denials: Denials,
    peers: ResolvedPeers,
    host: Arc<dyn StepHost>,
    connections: Arc<AtomicU64>,
) -> impl Fn(SocketAddr, SocketAddrUse) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>>
+ Send
+ Sync
+ 'static {
    move |addr, usage| {
        let allowed = match usage {
            SocketAddrUse::TcpBind if addr.ip().is_unspecified() && addr.port() == 0 => true,
            SocketAddrUse::TcpConnect if !host.holds_task() => {
                tracing::warn!(target: "scaffolder::sandbox", "TCP connection to {addr} not opened: {TASK_NOT_HELD}");
                false
            }
            SocketAddrUse::TcpConnect => {
                let allowed = grants.allows_tcp(addr) || peers.allows(addr);
                if allowed {
                    connections.fetch_add(1, Ordering::Relaxed);
                } else {
                    denials.record(format!(
                        "TCP connection to {addr} denied: it is not granted to this plugin"
                    ));
                }
                allowed
            }
            _ => {
                denials.record(format!(
                    "socket use {usage:?} on {addr} denied: plugins may only open outbound TCP connections"
                ));
                false
            }
        };
        Box::pin(std::future::ready(allowed))
    }
}
