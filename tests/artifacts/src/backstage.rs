//! The real Backstage backend of `tests/backstage/` (catalog + scaffolder 4.2.0), started
//! on a free loopback port for one test and stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// A running backend.
pub struct Backstage {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for Backstage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Backstage {
    /// Starts the backend with the entities of `catalog_file` (if any) registered and
    /// `token` as its static external-access token, installing it with `npm ci` first
    /// when needed; returns once it answers.
    pub fn start(catalog_file: Option<&Path>, token: &str) -> Self {
        Self::start_with(catalog_file, token, free_port(), None, &[])
    }

    /// As [`Self::start`], on `port`, with the fixture's `app-config.yaml` followed by
    /// `extra_config` (Backstage merges them in order) and `env` set for `${VAR}`s.
    pub fn start_with(
        catalog_file: Option<&Path>,
        token: &str,
        port: u16,
        extra_config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = fixture_dir();
        install(&dir);
        let mut command = Command::new("node");
        command.arg("backend.mjs");
        if let Some(extra) = extra_config {
            command
                .args(["--config", "app-config.yaml", "--config"])
                .arg(extra);
        }
        command
            .current_dir(&dir)
            .envs(env.iter().copied())
            .env("BACKSTAGE_PORT", port.to_string())
            .env("BACKSTAGE_TOKEN", token)
            .env("BACKSTAGE_LOG_LEVEL", "warn")
            .stdout(Stdio::piped());
        if let Some(file) = catalog_file {
            command.env("BACKSTAGE_CATALOG_FILE", file);
        }
        let mut child = command.spawn().expect("starting the Backstage fixture");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the Backstage fixture exited before it was ready")
                .unwrap();
            if let Some(url) = line.strip_prefix("backstage listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep reading, or the backend blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }
}

/// Installs the fixture's npm packages when they are missing (as [`Backstage::start`]
/// does) and returns the fixture's directory, for tests that start the backend some other
/// way (a script) and must use the same packages rather than install their own.
pub fn install_packages() -> PathBuf {
    let dir = fixture_dir();
    install(&dir);
    dir
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../backstage")
}

/// `npm ci` once per test process (tests of one binary run in parallel).
fn install(dir: &Path) {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join("node_modules/.package-lock.json").exists() {
        return;
    }
    let npm = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm is needed for the Backstage fixture");
    assert!(npm.success(), "npm ci failed in {}", dir.display());
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves `body` at `GET /catalog-info.yaml` (404 for anything else) on a loopback port,
/// as a repository host serves a descriptor; returns the port. Lives as long as the test.
pub fn serve_catalog_info(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let found = request.starts_with(b"GET /catalog-info.yaml ");
            let response = if found {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/yaml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}
