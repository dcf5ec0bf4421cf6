//! `wasi:sockets` address checks: TCP connections only to granted peers.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime_wasi::sockets::SocketAddrUse;

use super::name_lookup::ResolvedPeers;
use super::{Denials, EffectiveGrants, TASK_NOT_HELD};
use crate::StepHost;

/// The check wasmtime-wasi runs before every bind, listen, connect and UDP use. A peer
/// is granted by an address pattern, or by a name pattern whose name resolved to it.
///
/// Connecting a TCP socket first binds it implicitly to the wildcard address with port
/// 0; that bind is allowed so a granted connect can proceed. Explicit binds, listening
/// and UDP are never allowed: an action is a client, not a server.
pub fn address_check(
    grants: Arc<EffectiveGrants>,
    denials: Denials,
    peers: ResolvedPeers,
    host: Arc<dyn StepHost>,
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
                if !allowed {
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
