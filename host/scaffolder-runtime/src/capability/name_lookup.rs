//! `wasi:sockets/ip-name-lookup` for granted names only.
//!
//! A DNS query is itself a channel out (`<secret>.attacker.example`), so a guest may look
//! up only the host names that both its action and the operator name in a TCP peer
//! pattern (`db.internal:5432`); IP literals resolve without a query. The addresses a
//! granted name resolves to become connectable peers for the rest of the step, on the
//! pattern's port, unless they are internal addresses the operator did not grant.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use super::{Denials, EffectiveGrants};

/// Peers the step may connect to because a granted name resolved to them.
#[derive(Debug, Clone, Default)]
pub struct ResolvedPeers {
    inner: Arc<Mutex<Vec<Peer>>>,
}

/// An address and the port it may be reached on (`None`: any).
type Peer = (IpAddr, Option<u16>);

/// Addresses remembered per step; more are not needed to reach a service.
const MAX_RESOLVED_PEERS: usize = 256;

impl ResolvedPeers {
    fn allow(&self, ip: IpAddr, ports: &[Option<u16>]) {
        let mut peers = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for port in ports {
            if peers.len() < MAX_RESOLVED_PEERS && !peers.contains(&(ip, *port)) {
                peers.push((ip, *port));
            }
        }
    }

    /// Whether `addr` was resolved from a granted name on an allowed port.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        let peers = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .iter()
            .any(|(ip, port)| *ip == addr.ip() && port.is_none_or(|p| p == addr.port()))
    }
}

/// Per-step state of the lookup guard: which name each open lookup is for, and the
/// ports its addresses may be reached on.
#[derive(Debug, Default)]
pub struct NameLookupGuard {
    pending: HashMap<u32, GrantedName>,
}

#[derive(Debug)]
struct GrantedName {
    name: String,
    ports: Vec<Option<u16>>,
}

/// The `HasData` marker that links the guarded lookups.
pub struct SandboxedNameLookup;

impl HasData for SandboxedNameLookup {
    type Data<'a> = NameLookupView<'a>;
}

/// wasmtime-wasi's sockets view plus what the guard needs.
pub struct NameLookupView<'a> {
    pub inner: WasiSocketsCtxView<'a>,
    pub guard: &'a mut NameLookupGuard,
    pub grants: &'a EffectiveGrants,
    pub denials: &'a Denials,
    pub peers: &'a ResolvedPeers,
}

impl network::Host for NameLookupView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.inner, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.inner, err)
    }
}

impl network::HostNetwork for NameLookupView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, network)
    }
}

impl Host for NameLookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let literal = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        let ports = match self.grants.name_lookup_ports(&name) {
            Some(ports) => ports,
            // Parsing a literal asks nobody; the connect is checked as usual.
            None if literal => Vec::new(),
            None => {
                self.denials.record(format!(
                    "name lookup of '{name}' denied: it is not granted to this plugin (the operator grants a name as a TCP peer, e.g. {name}:5432)"
                ));
                return Err(ErrorCode::AccessDenied.into());
            }
        };
        let stream = Host::resolve_addresses(&mut self.inner, network, name.clone())?;
        if !ports.is_empty() {
            self.guard
                .pending
                .insert(stream.rep(), GrantedName { name, ports });
        }
        Ok(stream)
    }
}

impl HostResolveAddressStream for NameLookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        let next = HostResolveAddressStream::resolve_next_address(&mut self.inner, stream)?;
        if let (Some(address), Some(granted)) = (&next, self.guard.pending.get(&rep)) {
            let (ip, name) = (ip_addr(address), &granted.name);
            if self.grants.allows_resolved(ip) {
                self.peers.allow(ip, &granted.ports);
            } else {
                self.denials.record(format!(
                    "TCP peer {name} resolved to {ip}, an internal address that is not granted (internalNetworks)"
                ));
            }
        }
        Ok(next)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.inner, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.guard.pending.remove(&stream.rep());
        HostResolveAddressStream::drop(&mut self.inner, stream)
    }
}

fn ip_addr(address: &IpAddress) -> IpAddr {
    match *address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}
