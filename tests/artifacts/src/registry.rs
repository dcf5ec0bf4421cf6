//! A real OCI registry on loopback: the CNCF distribution registry from Debian's
//! `docker-registry` package (installed with apt-get on first use), serving plain HTTP
//! from a temporary storage directory.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry; killed when dropped.
pub struct Registry {
    /// `127.0.0.1:<port>`, what references start with.
    pub address: String,
    child: Option<Child>,
    config: std::path::PathBuf,
    _storage: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        install();
        let storage = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let mut registry = Self {
            address,
            child: None,
            config,
            _storage: storage,
        };
        registry.resume();
        registry
    }

    /// Stops the registry, keeping what it stored.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again after [`stop`](Self::stop), on the same address and storage.
    pub fn resume(&mut self) {
        // It logs every 404 (a missing signature is one) at error level: keep that out of
        // the test output, in a file shown if it fails to start.
        let log = self.config.with_file_name("registry.log");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("starting docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs Debian's `docker-registry` when it is missing; one installer at a time.
fn install() {
    if Path::new(BINARY).exists() {
        return;
    }
    let lock = File::create(std::env::temp_dir().join("scaffolder-test-apt.lock")).unwrap();
    lock.lock().unwrap();
    if Path::new(BINARY).exists() {
        return;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = apt(&["install", "-y", "-q", "docker-registry"])
        || (apt(&["update", "-q"]) && apt(&["install", "-y", "-q", "docker-registry"]));
    assert!(
        installed && Path::new(BINARY).exists(),
        "the registry tests need Debian's docker-registry package, and `apt-get install docker-registry` failed"
    );
}
