//! The HTTP edge against the real binary: slow clients are cut off by `backend.server`'s
//! timeouts, SIGTERM ends the process within `scaffolder.gracefulShutdownTimeout` even with
//! a half-sent request open, and a full open-file table never stops a new client from
//! being answered.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Server;

/// `http://127.0.0.1:<port>/api/scaffolder` → `127.0.0.1:<port>`.
fn authority(base: &str) -> String {
    let rest = base.strip_prefix("http://").unwrap();
    rest.split('/').next().unwrap().to_owned()
}

fn config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("app-config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn connect(server: &Server, sent: &str) -> TcpStream {
    let mut stream = TcpStream::connect(authority(&server.base)).unwrap();
    stream.write_all(sent.as_bytes()).unwrap();
    stream
}

/// Reads until the server closes the connection; the time it took and what arrived, or
/// `None` if the connection is still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, String)> {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(err) => panic!("reading: {err}"),
        }
    }
    Some((
        start.elapsed(),
        String::from_utf8_lossy(&received).into_owned(),
    ))
}

const HALF_HEADER: &str = "GET /api/scaffolder/v2/actions HTTP/1.1\r\nHost: localhost\r\n";
const HALF_BODY: &str = "POST /api/scaffolder/v2/tasks HTTP/1.1\r\nHost: localhost\r\n\
Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"templateRef\":";
const ONE_REQUEST: &str = "GET /api/scaffolder/v2/actions HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[test]
fn slow_clients_are_disconnected_within_the_configured_timeouts() {
    let data = tempfile::tempdir().unwrap();
    let config = config(
        data.path(),
        "backend:\n  server:\n    headersTimeout: 2s\n    requestTimeout: 2s\n    keepAliveTimeout: 2s\n",
    );
    let server = Server::spawn(data.path(), &["--config", config.to_str().unwrap()], &[]);
    let margin = Duration::from_secs(2 + 3);
    let cases = [
        ("half-sent headers", HALF_HEADER),
        ("half-sent body", HALF_BODY),
        ("idle after one request", ONE_REQUEST),
        ("idle without a request", ""),
    ];
    let mut streams: Vec<_> = cases
        .iter()
        .map(|(name, sent)| (*name, connect(&server, sent)))
        .collect();
    for (name, stream) in &mut streams {
        let closed = read_until_closed(stream, margin);
        assert!(
            closed.is_some(),
            "{name}: the connection is still open {margin:?} after it stalled (timeouts 2 s)"
        );
        let (_, received) = closed.unwrap();
        if *name == "idle after one request" {
            assert!(received.starts_with("HTTP/1.1 200"), "{name}: {received}");
        }
    }
}

#[test]
fn sigterm_exits_within_the_grace_period_with_a_half_sent_request_open() {
    let data = tempfile::tempdir().unwrap();
    let config = config(
        data.path(),
        "scaffolder:\n  gracefulShutdownTimeout: 2s\n\
backend:\n  server:\n    headersTimeout: 120s\n    requestTimeout: 120s\n    keepAliveTimeout: 120s\n",
    );
    let mut server = Server::spawn(data.path(), &["--config", config.to_str().unwrap()], &[]);
    let mut half_header = connect(&server, HALF_HEADER);
    let _half_body = connect(&server, HALF_BODY);
    let _idle = connect(&server, "");
    // The requests reach the server before the signal does.
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    let limit = Duration::from_secs(2 + 1);
    let status = server.wait_for_exit(limit);
    assert!(
        status.is_some(),
        "the server still runs {limit:?} after SIGTERM (gracefulShutdownTimeout 2 s)\n{}",
        server.output()
    );
    assert!(status.unwrap().success(), "{}", server.output());
    assert!(
        read_until_closed(&mut half_header, Duration::from_secs(1)).is_some(),
        "the half-sent request's connection outlived the process"
    );
}

#[test]
fn a_full_open_file_table_still_answers_a_new_client() {
    let data = tempfile::tempdir().unwrap();
    let config = config(
        data.path(),
        "backend:\n  server:\n    headersTimeout: 300s\n    keepAliveTimeout: 300s\n",
    );
    let server = Server::spawn_via(
        &["prlimit", "--nofile=1024:1024", "--"],
        data.path(),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let address: std::net::SocketAddr = authority(&server.base).parse().unwrap();
    let connect_limit = Duration::from_secs(5);
    let idle: Vec<_> = (0..1200)
        .map_while(|_| TcpStream::connect_timeout(&address, connect_limit).ok())
        .collect();
    // Let the server take in the burst (the clients send nothing).
    std::thread::sleep(Duration::from_secs(3));
    let client = TcpStream::connect_timeout(&address, connect_limit);
    assert!(
        client.is_ok(),
        "a new client cannot connect after {} idle connections: {:?}",
        idle.len(),
        client.err()
    );
    let mut client = client.unwrap();
    client
        .write_all(
            b"GET /api/scaffolder/v2/actions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let answer = read_until_closed(&mut client, Duration::from_secs(15));
    assert!(
        answer.is_some(),
        "a new client got no answer within 15 s with 1,200 idle connections open\n{}",
        server.output()
    );
    let (_, response) = answer.unwrap();
    if response.starts_with("HTTP/1.1 503") {
        assert!(
            response.contains(r#""name":"ServiceUnavailableError""#),
            "{response}"
        );
    } else {
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    assert!(
        server.output().contains("open files"),
        "no line about the open-file limit\n{}",
        server.output()
    );
    drop(idle);
}
