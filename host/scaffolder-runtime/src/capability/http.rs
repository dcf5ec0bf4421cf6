//! `wasi:http/outgoing-handler` restricted to granted origins.
//!
//! Every request passes [`EffectiveGrants::check_origin`]. A host *name* is then resolved
//! here, each address is checked ([`EffectiveGrants::check_resolved`]), and the connection
//! goes to the checked address itself, so a DNS answer cannot swap in an internal address
//! between the check and the connect. TLS verifies the certificate against the name.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::{Capability, Denials, EffectiveGrants, StepSetup, TASK_NOT_HELD};
use crate::StepHost;
use crate::step::{StepFailure, StepState, StepUsage};

/// How long a connection may take when the guest sets no timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-step state of outbound HTTP: wasmtime-wasi-http's context and the hooks that
/// check and send each request.
pub(crate) struct Http {
    ctx: WasiHttpCtx,
    hooks: HttpSandbox,
}

impl Capability for Http {
    fn link(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn prepare(setup: &StepSetup<'_>, _wasi: &mut WasiCtxBuilder) -> Result<Self, StepFailure> {
        Ok(Self {
            ctx: WasiHttpCtx::new(),
            hooks: HttpSandbox {
                grants: setup.grants.clone(),
                denials: setup.denials.clone(),
                host: setup.host.clone(),
                sent: Arc::new(AtomicU64::new(0)),
            },
        })
    }

    fn account(&self, usage: &mut StepUsage) {
        usage.http_requests = self.hooks.sent.load(Ordering::Relaxed);
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let http = &mut self.capabilities.http;
        WasiHttpCtxView {
            ctx: &mut http.ctx,
            table: &mut self.table,
            hooks: &mut http.hooks,
        }
    }
}

/// The per-step hooks that wasmtime-wasi-http calls to send a guest's request.
struct HttpSandbox {
    grants: Arc<EffectiveGrants>,
    denials: Denials,
    /// Asked whether the run still holds its task before each request.
    host: Arc<dyn StepHost>,
    /// Requests that passed the checks and were sent.
    sent: Arc<AtomicU64>,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpSandbox {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_error: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let grants = self.grants.clone();
        let denials = self.denials.clone();
        let sent = self.sent.clone();
        let holds_task = self.host.holds_task();
        Box::new(async move {
            if !holds_task {
                tracing::warn!(target: "scaffolder::sandbox", "outbound HTTP to {} not sent: {TASK_NOT_HELD}", request.uri());
                return Err(Error::InternalError(Some(TASK_NOT_HELD.to_owned())));
            }
            let target = checked_target(&grants, request.uri())
                .await
                .map_err(|refusal| match refusal {
                    Refusal::Denied(message) => {
                        denials.record(message);
                        Error::HttpRequestDenied
                    }
                    // A granted name that does not resolve is the network's fault, not
                    // the plugin's: the guest gets a DNS error carrying the reason.
                    Refusal::Unresolved(message) => {
                        tracing::debug!(target: "scaffolder::sandbox", "{message}");
                        Error::DnsError {
                            rcode: Some(message),
                            info_code: None,
                        }
                    }
                })?;
            sent.fetch_add(1, Ordering::Relaxed);
            let connect_timeout = options
                .and_then(|o| o.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
            let response = send(target, request, connect_timeout).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// Why a request was not sent.
enum Refusal {
    /// The sandbox does not allow it.
    Denied(String),
    /// It was allowed, but its host name did not resolve.
    Unresolved(String),
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Refusal::Denied(message)
    }
}

/// Where a checked request goes.
struct Target {
    addr: SocketAddr,
    host: String,
    tls: bool,
}

async fn checked_target(grants: &EffectiveGrants, uri: &http::Uri) -> Result<Target, Refusal> {
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let tls = match scheme.as_str() {
        "http" => false,
        "https" => true,
        other => {
            return Err(Refusal::Denied(format!(
                "outbound HTTP with scheme '{other}' denied"
            )));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("outbound HTTP to {uri} denied: the URL has no host"))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let origin = format!("{scheme}://{host}:{port}");
    let granted_literally = grants.check_origin(&scheme, &host, port)?;

    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|err| {
                Refusal::Unresolved(format!(
                    "outbound HTTP to {origin} failed: {host} did not resolve: {err}"
                ))
            })?
            .collect(),
    };
    if !granted_literally {
        for addr in &addrs {
            grants.check_resolved(&origin, addr.ip())?;
        }
    }
    let addr = *addrs.first().ok_or_else(|| {
        Refusal::Unresolved(format!(
            "outbound HTTP to {origin} failed: {host} has no address"
        ))
    })?;
    Ok(Target {
        addr,
        host: bare.to_owned(),
        tls,
    })
}

async fn send(
    target: Target,
    mut request: http::Request<WasiBody>,
    connect_timeout: Duration,
) -> Result<http::Response<WasiBody>, Error> {
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(target.addr))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;

    // Origin-form request target: the peer is not a proxy.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;

    if target.tls {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| Error::TlsCertificateError)?;
        let stream = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(Error::Tls)?;
        exchange(TokioIo::new(stream), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<S>(
    io: TokioIo<S>,
    request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(target: "scaffolder::sandbox", "outbound HTTP connection ended: {err}");
        }
    });
    let response = sender.send_request(request).await?;
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
