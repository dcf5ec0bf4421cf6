//! The HTTP edge: an accept loop serving the API router over HTTP/1.1 with `backend.server`'s
//! timeouts (headers, body, idle keep-alive), a connection limit answered with Backstage's
//! 503 body, accept errors (e.g. out of file descriptors) that back off instead of spinning,
//! and a shutdown that drains connections and then closes whatever is still open once
//! `scaffolder.gracefulShutdownTimeout` has passed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use scaffolder_config::ServerConfig;

/// How the edge treats connections.
#[derive(Debug, Clone)]
pub struct Edge {
    pub headers_timeout: Duration,
    pub request_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    /// After shutdown starts, connections still open this much later are closed.
    pub shutdown_deadline: Duration,
}

impl Edge {
    /// `backend.server` with the connection limit defaulting to three quarters of
    /// `open_files` (the rest stays for the database, plugins and workspaces).
    pub fn new(
        config: &ServerConfig,
        open_files: u64,
        shutdown_deadline: Duration,
    ) -> anyhow::Result<Self> {
        for (key, value) in [
            ("headersTimeout", config.headers_timeout),
            ("requestTimeout", config.request_timeout),
            ("keepAliveTimeout", config.keep_alive_timeout),
        ] {
            if value.is_zero() {
                anyhow::bail!(
                    "backend.server.{key} is 0, which would close every connection at once: \
                     give a positive duration such as `30s`, or remove it for the default"
                );
            }
        }
        if config.max_connections == Some(0) {
            anyhow::bail!(
                "backend.server.maxConnections is 0, which would refuse every connection: \
                 give a positive number, or remove it for three quarters of the open-file limit"
            );
        }
        let derived = usize::try_from(open_files / 4 * 3).unwrap_or(usize::MAX);
        Ok(Self {
            headers_timeout: config.headers_timeout,
            request_timeout: config.request_timeout,
            keep_alive_timeout: config.keep_alive_timeout,
            max_connections: config.max_connections.unwrap_or(derived.max(1)),
            shutdown_deadline,
        })
    }
}

/// Raises the soft open-file limit to the hard limit and logs the result; returns the
/// soft limit in force (`u64::MAX` when unlimited or unknown).
pub fn raise_open_file_limit() -> u64 {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let soft = match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit.maximum,
            Err(err) => {
                tracing::warn!(
                    "cannot raise the open files limit from {} to {}: {err}",
                    show(limit.current),
                    show(limit.maximum)
                );
                limit.current
            }
        };
        tracing::info!(
            "open files limit: {} (was {}, hard limit {})",
            show(soft),
            show(limit.current),
            show(limit.maximum)
        );
        soft.unwrap_or(u64::MAX)
    }
    #[cfg(not(unix))]
    u64::MAX
}

#[cfg(unix)]
fn show(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets open connections
/// finish for at most `edge.shutdown_deadline` and closes the rest.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    edge: Edge,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let edge = Arc::new(edge);
    let open = Arc::new(AtomicUsize::new(0));
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut connections = JoinSet::new();
    let mut failing = false;
    loop {
        let (stream, _peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("accepting connections again");
                    }
                    accepted
                }
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    // Out of file descriptors, typically: retrying at once would spin.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(
                            open_connections = open.load(Ordering::Relaxed),
                            "cannot accept connections: {err}; retrying every second"
                        );
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        // No Nagle: event frames are small and must leave at once (with Nagle and delayed
        // ACKs a frame can wait 40 ms).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {err}");
        }
        if open.load(Ordering::Relaxed) >= edge.max_connections {
            refuse(stream, &refusing, edge.max_connections);
            continue;
        }
        let guard = Count::new(&open);
        connections.spawn(serve_connection(
            stream,
            app.clone(),
            edge.clone(),
            shutdown.clone(),
            guard,
        ));
    }
    drop(listener);
    let drained = tokio::time::timeout(edge.shutdown_deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "closing the connections still open after scaffolder.gracefulShutdownTimeout ({:?})",
            edge.shutdown_deadline
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// Errors of one connection that came and went before it was accepted.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Refused connections answered at once; beyond this they are closed without an answer.
const MAX_REFUSING: usize = 64;

/// Answers a connection over the limit with Backstage's 503 body and closes it.
fn refuse(mut stream: TcpStream, refusing: &Arc<AtomicUsize>, limit: usize) {
    if refusing.load(Ordering::Relaxed) >= MAX_REFUSING {
        return; // Dropped: closed.
    }
    let guard = Count::new(refusing);
    tokio::spawn(async move {
        let _guard = guard;
        let mut head = [0; 2048];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut head)).await;
        let head = match read {
            Ok(Ok(n)) => &head[..n],
            _ => &[][..],
        };
        let mut request_line = head
            .split(|b| *b == b'\r' || *b == b'\n')
            .next()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter();
        let method = request_line.next().unwrap_or_default();
        let url = request_line.next().unwrap_or_default();
        let body = serde_json::json!({
            "error": {
                "name": "ServiceUnavailableError",
                "message": format!(
                    "the server has {limit} open connections (backend.server.maxConnections); \
                     retry shortly"
                ),
            },
            "request": {"method": method, "url": url},
            "response": {"statusCode": 503},
        })
        .to_string();
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let answered = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await?;
            // Read what the client still sends so that closing does not reset the
            // connection before it has read the answer.
            let mut sink = [0; 2048];
            while stream.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        })
        .await;
        let _ = answered;
    });
}

/// One open thing counted in a shared number while it lives.
struct Count(Arc<AtomicUsize>);

impl Count {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a connection last showed life, as milliseconds since its start, and how many
/// of its requests are in progress (a response still being sent counts: event streams).
struct Activity {
    start: Instant,
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let since = self.start.elapsed();
        since.saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}

/// A request in progress until its response body is dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    edge: Arc<Edge>,
    shutdown: CancellationToken,
    _open: Count,
) {
    let activity = Arc::new(Activity {
        start: Instant::now(),
        last: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
    });
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        let request_timeout = edge.request_timeout;
        move |request: Request<Incoming>| {
            let in_flight = InFlight::new(&activity);
            let request = request.map(|body| Body::new(TimedBody::new(body, request_timeout)));
            let app = app.clone();
            async move {
                let response = match app.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    }))
                }))
            }
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(edge.headers_timeout)
        .keep_alive(true);
    let mut connection = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    loop {
        let idle_left = if activity.in_flight.load(Ordering::Relaxed) > 0 {
            edge.keep_alive_timeout
        } else {
            edge.keep_alive_timeout.saturating_sub(activity.idle_for())
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!("connection closed: {err}");
                }
                return;
            }
            () = tokio::time::sleep(idle_left.max(Duration::from_millis(10))) => {
                if activity.in_flight.load(Ordering::Relaxed) == 0
                    && activity.idle_for() >= edge.keep_alive_timeout
                {
                    return; // Idle: dropping the connection closes it.
                }
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A connection's socket that records when bytes last arrived.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that fails once it has taken longer than `backend.server.requestTimeout`
/// to arrive; hyper then closes the connection instead of waiting for the rest.
struct TimedBody {
    inner: Incoming,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        let deadline = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(timeout)));
        Self {
            inner,
            deadline,
            timeout,
        }
    }
}

#[derive(Debug)]
struct BodyTimedOut(Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {:?} (backend.server.requestTimeout)",
            self.0
        )
    }
}

impl std::error::Error for BodyTimedOut {}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() {
                this.deadline = None;
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_defaults_to_three_quarters_of_the_open_files() {
        let config = ServerConfig::default();
        let edge = Edge::new(&config, 1024, Duration::from_secs(30)).unwrap();
        assert_eq!(edge.max_connections, 768);
        let edge = Edge::new(&config, u64::MAX, Duration::from_secs(30)).unwrap();
        assert!(edge.max_connections > 1_000_000);
    }

    #[test]
    fn zero_timeouts_and_limits_are_refused_with_the_key() {
        let config = ServerConfig {
            keep_alive_timeout: Duration::ZERO,
            ..ServerConfig::default()
        };
        let err = Edge::new(&config, 1024, Duration::from_secs(30)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("backend.server.keepAliveTimeout is 0"),
            "{err}"
        );
        let config = ServerConfig {
            max_connections: Some(0),
            ..ServerConfig::default()
        };
        let err = Edge::new(&config, 1024, Duration::from_secs(30)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("backend.server.maxConnections is 0"),
            "{err}"
        );
    }
}
